/**
 * Peer: bare uWebSockets.js — the upper line of this stack. Every WebSocket on `/bare` is subscribed to
 * one topic. Messages `{"data":…}` are published to the topic with `app.publish`, numbered in order;
 * a message with `"to": i` is instead sent to the i-th socket alone (`ws.send`), numbered per socket.
 * Fed either by `POST /publish` `{"messages":[…]}` or — its best way — as text frames over a WebSocket
 * on `/pub`, one message per frame, unacknowledged. No auth, no filters, no bus, no metrics.
 * Run: `node bare-uws.js <port>`.
 */
import uWS from 'uWebSockets.js';

interface Sub {
  n: number;
}
interface Msg {
  to?: number;
  data: Record<string, unknown>;
}

const port = Number(process.argv[2] ?? 0);
if (typeof (uWS as { getParts?: unknown }).getParts !== 'function') throw new Error('uWebSockets.js native binary did not load');
let offset = 0;
const sockets: uWS.WebSocket<Sub>[] = [];
const app = uWS.App();

function publish(m: Msg): void {
  const body = JSON.stringify(m.data).slice(1);
  if (m.to === undefined) {
    app.publish('b', `{"offset":${++offset},${body}`, false, false);
    return;
  }
  const ws = sockets[m.to % sockets.length];
  if (!ws) return;
  const sub = ws.getUserData();
  ws.send(`{"offset":${++sub.n},${body}`, false, false);
}

app.ws<Sub>('/bare', {
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  idleTimeout: 120,
  upgrade: (res, req, ctx) => {
    res.upgrade<Sub>({ n: 0 }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), ctx);
  },
  open: (ws) => {
    ws.subscribe('b');
    sockets.push(ws);
  },
  close: (ws) => {
    const i = sockets.indexOf(ws);
    if (i >= 0) sockets.splice(i, 1);
  },
});
app.ws('/pub', {
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 120,
  message: (_ws, message) => {
    publish(JSON.parse(Buffer.from(message).toString('utf8')) as Msg);
  },
});
app.post('/publish', (res) => {
  const chunks: Buffer[] = [];
  let aborted = false;
  res.onAborted(() => (aborted = true));
  res.onData((chunk, last) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!last) return;
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: Msg[] };
    for (const m of body.messages) publish(m);
    if (!aborted) res.cork(() => res.writeStatus('200 OK').end('{}'));
  });
});
app.get('/readyz', (res) => {
  res.end('ready');
});
app.listen('127.0.0.1', port, (ls) => {
  if (!ls) process.exit(1);
});
