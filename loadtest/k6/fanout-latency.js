// @ts-check
// Fan-out latency: subscriber VUs hold connections while a publisher posts stamped messages; each
// subscriber measures publish→receive from the stamp. Run k6 where its clock is the publisher's (one
// machine, or NTP-synced load generators).
//   k6 run -e SWITCHBOARD_URL=… -e SUBSCRIBERS=2000 -e RATE=100 -e TOKENS=… fanout-latency.js
import http from 'k6/http';
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { API_KEY, CHANNEL, HTTP_URL, WS_URL, authAndSubscribe, parse, tokens } from './lib.js';

const latency = new Trend('switchboard_fanout_latency', true);
const received = new Counter('switchboard_messages_received');
const gaps = new Counter('switchboard_offset_gaps');
const duration = __ENV.DURATION || '2m';

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      vus: Number(__ENV.SUBSCRIBERS || 500),
      iterations: 1,
      maxDuration: '10m',
      exec: 'subscriber',
    },
    publisher: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 50),
      timeUnit: '1s',
      duration,
      startTime: '20s',
      preAllocatedVUs: 20,
      exec: 'publish',
    },
  },
  thresholds: {
    switchboard_fanout_latency: ['p(50)<20', 'p(99)<100'],
    switchboard_offset_gaps: ['count==0'],
    'http_req_failed{scenario:publisher}': ['rate<0.001'],
  },
};

export function setup() {
  return { tokens: tokens() };
}

/** @param {{ tokens: string[] }} data */
export function subscriber(data) {
  /** @type {number | null} */
  let last = null;
  ws.connect(WS_URL, {}, (socket) => {
    authAndSubscribe(socket, data.tokens, () => socket.close());
    socket.on('message', (raw) => {
      const m = parse(raw);
      if (!m || typeof m.offset !== 'number' || typeof m.s !== 'number') return;
      latency.add(Date.now() - m.s);
      received.add(1);
      if (last !== null && m.offset !== last + 1) gaps.add(1);
      last = m.offset;
    });
    socket.setInterval(() => socket.send(JSON.stringify({ type: 'ping' })), 20_000);
    // Subscribers stay until the publisher is done, plus time for the last messages to arrive.
    socket.setTimeout(() => socket.close(), 25_000 + parseDuration(duration) + 5_000);
  });
}

export function publish() {
  const res = http.post(`${HTTP_URL}/api/publish`, JSON.stringify({ channel: CHANNEL, attrs: { severity: 'info' }, data: { s: Date.now(), title: 'k6' } }), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
  });
  check(res, { published: (r) => r.status === 200 });
}

/**
 * `2m` → 120000.
 * @param {string} d
 */
function parseDuration(d) {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  if (!m) return 120_000;
  const unit = /** @type {Record<string, number>} */ ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 })[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * unit;
}
