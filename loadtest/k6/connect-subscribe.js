// @ts-check
// Connect-and-subscribe ramp: virtual users open WebSockets, authenticate, subscribe, and hold the
// connection. Measures time to subscribed; fails when connections are refused.
//   k6 run -e SWITCHBOARD_URL=https://switchboard.example.com -e USERS=200 -e PASSWORD=… connect-subscribe.js
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { WS_URL, authAndSubscribe, parse, tokens } from './lib.js';

const timeToSubscribed = new Trend('switchboard_time_to_subscribed', true);
const refused = new Counter('switchboard_refused');

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: __ENV.RAMP || '2m', target: Number(__ENV.VUS || 1000) },
        { duration: __ENV.HOLD || '3m', target: Number(__ENV.VUS || 1000) },
        { duration: '30s', target: 0 },
      ],
      gracefulRampDown: '30s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    switchboard_time_to_subscribed: ['p(95)<500'],
    switchboard_refused: ['count<10'],
  },
};

export function setup() {
  return { tokens: tokens() };
}

/** @param {{ tokens: string[] }} data */
export default function (data) {
  const started = Date.now();
  const res = ws.connect(WS_URL, {}, (socket) => {
    authAndSubscribe(socket, data.tokens, () => {
      refused.add(1);
      check(null, { authenticated: () => false });
      socket.close();
    });
    socket.on('message', (raw) => {
      const m = parse(raw);
      if (!m) return;
      if (m.type === 'subscribe_response') {
        check(m, { subscribed: (x) => x.success === true });
        timeToSubscribed.add(Date.now() - started);
      }
    });
    socket.setInterval(() => socket.send(JSON.stringify({ type: 'ping' })), 20_000);
    socket.setTimeout(() => socket.close(), Number(__ENV.HOLD_MS || 60_000));
  });
  check(res, { 'upgrade 101': (r) => r !== null && r.status === 101 });
}
