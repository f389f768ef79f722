/** How a load-generator connection talks to the server under test. */
export type WireProtocol = 'valtronics' | 'plain' | 'socketio' | 'oisp';

/** Where and how subscriber connections connect and subscribe. */
export interface SubscriberSpec {
  readonly targets: readonly { host: string; port: number; path: string }[];
  readonly protocol: WireProtocol;
  /** valtronics: JWTs, connection i uses tokens[i % n]. */
  readonly tokens: readonly string[];
  /** valtronics: subscribe requests, connection i sends subscriptions[i % n]. */
  readonly subscriptions: readonly Record<string, unknown>[];
  /** Every n-th connection measures the latency of every message it gets. */
  readonly latencyEvery: number;
  /**
   * valtronics: each worker signs a token per connection instead of taking `tokens` (tens of thousands
   * would not fit in a worker's arguments): user `load-<g % users>`, and tenant `<tenantPrefix><g>` when
   * given, so that every connection's channels are its own.
   */
  readonly mint?: { readonly secret: string; readonly users: number; readonly tenantPrefix?: string };
  /**
   * oisp: each worker signs an RS256 device token per connection with this key (made by the scenario, a
   * PEM PKCS#8 private key) for device `load-<g>` of `accountId`, and registers it with `echo-protocol`.
   */
  readonly devices?: { readonly privateKeyPem: string; readonly accountId: string };
  /**
   * Offsets are per channel and a connection may hold several: order is checked separately per value of
   * the byte that follows this marker in a message (valtronics: `"channel":"`).
   */
  readonly laneMarker?: string;
}

/** Counts of one measurement window, summed over connections. */
export interface WindowStats {
  received: number;
  /** Messages whose offset was not above the previous one on the same connection. */
  duplicatesOrReordered: number;
  /** Offsets skipped on a connection (loss when every connection should see every offset). */
  skipped: number;
  /** Latency samples in milliseconds. */
  latenciesMs: number[];
  open: number;
  closed: number;
}

/** What a `subscribe` command to the workers achieved. */
export interface SubscribeStats {
  readonly ok: number;
  readonly failed: number;
  /** Subscribe sent → its response, one sample per subscribe. */
  readonly latenciesMs: number[];
  readonly firstError?: string;
}

/** A high-resolution wall clock in milliseconds, comparable across the processes of one machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

const OFFSET = Buffer.from('"offset":');
const STAMP = Buffer.from('"s":');

/** Reads a non-negative decimal number at `pos` (digits, optional fraction). NaN when none. */
export function readNumber(buf: Buffer, pos: number): number {
  let v = 0;
  let i = pos;
  let any = false;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    any = true;
  }
  if (i < buf.length && buf[i] === 46) {
    let scale = 0.1;
    for (i++; i < buf.length; i++) {
      const c = buf[i]!;
      if (c < 48 || c > 57) break;
      v += (c - 48) * scale;
      scale /= 10;
    }
  }
  return any ? v : NaN;
}

/** The `offset` and send stamp `s` of a data message, or null for any other frame. */
export function extract(buf: Buffer): { offset: number; stamp: number } | null {
  const o = buf.indexOf(OFFSET);
  if (o < 0) return null;
  const s = buf.indexOf(STAMP);
  if (s < 0) return null;
  return { offset: readNumber(buf, o + OFFSET.length), stamp: readNumber(buf, s + STAMP.length) };
}
