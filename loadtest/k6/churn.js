// @ts-check
// Connection churn: a steady arrival rate of connections that authenticate, subscribe, live briefly
// and close — what deploys, mobile networks and flaky clients do. Watches refusals and close codes.
//   k6 run -e SWITCHBOARD_URL=… -e RATE=50 -e USERS=100 -e PASSWORD=… churn.js
import ws from 'k6/ws';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { WS_URL, authAndSubscribe, parse, tokens } from './lib.js';

const closes = new Counter('switchboard_closes');
const refused = new Counter('switchboard_refused');

export const options = {
  scenarios: {
    churn: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 20),
      timeUnit: '1s',
      duration: __ENV.DURATION || '3m',
      preAllocatedVUs: 100,
      maxVUs: 2000,
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    switchboard_refused: ['count<1'],
  },
};

export function setup() {
  return { tokens: tokens() };
}

/** @param {{ tokens: string[] }} data */
export default function (data) {
  const res = ws.connect(WS_URL, {}, (socket) => {
    authAndSubscribe(socket, data.tokens, (m) => refused.add(1, { error: String(m.error) }));
    socket.on('message', (raw) => {
      const m = parse(raw);
      if (m && m.type === 'subscribe_response') check(m, { subscribed: (x) => x.success === true });
    });
    socket.on('close', () => closes.add(1));
    socket.setTimeout(() => socket.close(), 1000 + Math.random() * 4000);
  });
  check(res, { 'upgrade 101': (r) => r !== null && r.status === 101 });
  sleep(0.1);
}
