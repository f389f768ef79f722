/**
 * Ways of feeding a system under test, shared by the scenarios: one message per HTTP request over a pool
 * of keep-alive connections (how most backends publish), and messages as WebSocket frames over one
 * connection (the persistent publish channel, acknowledged; bare uWS's best way, unacknowledged).
 */
import { KeepAlivePool, type HttpReply } from './http-raw.js';
import { RawWs } from './ws-raw.js';
import type { SendFn } from './generator.js';

/** A publisher with connections to close. */
export interface Publisher {
  readonly send: SendFn;
  /** Acknowledgement latencies (ms) since the last call, when the publisher records them. */
  takeLatencies(): number[];
  close(): void;
}

/** Where a publisher sends: host, port, and path. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Parses `http://host:port` into an {@link Endpoint}. */
export function endpointOf(url: string): Endpoint {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * One message per `POST`, `poolSize` keep-alive connections per endpoint, endpoints taken in turn.
 * `body()` renders one request body (called once per message). A non-2xx answer is an error.
 */
export function httpOnePerRequest(endpoints: readonly Endpoint[], path: string, headers: Record<string, string>, body: () => string, poolSize = 16): Publisher {
  const perEndpoint = Math.max(1, Math.ceil(poolSize / endpoints.length));
  const pools = endpoints.map((e) => ({ pool: new KeepAlivePool(e.host, e.port, perEndpoint), head: KeepAlivePool.head('POST', path, `${e.host}:${e.port}`, { 'Content-Type': 'application/json', ...headers }) }));
  let next = 0;
  let latencies: number[] = [];
  const one = async (): Promise<void> => {
    const p = pools[next++ % pools.length]!;
    const r: HttpReply = await p.pool.request(p.head, body());
    if (latencies.length < 200_000) latencies.push(r.latencyMs);
    if (r.status < 200 || r.status > 299) throw new Error(`publish ${r.status}: ${r.body.toString().slice(0, 200)}`);
  };
  return {
    send: async (n) => {
      if (n === 1) return one();
      await Promise.all(Array.from({ length: n }, one));
    },
    takeLatencies: () => {
      const out = latencies;
      latencies = [];
      return out;
    },
    close: () => {
      for (const p of pools) p.pool.close();
    },
  };
}

interface Batch {
  left: number;
  errors: number;
  firstError: string;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/**
 * Messages as text frames over one WebSocket, `frame(id)` rendering one message (`id` is the id of the
 * `send` call it belongs to). Acknowledged (the publish socket): a `send(n)` resolves when its n frames
 * are answered, an answer carrying `"error"` failing it. Unacknowledged (bare uWS): it resolves once the
 * frames are written.
 */
export async function wsFrames(endpoint: Endpoint, path: string, headers: Record<string, string>, frame: (id: number) => string, acked: boolean): Promise<Publisher> {
  const batches = new Map<number, Batch>();
  let nextId = 1;
  let latencies: number[] = [];
  const onMessage = (payload: Buffer) => {
    if (!acked) return;
    // Answers look like {"id":N,…}: read N without parsing the rest.
    const text = payload.toString('latin1');
    const m = /^\{"id":(\d+)/.exec(text);
    if (!m) return;
    const b = batches.get(Number(m[1]));
    if (!b) return;
    if (text.includes('"error"')) {
      b.errors++;
      if (!b.firstError) b.firstError = text.slice(0, 200);
    }
    if (--b.left === 0) {
      batches.delete(Number(m[1]));
      if (b.errors > 0) b.reject(new Error(`${b.errors} publishes refused: ${b.firstError}`));
      else b.resolve();
    }
  };
  const onClose = (code: number) => {
    for (const b of batches.values()) b.reject(new Error(`publish socket closed (${code})`));
    batches.clear();
  };
  const ws = await RawWs.connect(endpoint.host, endpoint.port, path, onMessage, onClose, headers);
  return {
    send: (n) => {
      const id = nextId++;
      const t0 = performance.now();
      const sendAll = () =>
        ws.cork(() => {
          for (let i = 0; i < n; i++) ws.sendText(frame(id));
        });
      if (!acked) {
        sendAll();
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        batches.set(id, {
          left: n,
          errors: 0,
          firstError: '',
          resolve: () => {
            if (latencies.length < 200_000) latencies.push(performance.now() - t0);
            resolve();
          },
          reject,
        });
        sendAll();
      });
    },
    takeLatencies: () => {
      const out = latencies;
      latencies = [];
      return out;
    },
    close: () => ws.destroy(),
  };
}

/** What a closed-loop run achieved. */
export interface LoopRun {
  readonly messages: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSec: number;
  readonly firstError?: string;
}

/**
 * Publishes as fast as acknowledgements allow: `inFlight` lanes, each sending `perSend` messages and
 * waiting for them before the next, for `seconds`.
 */
export async function closedLoop(send: SendFn, perSend: number, inFlight: number, seconds: number): Promise<LoopRun> {
  let messages = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const lane = async () => {
    while (performance.now() < end) {
      try {
        await send(perSend);
        messages += perSend;
      } catch (err) {
        errors += perSend;
        firstError ??= String(err);
        // A refusing server must not turn the loop into a busy spin.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = (performance.now() - t0) / 1000;
  return { messages, errors, seconds: elapsed, perSec: messages / elapsed, ...(firstError !== undefined ? { firstError } : {}) };
}
