import WebSocket from 'ws';

/** A received frame: the text, and the parsed JSON when it is JSON. */
export interface Frame {
  readonly text: string;
  readonly json: unknown;
  readonly binary: boolean;
  /** The raw bytes (binary frames carry only these). */
  readonly data: Buffer;
}

/** Options of {@link TestClient.connect}. */
export interface ConnectOptions {
  readonly protocols?: string | string[];
  readonly headers?: Record<string, string>;
  readonly origin?: string;
  readonly timeoutMs?: number;
}

type Predicate = (msg: Record<string, unknown>, frame: Frame) => boolean;

/**
 * A WebSocket test client that records every frame and lets a test wait for the next matching one.
 * Nothing is ever dropped: frames that no waiter took stay in order for the next `next()`.
 */
export class TestClient {
  readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  /** Resolves with the close code and reason when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      const text = isBinary ? '' : bytes.toString('utf8');
      let json: unknown = undefined;
      if (!isBinary) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      this.frames.push({ text, json, binary: isBinary, data: bytes });
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    ws.on('error', () => this.wake());
  }

  /** Opens a connection; rejects with the HTTP status when the upgrade is refused. */
  static connect(url: string, opts: ConnectOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts.protocols, {
        headers: opts.headers,
        ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
        handshakeTimeout: opts.timeoutMs ?? 5000,
      });
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (req, res) => {
        // With a listener, ws leaves the refused request's socket open: close it, as a real client would.
        req.destroy();
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Sends an object as JSON, or a string / buffer as is. */
  send(msg: unknown): void {
    if (typeof msg === 'string' || Buffer.isBuffer(msg)) this.ws.send(msg);
    else this.ws.send(JSON.stringify(msg));
  }

  /**
   * Resolves with the next JSON object frame that matches `pred` and removes it; frames that do not
   * match stay, in order, for later calls.
   */
  async next(pred: Predicate = () => true, timeoutMs = 3000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        const j = f.json;
        if (typeof j === 'object' && j !== null && !Array.isArray(j) && pred(j as Record<string, unknown>, f)) {
          // Take it out so the next call does not see it again, keeping the order of the others.
          this.frames.splice(i, 1);
          return j as Record<string, unknown>;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        const seen = this.frames.slice(0).map((f) => f.text.slice(0, 200));
        throw new Error(`no matching frame within ${timeoutMs} ms; unconsumed: ${JSON.stringify(seen)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * Resolves with the next raw frame (text or binary, JSON or not) that matches `pred` and removes it:
   * for dialects whose frames are not JSON objects.
   */
  async nextFrame(pred: (f: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        const seen = this.frames.slice(0).map((f) => (f.binary ? `<${f.data.length} bytes>` : f.text.slice(0, 200)));
        throw new Error(`no matching frame within ${timeoutMs} ms; unconsumed: ${JSON.stringify(seen)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next frame whose `type` is `type`. */
  nextOfType(type: string, timeoutMs = 3000): Promise<Record<string, unknown>> {
    return this.next((m) => m.type === type, timeoutMs);
  }

  /** Waits `ms` and returns (and removes) every JSON frame that matched `pred` meanwhile. */
  async collect(ms: number, pred: Predicate = () => true): Promise<Record<string, unknown>[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.drain(pred);
  }

  /** Returns (and removes) every buffered JSON frame matching `pred`. */
  drain(pred: Predicate = () => true): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (let i = 0; i < this.frames.length; ) {
      const f = this.frames[i]!;
      const j = f.json;
      if (typeof j === 'object' && j !== null && !Array.isArray(j) && pred(j as Record<string, unknown>, f)) {
        out.push(j as Record<string, unknown>);
        this.frames.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** Waits for `n` frames matching `pred` in total and returns them in arrival order. */
  async take(n: number, pred: Predicate = () => true, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) out.push(await this.next(pred, Math.max(1, deadline - Date.now())));
    return out;
  }

  /** Whether the socket is open. */
  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Closes the connection and waits for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}
