/**
 * A minimal WebSocket client over a raw TCP socket, for load generation: handshake, masked text
 * frames out, unmasked frames in (text, binary, ping → pong, close), no per-message allocation beyond
 * the payload view handed to the callback. A full client library would cost more CPU than the server
 * under test on a small machine.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** Called with each complete text/binary message (a view valid only during the call) and its socket. */
export type OnMessage = (payload: Buffer, ws: RawWs) => void;

const KEY = randomBytes(16).toString('base64');

/** One raw WebSocket connection. */
export class RawWs {
  private pending: Buffer | null = null;
  private fragments: Buffer[] | null = null;
  closed = false;
  closeCode = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly onMessage: OnMessage,
    private readonly onClose: (code: number) => void,
  ) {}

  /** Connects and completes the upgrade; `leftover` handles bytes that arrived with the 101. */
  static connect(
    host: string,
    port: number,
    path: string,
    onMessage: OnMessage,
    onClose: (code: number) => void = () => {},
    headers: Record<string, string> = {},
  ): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host);
      socket.setNoDelay(true);
      let head = Buffer.alloc(0);
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.once('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
      });
      const onHead = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHead);
        if (!head.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${head.subarray(0, Math.min(end, 80)).toString('latin1')}`));
          return;
        }
        const ws = new RawWs(socket, onMessage, onClose);
        socket.on('data', (d: Buffer) => ws.feed(d));
        socket.on('close', () => ws.finish());
        socket.on('error', () => ws.finish());
        if (head.length > end + 4) ws.feed(head.subarray(end + 4));
        resolve(ws);
      };
      socket.on('data', onHead);
      socket.once('error', reject);
    });
  }

  /** Sends a masked text frame. */
  sendText(text: string): void {
    this.sendFrame(0x1, Buffer.from(text, 'utf8'));
  }

  /** Runs `fn` with the socket corked: frames it sends leave in one write. */
  cork(fn: () => void): void {
    this.socket.cork();
    try {
      fn();
    } finally {
      this.socket.uncork();
    }
  }

  /** Bytes queued in the socket, not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  /** Sends a close frame and ends the socket. */
  close(code = 1000): void {
    if (this.closed) return;
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    this.sendFrame(0x8, b);
    this.socket.end();
  }

  /** Stops reading from the socket: the kernel's buffers fill and the server sees a reader that stopped. */
  pause(): void {
    this.socket.pause();
  }

  /** Drops the TCP connection without a close frame. */
  destroy(): void {
    this.socket.destroy();
  }

  private sendFrame(opcode: number, payload: Buffer): void {
    if (this.closed) return;
    const len = payload.length;
    const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(headerLen + 4 + len);
    frame[0] = 0x80 | opcode;
    if (len < 126) frame[1] = 0x80 | len;
    else if (len < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(len, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(len), 2);
    }
    const mask = randomBytes(4);
    mask.copy(frame, headerLen);
    for (let i = 0; i < len; i++) frame[headerLen + 4 + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this.closeCode || 1006);
  }

  private feed(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let pos = 0;
    while (buf.length - pos >= 2) {
      const b0 = buf[pos]!;
      const b1 = buf[pos + 1]!;
      let len = b1 & 0x7f;
      let off = pos + 2;
      if (len === 126) {
        if (buf.length - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        off = pos + 4;
      } else if (len === 127) {
        if (buf.length - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        off = pos + 10;
      }
      if (b1 & 0x80) off += 4;
      if (buf.length < off + len) break;
      const payload = buf.subarray(off, off + len);
      pos = off + len;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        if (!fin) {
          (this.fragments ??= []).push(Buffer.from(payload));
        } else if (this.fragments) {
          this.fragments.push(payload);
          const whole = Buffer.concat(this.fragments);
          this.fragments = null;
          this.onMessage(whole, this);
        } else this.onMessage(payload, this);
      } else if (opcode === 0x9) this.sendFrame(0xa, Buffer.from(payload));
      else if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.socket.end();
      }
    }
    if (pos < buf.length) this.pending = Buffer.from(buf.subarray(pos));
  }
}
