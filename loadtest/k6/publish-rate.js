// @ts-check
// Publish rate: a rising arrival rate of batch publishes through POST /api/publish, to find where the
// publish path (edge → Redis) stops keeping up.
//   k6 run -e SWITCHBOARD_URL=… -e SWITCHBOARD_API_KEY=… -e BATCH=100 publish-rate.js
import http from 'k6/http';
import { check } from 'k6';
import { API_KEY, CHANNEL, HTTP_URL } from './lib.js';

const batch = Number(__ENV.BATCH || 50);

export const options = {
  scenarios: {
    publish: {
      executor: 'ramping-arrival-rate',
      startRate: Number(__ENV.START_RATE || 10),
      timeUnit: '1s',
      preAllocatedVUs: 50,
      maxVUs: 500,
      stages: [
        { duration: '1m', target: Number(__ENV.PEAK_RATE || 200) },
        { duration: '2m', target: Number(__ENV.PEAK_RATE || 200) },
        { duration: '30s', target: 0 },
      ],
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    http_req_duration: ['p(95)<100', 'p(99)<250'],
  },
};

export default function () {
  const messages = [];
  for (let i = 0; i < batch; i++) messages.push({ channel: CHANNEL, attrs: { severity: 'info' }, data: { s: Date.now(), seq: i } });
  const res = http.post(`${HTTP_URL}/api/publish`, JSON.stringify({ messages }), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
  });
  check(res, { published: (r) => r.status === 200 });
}
