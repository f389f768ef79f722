/**
 * Raw-socket frame conformance (RFC 6455) against a real edge, over a plain TCP socket with a hand-made
 * handshake and hand-made frames: valid frames are served (a masked text ping gets its pong, a fragmented
 * message is reassembled, a ping control frame gets a pong frame, a close gets a close), and malformed
 * frames get the connection closed fast — never a crash, and the node keeps serving others.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode();
});
afterAll(() => node.close());

/** A client frame: FIN/RSV bits, opcode, optional mask (clients must mask), payload. */
function frame(opcode: number, payload: Buffer, o: { fin?: boolean; rsv?: number; masked?: boolean; lengthOverride?: number } = {}): Buffer {
  const fin = o.fin ?? true;
  const masked = o.masked ?? true;
  const len = o.lengthOverride ?? payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  if (len < 126) head.push((masked ? 0x80 : 0) | len);
  else if (len < 65536) head.push((masked ? 0x80 : 0) | 126, len >> 8, len & 0xff);
  else {
    head.push((masked ? 0x80 : 0) | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from(head), mask, body]);
}

const text = (s: string, o = {}) => frame(0x1, Buffer.from(s), o);

interface Raw {
  readonly socket: Socket;
  /** Server frames received so far: opcode and payload. */
  readonly frames: { opcode: number; payload: Buffer }[];
  /** Resolves with how long after `since` the TCP connection ended. */
  ended(since: number): Promise<number>;
  nextFrame(pred: (f: { opcode: number; payload: Buffer }) => boolean, timeoutMs?: number): Promise<{ opcode: number; payload: Buffer }>;
}

async function open(path = '/ws'): Promise<Raw> {
  const socket = connect(node.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const key = randomBytes(16).toString('base64');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const frames: { opcode: number; payload: Buffer }[] = [];
  let endedAt = 0;
  const endWaiters: (() => void)[] = [];
  const frameWaiters: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      expect(buf.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
      buf = buf.subarray(end + 4);
      upgraded = true;
    }
    for (;;) {
      if (buf.length < 2) break;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf.length < off + len) break;
      frames.push({ opcode: buf[0]! & 0x0f, payload: buf.subarray(off, off + len) });
      buf = buf.subarray(off + len);
    }
    for (const w of frameWaiters.splice(0)) w();
  });
  const onEnd = () => {
    if (endedAt === 0) endedAt = Date.now();
    for (const w of endWaiters.splice(0)) w();
  };
  socket.on('close', onEnd);
  socket.on('error', onEnd);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no 101')), 3000);
    const check = () => (upgraded ? (clearTimeout(t), resolve()) : setTimeout(check, 5));
    check();
  });
  return {
    socket,
    frames,
    ended: (since) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('still open after 2000 ms')), 2000);
        const done = () => (clearTimeout(t), resolve(endedAt - since));
        if (endedAt !== 0) done();
        else endWaiters.push(done);
      }),
    async nextFrame(pred, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = frames.findIndex(pred);
        if (i >= 0) return frames.splice(i, 1)[0]!;
        if (Date.now() > deadline) throw new Error('no such frame');
        await new Promise<void>((r) => {
          frameWaiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
  };
}

const pongOf = (ts: string) => (f: { opcode: number; payload: Buffer }) => f.opcode === 1 && f.payload.toString().includes(`"timestamp":"${ts}"`);

describe('valid frames are served', () => {
  it('a masked text ping, a fragmented message, a control ping and a close', async () => {
    const c = await open();
    c.socket.write(text('{"type":"ping","timestamp":"one"}'));
    await c.nextFrame(pongOf('one'));
    // One message in three fragments (text, continuation, final continuation), with a ping between.
    const msg = Buffer.from('{"type":"ping","timestamp":"frag"}');
    c.socket.write(frame(0x1, msg.subarray(0, 10), { fin: false }));
    c.socket.write(frame(0x9, Buffer.from('hi')));
    c.socket.write(frame(0x0, msg.subarray(10, 20), { fin: false }));
    c.socket.write(frame(0x0, msg.subarray(20)));
    expect((await c.nextFrame((f) => f.opcode === 0xa)).payload.toString()).toBe('hi');
    await c.nextFrame(pongOf('frag'));
    const closePayload = Buffer.from([0x03, 0xe8]);
    c.socket.write(frame(0x8, closePayload));
    expect((await c.nextFrame((f) => f.opcode === 0x8)).payload.readUInt16BE(0)).toBe(1000);
    await c.ended(Date.now());
  });
});

describe('an unmasked client frame', () => {
  // uWebSockets.js does not check the mask bit: it reads an unmasked frame as if it were masked (four
  // bytes longer), so such a frame is never served as sent; the garbled stream that follows is closed.
  it('is never served, and the connection is closed once the stream goes on', async () => {
    const c = await open();
    c.socket.write(text('{"type":"ping","timestamp":"u1"}', { masked: false }));
    await new Promise((r) => setTimeout(r, 300));
    expect(c.frames).toEqual([]);
    const sent = Date.now();
    c.socket.write(text('{"type":"ping","timestamp":"u2"}'));
    expect(await c.ended(sent)).toBeLessThan(1000);
    expect(c.frames.filter((f) => f.opcode === 1)).toEqual([]);
  });
});

describe('malformed frames close the connection fast', () => {
  const cases: [string, () => Buffer][] = [
    ['RSV bits without an extension', () => text('{"type":"ping"}', { rsv: 0b100 })],
    ['an unknown opcode', () => frame(0x3, Buffer.from('x'))],
    ['a fragmented control frame', () => frame(0x9, Buffer.from('x'), { fin: false })],
    ['a control frame longer than 125 bytes', () => frame(0x9, Buffer.alloc(126, 0x61))],
    ['a continuation with no message to continue', () => frame(0x0, Buffer.from('x'))],
    ['invalid UTF-8 in a text frame', () => frame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
    ['a frame announcing more than the payload limit', () => frame(0x1, Buffer.alloc(8), { lengthOverride: 64 * 1024 * 1024 })],
  ];
  for (const [name, make] of cases) {
    it(name, async () => {
      const c = await open();
      c.socket.write(text('{"type":"ping","timestamp":"before"}'));
      await c.nextFrame(pongOf('before'));
      const sent = Date.now();
      c.socket.write(make());
      expect(await c.ended(sent)).toBeLessThan(1000);
      // The node goes on serving others.
      const other = await open();
      other.socket.write(text('{"type":"ping","timestamp":"after"}'));
      await other.nextFrame(pongOf('after'));
      other.socket.destroy();
    });
  }
});
