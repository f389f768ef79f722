/**
 * Periodic checks over connections, O(connections) only when there is something to find: slow consumers
 * after traffic was sent (uWS skips publishes to a socket over its backpressure limit and does not close
 * it, so the edge finds and closes them itself), auth deadlines once a second, and client silence for
 * dialects with an application-level keep-alive.
 */
import type { Conn, ConnectionRegistry } from './conn.js';
import type { Hub } from './hub.js';
import { HARD_BACKPRESSURE_FACTOR, closeConn, type MountedDialect } from './listeners.js';
import type { EdgeMetrics } from './metrics.js';

/** A socket this close to uWS's limit has most likely had a publish skipped. */
const LARGEST_FRAME_GUESS_BYTES = 16 * 1024;

/** The edge's sweeps. */
export class Sweeps {
  private readonly timers: NodeJS.Timeout[] = [];
  private lastAuthSweepMs = 0;

  constructor(
    private readonly conns: ConnectionRegistry,
    private readonly hub: Hub,
    private readonly metrics: EdgeMetrics,
    private readonly dialects: ReadonlyMap<string, MountedDialect>,
    private readonly intervalMs: number,
    /** How long after its token's `exp` a connection is closed (the clock-skew allowance). */
    private readonly tokenGraceMs: number,
    /** Send buffers all connections may hold together before the largest are closed. */
    private readonly budgetBytes: number,
  ) {}

  /** Starts the timers. */
  start(): void {
    this.every(this.intervalMs, () => this.sweep(Date.now()));
    for (const d of this.dialects.values()) {
      const timeout = d.limits.silenceTimeoutMs;
      if (timeout > 0) this.every(Math.max(50, Math.min(250, Math.floor(timeout / 20))), () => this.silence(d, timeout, Date.now()));
    }
  }

  /** Stops the timers. */
  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private sweep(now: number): void {
    if (this.hub.sentSinceSweep) {
      this.hub.sentSinceSweep = false;
      let total = 0;
      for (const conn of this.conns.all) total += this.checkBackpressure(conn);
      if (total > this.budgetBytes) this.overBudget(total);
    }
    if (now - this.lastAuthSweepMs >= 1000) {
      this.lastAuthSweepMs = now;
      for (const pending of this.conns.unauthenticated.values()) {
        // Deadlines of one dialect are inserted in increasing order: stop at the first one in the future.
        for (const [conn, deadline] of pending) {
          if (deadline > now) break;
          this.conns.timedOut(conn);
          if (!conn.identity) closeConn(conn, 'auth_timeout');
        }
      }
      // Identities do not outlive their tokens: one pass a second (a compare per connection) closes those
      // whose token expired and was not renewed.
      const cutoff = now - this.tokenGraceMs;
      for (const conn of this.conns.all) if (conn.tokenExpMs > 0 && conn.tokenExpMs < cutoff) closeConn(conn, 'token_expired');
    }
  }

  /** Closes a connection over its own limit; returns what it still buffers (0 when closed). */
  private checkBackpressure(conn: Conn): number {
    const buffered = conn.ws.getBufferedAmount();
    const soft = this.dialects.get(conn.dialect)?.limits.maxBackpressureBytes ?? Number.POSITIVE_INFINITY;
    if (buffered <= soft) return buffered;
    // Past uWS's limit, publishes to this socket were skipped: count it as a drop.
    if (buffered >= soft * HARD_BACKPRESSURE_FACTOR - LARGEST_FRAME_GUESS_BYTES) this.metrics.backpressureDrops.inc({ dialect: conn.dialect });
    this.slowConsumer(conn);
    return 0;
  }

  /**
   * The node's send buffers together passed the budget: many readers each under their own limit can
   * still cost more memory than the node can spare. The largest buffers are closed first until the rest
   * fits (a rare path: it sorts only when over budget).
   */
  private overBudget(total: number): void {
    const heavy: { conn: Conn; bytes: number }[] = [];
    for (const conn of this.conns.all) {
      const bytes = conn.ws.getBufferedAmount();
      if (bytes > 0) heavy.push({ conn, bytes });
    }
    heavy.sort((a, b) => b.bytes - a.bytes);
    for (const h of heavy) {
      if (total <= this.budgetBytes) break;
      total -= h.bytes;
      this.slowConsumer(h.conn);
    }
  }

  private slowConsumer(conn: Conn): void {
    this.metrics.slowConsumerDisconnects.inc({ dialect: conn.dialect });
    closeConn(conn, 'slow_consumer');
  }

  private silence(d: MountedDialect, timeoutMs: number, now: number): void {
    const conns = this.conns.byDialect.get(d.name);
    if (!conns) return;
    for (const conn of conns) if (now - conn.lastRecvMs > timeoutMs) closeConn(conn, 'client_silent');
  }
}
