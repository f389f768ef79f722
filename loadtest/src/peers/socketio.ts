/**
 * Peer: Socket.IO 4 on one node, or several nodes over `@socket.io/redis-streams-adapter` (the
 * horizontally scaled peer). Clients join room `b` on connect; `POST /publish` emits each message to
 * the room, numbered in order by the node that publishes. WebSocket transport only.
 * Run: `node socketio.js <port> [redisUrl]`.
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';

const port = Number(process.argv[2] ?? 0);
const redisUrl = process.argv[3];
let offset = 0;
const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') {
    res.end('ready');
    return;
  }
  if (req.method === 'POST' && req.url === '/publish') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: { data: Record<string, unknown> }[] };
      for (const m of body.messages) io.to('b').emit('m', { offset: ++offset, ...m.data });
      res.end('{}');
    });
    return;
  }
  res.statusCode = 404;
  res.end();
});
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  ...(redisUrl ? { adapter: createAdapter(new Redis(redisUrl, { protocol: 2, maxRetriesPerRequest: null })) } : {}),
});
io.on('connection', (socket) => {
  void socket.join('b');
});
http.listen(port, '127.0.0.1');
