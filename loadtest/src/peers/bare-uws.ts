/**
 * Peer: bare uWebSockets.js — the upper line of this stack. Every WebSocket on `/bare` is subscribed to
 * one topic; `POST /publish` `{"messages":[{"data":…}]}` publishes each with `app.publish`, numbered
 * in order. No auth, no filters, no bus, no metrics. Run: `node bare-uws.js <port>`.
 */
import uWS from 'uWebSockets.js';

const port = Number(process.argv[2] ?? 0);
if (typeof (uWS as { getParts?: unknown }).getParts !== 'function') throw new Error('uWebSockets.js native binary did not load');
let offset = 0;
const app = uWS.App();
app.ws('/bare', {
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  idleTimeout: 120,
  open: (ws) => {
    ws.subscribe('b');
  },
});
app.post('/publish', (res) => {
  const chunks: Buffer[] = [];
  let aborted = false;
  res.onAborted(() => (aborted = true));
  res.onData((chunk, last) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!last) return;
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: { data: Record<string, unknown> }[] };
    for (const m of body.messages) app.publish('b', `{"offset":${++offset},${JSON.stringify(m.data).slice(1)}`, false, false);
    if (!aborted) res.cork(() => res.writeStatus('200 OK').end('{}'));
  });
});
app.get('/readyz', (res) => {
  res.end('ready');
});
app.listen('127.0.0.1', port, (ls) => {
  if (!ls) process.exit(1);
});
