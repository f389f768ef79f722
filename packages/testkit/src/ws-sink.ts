/**
 * A WebSocket sink for benchmarks, run as a child process with IPC:
 * `node ws-sink.js <port> <path> <count>`. It opens `count` raw WebSocket connections (handshake
 * only, no client library), then reads and discards everything, counting bytes, so that the process
 * under test pays only for sending. Messages: `{type:'stats'}` → `{type:'stats', bytes, open}`.
 */
import { connect, type Socket } from 'node:net';

const [portArg, pathArg, countArg] = process.argv.slice(2);
const port = Number(portArg);
const path = pathArg ?? '/';
const count = Number(countArg ?? '1');
const HANDSHAKE =
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

let bytes = 0;
let open = 0;
const sockets: Socket[] = [];

function one(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let upgraded = false;
    let head = '';
    s.on('data', (chunk: Buffer) => {
      if (upgraded) {
        bytes += chunk.length;
        return;
      }
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.startsWith('HTTP/1.1 101')) {
        reject(new Error(`upgrade refused: ${head.slice(0, 40)}`));
        return;
      }
      upgraded = true;
      bytes += head.length - end - 4;
      open++;
      resolve();
    });
    s.on('error', reject);
    s.on('close', () => {
      if (upgraded) open--;
    });
    s.write(HANDSHAKE);
    sockets.push(s);
  });
}

async function main(): Promise<void> {
  const WAVE = 250;
  for (let i = 0; i < count; i += WAVE) {
    await Promise.all(Array.from({ length: Math.min(WAVE, count - i) }, one));
  }
  process.send?.({ type: 'ready', open });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') process.send?.({ type: 'stats', bytes, open });
    if (m.type === 'exit') {
      for (const s of sockets) s.destroy();
      process.exit(0);
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`ws-sink: ${String(err)}\n`);
  process.exit(1);
});
