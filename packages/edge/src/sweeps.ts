/**
 * Periodic checks over connections, O(connections) only when there is something to find: slow consumers
 * after traffic was sent (uWS skips publishes to a socket over its backpressure limit and does not close
 * it, so the edge finds and closes them itself), auth deadlines once a second, and client silence for
 * dialects with an application-level keep-alive.
 */
import type { Conn, ConnectionRegistry } from './conn.js';
import type { Hub } from './hub.js';
import { HARD_BACKPRESSURE_FACTOR, closeConn, dropConn, type MountedDialect } from './listeners.js';
import type { EdgeMetrics } from './metrics.js';

/** A socket this close to uWS's limit has most likely had a publish skipped. */
const LARGEST_FRAME_GUESS_BYTES = 16 * 1024;

/**
 * A flood can fill hundreds of megabytes of send buffers within one regular interval. So the sweep timer
 * ticks every {@link PRESSURE_TICK_MS}, and the backpressure pass runs early when the hub handed uWS more
 * than this share of the budget since the last pass, or the last pass found buffers holding that much.
 */
const PRESSURE_SHARE = 1 / 8;
const PRESSURE_TICK_MS = 25;

/**
 * Sweep intervals without a sign of reading that make a reader stalled: more than one, so that a backlog first
 * seen at a sweep — formed anywhere in the interval before it — is not dropped early at a quarter of its limit.
 */
const STALL_INTERVALS = 1.5;

/** A reader that stopped reading is dropped once it holds 1/this of its backpressure limit. */
const STALLED_SHARE = 4;

/**
 * While the hub sends only direct frames (one-subscriber groups: it knows which sockets those left
 * backlogged), a pass looks at those and at the ones still backlogged from before; every this many
 * intervals, and after any topic publish (which may reach any socket), it looks at every connection —
 * also for backlogs that other writes (dialect replies, replays) built. With 50,000 connections, a pass
 * over all of them four times a second was 7 % of an edge's CPU at 5,000 deliveries/s.
 */
const FULL_PASS_INTERVALS = 8;

/** The edge's sweeps. */
export class Sweeps {
  private readonly timers: NodeJS.Timeout[] = [];
  private lastAuthSweepMs = 0;
  private lastPassMs = 0;
  /** Whether the last backpressure pass left buffers over the pressure share of the budget. */
  private pressured = false;
  private lastFullPassMs = 0;
  /** Connections the last pass found with a send buffer (looked at again by every pass until it is empty). */
  private watched = new Set<Conn>();

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
    this.every(Math.min(PRESSURE_TICK_MS, this.intervalMs), () => this.sweep(Date.now()));
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
    const hub = this.hub;
    if (hub.sentSinceSweep && (this.pressured || now - this.lastPassMs >= this.intervalMs || hub.bytesSinceSweep > this.budgetBytes * PRESSURE_SHARE)) this.backpressure(now);
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

  /**
   * The backpressure pass: over-limit readers, then the node budget. Over every connection after a topic
   * publish and every {@link FULL_PASS_INTERVALS} intervals; else over those the hub's direct frames left
   * backlogged and those still backlogged from before.
   */
  private backpressure(now: number): void {
    const hub = this.hub;
    const previousPassMs = this.lastPassMs;
    hub.sentSinceSweep = false;
    hub.bytesSinceSweep = 0;
    this.lastPassMs = now;
    let total = 0;
    if (hub.topicSentSinceSweep || now - this.lastFullPassMs >= this.intervalMs * FULL_PASS_INTERVALS) {
      hub.topicSentSinceSweep = false;
      hub.backlogged.clear();
      this.lastFullPassMs = now;
      // Rebuilt from the open connections: one closed meanwhile is not held.
      const before = this.watched;
      const watched = (this.watched = new Set<Conn>());
      for (const conn of this.conns.all) {
        // Not watched: it was empty when last looked at and no direct frame left it backlogged since, so
        // it kept up at least until the previous pass (a backlog no pass could see form is not a stall).
        if (conn.keptUpAtMs < previousPassMs && !before.has(conn)) conn.keptUpAtMs = previousPassMs;
        const buffered = this.checkBackpressure(conn, now);
        if (buffered > 0) watched.add(conn);
        total += buffered;
      }
    } else {
      const watched = this.watched;
      for (const c of hub.backlogged) {
        const conn = c as Conn;
        if (watched.has(conn)) continue;
        if (conn.keptUpAtMs < previousPassMs) conn.keptUpAtMs = previousPassMs;
        watched.add(conn);
      }
      hub.backlogged.clear();
      for (const conn of watched) {
        const buffered = conn.closed ? 0 : this.checkBackpressure(conn, now);
        if (buffered === 0) watched.delete(conn);
        total += buffered;
      }
    }
    if (total > this.budgetBytes) total = this.overBudget(total, now);
    this.pressured = total > this.budgetBytes * PRESSURE_SHARE;
  }

  /**
   * Closes a connection over its own limit, or one that stopped reading with a quarter of it buffered;
   * returns what it still buffers (0 when closed).
   */
  private checkBackpressure(conn: Conn, now: number): number {
    const buffered = conn.ws.getBufferedAmount();
    if (buffered === 0) {
      conn.keptUpAtMs = now;
      return 0;
    }
    const soft = this.dialects.get(conn.dialect)?.limits.maxBackpressureBytes ?? Number.POSITIVE_INFINITY;
    if (buffered <= soft) {
      // Backlogged for a whole interval without draining anything: it is not reading, and every byte more
      // is memory held for nobody (its kernel buffers are full already).
      if (buffered > soft / STALLED_SHARE && now - conn.keptUpAtMs > this.intervalMs * STALL_INTERVALS) {
        this.slowConsumer(conn, now);
        return 0;
      }
      return buffered;
    }
    // Past uWS's limit, publishes to this socket were skipped: count it as a drop.
    if (buffered >= soft * HARD_BACKPRESSURE_FACTOR - LARGEST_FRAME_GUESS_BYTES) this.metrics.backpressureDrops.inc({ dialect: conn.dialect });
    this.slowConsumer(conn, now);
    return 0;
  }

  /**
   * The node's send buffers together passed the budget: many readers each under their own limit can
   * still cost more memory than the node can spare. The largest buffers are closed first until the rest
   * fits (a rare path: it sorts only when over budget). Returns what the open connections still buffer.
   */
  private overBudget(total: number, now: number): number {
    const heavy: { conn: Conn; bytes: number }[] = [];
    for (const conn of this.conns.all) {
      const bytes = conn.ws.getBufferedAmount();
      if (bytes > 0) heavy.push({ conn, bytes });
    }
    heavy.sort((a, b) => b.bytes - a.bytes);
    for (const h of heavy) {
      if (total <= this.budgetBytes) break;
      total -= h.bytes;
      this.slowConsumer(h.conn, now);
    }
    return total;
  }

  /**
   * A reader that is still reading, only too slowly, gets 4008 after what it has buffered. One whose buffer
   * drained nothing for a whole sweep interval has stopped reading: it would never see the close frame, and uWS would
   * hold its whole buffer until the idle timeout, so it is dropped at once and its memory freed.
   */
  private slowConsumer(conn: Conn, now: number): void {
    const stalled = this.stalled(conn, now);
    this.metrics.slowConsumerDisconnects.inc({ dialect: conn.dialect, reader: stalled ? 'stalled' : 'slow' });
    if (stalled) dropConn(conn);
    else closeConn(conn, 'slow_consumer');
  }

  /**
   * Whether a connection over its limit shows no sign of reading: no drain for {@link STALL_INTERVALS}
   * intervals. (A backlog that formed just now with no drain yet is taken for stalled too: it is over its
   * limit either way, and it reconnects and recovers by offset either way; only the close code differs.)
   */
  private stalled(conn: Conn, now: number): boolean {
    return now - conn.drainedAtMs > this.intervalMs * STALL_INTERVALS;
  }

  private silence(d: MountedDialect, timeoutMs: number, now: number): void {
    const conns = this.conns.byDialect.get(d.name);
    if (!conns) return;
    for (const conn of conns) if (now - conn.lastRecvMs > timeoutMs) closeConn(conn, 'client_silent');
  }
}
