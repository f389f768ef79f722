/**
 * A lean HTTP/1.1 keep-alive client for publishing: a fixed set of connections, one request at a time on
 * each (no pipelining), the request head pre-built. `fetch` costs the load generator more CPU per request
 * than the servers it measures at tens of thousands of requests per second on a small machine; this
 * keeps the generator out of the way, the same for every system compared.
 */
import { connect, type Socket } from 'node:net';
import { wallMs } from './protocol.js';

/** A completed request. */
export interface HttpReply {
  readonly status: number;
  readonly body: Buffer;
  /** Request written → response read, milliseconds. */
  readonly latencyMs: number;
}

interface Waiter {
  readonly head: Buffer;
  readonly body: Buffer;
  readonly resolve: (r: HttpReply) => void;
  readonly reject: (e: Error) => void;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** One keep-alive connection: a request, its response, the next. */
class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private current: (Waiter & { sentAt: number }) | null = null;
  dead = false;

  constructor(
    private readonly socket: Socket,
    private readonly onIdle: (c: Conn) => void,
    private readonly onDead: (c: Conn, err: Error) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.feed(d));
    const fail = (err: Error) => {
      if (this.dead) return;
      this.dead = true;
      const w = this.current;
      this.current = null;
      w?.reject(err);
      this.onDead(this, err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  send(w: Waiter): void {
    this.current = { ...w, sentAt: wallMs() };
    this.socket.cork();
    this.socket.write(w.head);
    if (w.body.length > 0) this.socket.write(w.body);
    this.socket.uncork();
  }

  close(): void {
    this.dead = true;
    this.socket.destroy();
  }

  private feed(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      const end = this.buf.indexOf(CRLF2);
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const status = Number(head.slice(9, 12));
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      let bodyStart = end + 4;
      let body: Buffer;
      if (cl) {
        const len = Number(cl[1]);
        if (this.buf.length < bodyStart + len) return;
        body = this.buf.subarray(bodyStart, bodyStart + len);
        this.buf = this.buf.subarray(bodyStart + len);
      } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
        const parts: Buffer[] = [];
        let pos = bodyStart;
        for (;;) {
          const lineEnd = this.buf.indexOf('\r\n', pos);
          if (lineEnd < 0) return;
          const size = parseInt(this.buf.subarray(pos, lineEnd).toString('latin1'), 16);
          if (this.buf.length < lineEnd + 2 + size + 2) return;
          parts.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
          pos = lineEnd + 2 + size + 2;
          if (size === 0) break;
        }
        body = Buffer.concat(parts);
        bodyStart = pos;
        this.buf = this.buf.subarray(pos);
      } else {
        body = Buffer.alloc(0);
        this.buf = this.buf.subarray(bodyStart);
      }
      const w = this.current;
      this.current = null;
      if (w) w.resolve({ status, body: Buffer.from(body), latencyMs: wallMs() - w.sentAt });
      this.onIdle(this);
    }
  }
}

/** A pool of keep-alive connections to one origin; requests beyond the pool size wait for a free one. */
export class KeepAlivePool {
  private readonly idle: Conn[] = [];
  private readonly queue: Waiter[] = [];
  private open = 0;
  private closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly size: number,
  ) {}

  /** Builds a request head once; `{len}` is replaced by each body's length. */
  static head(method: string, path: string, host: string, headers: Record<string, string>): string {
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n${extra}Content-Length: {len}\r\n\r\n`;
  }

  /** Sends a request with `head` (from {@link KeepAlivePool.head}) and `body`. */
  request(head: string, body: string | Buffer): Promise<HttpReply> {
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('pool closed'));
      const w: Waiter = { head: Buffer.from(head.replace('{len}', String(b.length)), 'latin1'), body: b, resolve, reject };
      const c = this.idle.pop();
      if (c) c.send(w);
      else {
        this.queue.push(w);
        if (this.open < this.size) this.dial();
      }
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle) c.close();
    this.idle.length = 0;
    for (const w of this.queue.splice(0)) w.reject(new Error('pool closed'));
  }

  private dial(): void {
    this.open++;
    let connected = false;
    const socket = connect(this.port, this.host);
    const conn = new Conn(
      socket,
      (c) => this.release(c),
      (c, err) => {
        this.open--;
        const i = this.idle.indexOf(c);
        if (i >= 0) this.idle.splice(i, 1);
        // A connection that never came up takes the oldest waiter with it, so a dead server fails fast.
        if (!connected) this.queue.shift()?.reject(err);
        else if (this.queue.length > 0 && !this.closed) this.dial();
      },
    );
    socket.once('connect', () => {
      connected = true;
      this.release(conn);
    });
  }

  private release(c: Conn): void {
    if (this.closed) {
      c.close();
      return;
    }
    const w = this.queue.shift();
    if (w) c.send(w);
    else this.idle.push(c);
  }
}
