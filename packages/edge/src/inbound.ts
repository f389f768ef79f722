/**
 * What happens to every received frame before a dialect sees it, whatever the dialect: the message rate
 * limit (with abuse strikes counted over a window), the message size limit, a copy out of uWS's buffer,
 * and the in-order request queue — a frame that arrives while an asynchronous request of the same
 * connection runs waits for it, so clients may send `auth` and `subscribe` back to back. Refusals are
 * queued like requests, so even an error answer never overtakes the answer to an earlier request.
 */
import { isBackendUnavailable, type CloseCodeName, type Logger } from '@switchboard/core';
import type { Conn } from './conn.js';
import { REFUSAL_HEAD_BYTES, type DialectHandler, type DialectMetrics, type Frame, type Refusal } from './dialect.js';
import type { DialectLimits } from './dialect-config.js';

/** A dialect as the inbound pipeline needs it. */
export interface InboundDialect {
  readonly name: string;
  readonly handler: DialectHandler<unknown>;
  readonly limits: DialectLimits;
  readonly metrics: DialectMetrics;
}

/** Options of {@link Inbound}. */
export interface InboundOptions {
  /** Close a connection after this many rate-limited messages within `strikeWindowMs` (0: never). */
  readonly closeAfterStrikes: number;
  readonly strikeWindowMs: number;
  /** Requests queued behind a slow one before the connection counts as abusive. */
  readonly maxQueued: number;
  readonly logger: Logger;
  close(conn: Conn, reason: CloseCodeName): void;
}

type Item = { readonly frame: Frame } | { readonly refusal: Refusal };

/** The first bytes of a refused text frame (copied: uWS's buffer is only valid during the call). */
function head(data: ArrayBuffer, isBinary: boolean): { head?: string } {
  if (isBinary) return {};
  return { head: Buffer.from(data, 0, Math.min(REFUSAL_HEAD_BYTES, data.byteLength)).toString('utf8') };
}

/** The shared receive pipeline of every dialect. */
export class Inbound {
  constructor(private readonly o: InboundOptions) {}

  /** A frame arrived. The ArrayBuffer is only valid during this call, so it is copied here. */
  receive(d: InboundDialect, conn: Conn, data: ArrayBuffer, isBinary: boolean, nowMs: number): void {
    conn.lastRecvMs = nowMs;
    d.metrics.messagesIn.inc();
    let item: Item;
    if (!this.takeRate(d, conn, 1, nowMs)) {
      if (conn.closed) return;
      item = { refusal: { code: 'rate_limited', message: `at most ${d.limits.messagesPerSec} messages per second`, ...head(data, isBinary) } };
    } else if (data.byteLength > d.limits.maxMessageBytes) {
      item = { refusal: { code: 'message_too_large', message: `message is ${data.byteLength} bytes; the limit is ${d.limits.maxMessageBytes}`, ...head(data, isBinary) } };
    } else {
      // Buffer.from(ArrayBuffer) is a view: decoding copies the text; Buffer.from(Uint8Array) copies bytes.
      item = { frame: isBinary ? { binary: true, data: Buffer.from(new Uint8Array(data)) } : { binary: false, text: Buffer.from(data).toString('utf8') } };
    }
    this.offer(d, conn, item);
  }

  /**
   * Takes `n` tokens of the rate limit. On refusal counts a strike (strikes older than the window are
   * forgotten, but a refill does not forgive them), and closes a connection that keeps flooding with 4029.
   */
  takeRate(d: InboundDialect, conn: Conn, n: number, nowMs = Date.now()): boolean {
    if (conn.bucket.take(n)) return true;
    d.metrics.rateLimited('messages_per_sec');
    let strikes = conn.strikes;
    if (strikes === null) strikes = conn.strikes = { count: 0, windowStartMs: nowMs };
    else if (nowMs - strikes.windowStartMs > this.o.strikeWindowMs) {
      strikes.windowStartMs = nowMs;
      strikes.count = 0;
    }
    strikes.count++;
    if (this.o.closeAfterStrikes > 0 && strikes.count >= this.o.closeAfterStrikes) this.o.close(conn, 'rate_limit_abuse');
    return false;
  }

  private offer(d: InboundDialect, conn: Conn, item: Item): void {
    if (conn.queue !== null) {
      if (conn.queue.length >= this.o.maxQueued) {
        d.metrics.rateLimited('queue');
        this.o.close(conn, 'rate_limit_abuse');
        return;
      }
      conn.queue.push(item);
      return;
    }
    let pending: Promise<void> | undefined;
    try {
      pending = this.handle(d, conn, item);
    } catch (err) {
      this.fail(d, conn, err);
      return;
    }
    if (pending === undefined) return;
    conn.queue = [];
    pending.then(
      () => this.drain(d, conn),
      (err: unknown) => this.fail(d, conn, err),
    );
  }

  private handle(d: InboundDialect, conn: Conn, item: Item): Promise<void> | undefined {
    if ('refusal' in item) {
      d.metrics.error(item.refusal.code);
      d.handler.refuse(conn, item.refusal);
      return undefined;
    }
    return d.handler.message(conn, item.frame);
  }

  /** Runs queued requests one after another, each to completion, keeping request order. */
  private async drain(d: InboundDialect, conn: Conn): Promise<void> {
    try {
      while (!conn.closed && conn.queue !== null && conn.queue.length > 0) {
        const next = this.handle(d, conn, conn.queue.shift() as Item);
        if (next !== undefined) await next;
      }
    } catch (err) {
      this.fail(d, conn, err);
    }
    conn.queue = null;
  }

  /**
   * A request failed unexpectedly, queue dropped. A backend that did not answer (Redis, the session
   * service) is answered `unavailable` — retry later — and logged as a warning; anything else is a bug:
   * logged with its stack and answered as an internal error.
   */
  private fail(d: InboundDialect, conn: Conn, err: unknown): void {
    const away = isBackendUnavailable(err);
    if (away) this.o.logger.warn({ err, conn: conn.connId, dialect: d.name }, 'request failed: a backend is unavailable');
    else this.o.logger.error({ err, conn: conn.connId, dialect: d.name }, 'request failed');
    conn.queue = null;
    if (conn.closed) return;
    const code = away ? 'unavailable' : 'internal_error';
    d.metrics.error(code);
    d.handler.refuse(conn, { code, message: away ? 'a backend is unavailable; retry later' : 'internal error' });
  }
}
