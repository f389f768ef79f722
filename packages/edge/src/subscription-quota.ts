/**
 * Per-user subscription caps across the cluster, as one edge enforces them
 * (`SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER`): a cheap local pre-check over the user's connections on this
 * edge, then a reservation at the session service, which counts the user's connections on every edge
 * atomically. The reservations of one tick (every connection's) travel in one call, and one call is in
 * flight at a time, so a connection's deltas reach the service in the order they were made and a burst of
 * connections subscribing at once costs a few calls, not one per connection. Only admitted connections
 * with an identity are counted (anonymous ones are never admitted); a closed connection's count is dropped
 * by the service when its admission is released (or its edge reaped).
 */
import type { Logger } from '@switchboard/core';
import { MAX_RESERVATIONS_PER_CALL, type SessionApi, type SubscriptionVerdict } from '@switchboard/session';
import type { Conn, ConnectionRegistry } from './conn.js';
import { userIndexKey } from './session-gate.js';

/**
 * Answer to a reservation: `ok`, `over_cap` (the user's subscriptions across the cluster would pass the
 * cap) or `unavailable` (the session service could not count it: refused rather than allowed unbounded).
 */
export type QuotaVerdict = 'ok' | 'over_cap' | 'unavailable';

/** What dialects use of the quota (DialectContext `subscriptions`). */
export interface SubscriptionCaps {
  /** The cap on one user's subscriptions across the cluster. */
  readonly maxPerUser: number;
  /**
   * Reserves `n` subscriptions for the connection's user before they are made. `force` counts them even past
   * the cap (subscriptions a resumed session restores: a resume must not lose them); they are still
   * refused with `unavailable` when the service cannot count them. Prepaid credit ({@link prepay}) is used
   * first, without a call.
   */
  reserve(conn: Conn, n: number, force?: boolean): Promise<QuotaVerdict>;
  /**
   * Reserves `n` at once as credit that later {@link reserve} calls of the connection consume (a batch of
   * subscribes, a resume's restored subscriptions: one round trip for all); return what is left with
   * {@link refund}. Refused as a whole: the caller then reserves one by one.
   */
  prepay(conn: Conn, n: number, force?: boolean): Promise<QuotaVerdict>;
  /** Gives back the connection's unused credit. */
  refund(conn: Conn): Promise<void>;
  /**
   * Gives back `n` subscriptions the connection dropped (or that failed after their reservation); resolves
   * once the service has applied it (so room made on one edge is there for the next subscribe on another),
   * or after a failure (retried in the background). Never rejects.
   */
  release(conn: Conn, n: number): Promise<void>;
}

/** What the quota needs. */
export interface SubscriptionQuotaDeps {
  readonly session: Pick<SessionApi, 'reserveSubscriptions'>;
  readonly conns: ConnectionRegistry;
  readonly maxPerUser: number;
  readonly logger: Logger;
  /** How long a release the service did not apply waits before it is sent again. */
  readonly retryMs?: number;
  /** Deltas per call at most (default: what the service accepts). */
  readonly maxBatch?: number;
}

interface Pending {
  readonly conn: Conn;
  readonly delta: number;
  readonly force: boolean;
  readonly done: (v: QuotaVerdict) => void;
}

/** One edge's side of the cluster-wide per-user subscription caps. */
export class SubscriptionQuota implements SubscriptionCaps {
  readonly maxPerUser: number;
  /** What each connection holds as the service counts it, reservations in flight and credit included. */
  private readonly held = new WeakMap<Conn, number>();
  /** The same, summed per user (its index key) over its open connections here: the O(1) pre-check. */
  private readonly heldByUser = new Map<string, number>();
  private readonly credit = new WeakMap<Conn, number>();
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = false;

  constructor(private readonly deps: SubscriptionQuotaDeps) {
    this.maxPerUser = deps.maxPerUser;
  }

  async reserve(conn: Conn, n: number, force = false): Promise<QuotaVerdict> {
    const credit = this.credit.get(conn) ?? 0;
    if (credit >= n) {
      this.credit.set(conn, credit - n);
      return 'ok';
    }
    return this.take(conn, n, force);
  }

  async prepay(conn: Conn, n: number, force = false): Promise<QuotaVerdict> {
    const v = await this.take(conn, n, force);
    if (v === 'ok' && counted(conn)) this.credit.set(conn, (this.credit.get(conn) ?? 0) + n);
    return v;
  }

  refund(conn: Conn): Promise<void> {
    const credit = this.credit.get(conn) ?? 0;
    this.credit.delete(conn);
    return this.release(conn, credit);
  }

  release(conn: Conn, n: number): Promise<void> {
    const d = Math.min(n, this.held.get(conn) ?? 0);
    // A closed connection's count goes with its admission.
    if (d <= 0 || conn.closed) return Promise.resolve();
    this.add(conn, -d);
    return new Promise((resolve) => this.enqueue({ conn, delta: -d, force: false, done: () => resolve() }));
  }

  /** The connection closed: what it held here stops counting for its user (the service drops it with its admission). */
  closed(conn: Conn): void {
    const held = this.held.get(conn) ?? 0;
    if (held > 0) this.add(conn, -held);
    this.credit.delete(conn);
  }

  /** The subscriptions the connection's user holds on this edge (reservations in flight included). */
  heldHere(conn: Conn): number {
    return conn.identity ? (this.heldByUser.get(userIndexKey(conn.identity)) ?? 0) : 0;
  }

  private take(conn: Conn, n: number, force: boolean): Promise<QuotaVerdict> {
    if (n <= 0 || !counted(conn) || conn.closed) return Promise.resolve('ok');
    // The local pre-check: what this edge alone knows is over the cap needs no call.
    if (!force && this.heldHere(conn) + n > this.maxPerUser) return Promise.resolve('over_cap');
    this.add(conn, n);
    return new Promise((resolve) => this.enqueue({ conn, delta: n, force, done: resolve }));
  }

  /** Changes what a connection (and so its user) holds here; never below zero. */
  private add(conn: Conn, delta: number): void {
    const before = this.held.get(conn) ?? 0;
    const after = Math.max(0, before + delta);
    this.held.set(conn, after);
    if (!conn.identity) return;
    const key = userIndexKey(conn.identity);
    const total = (this.heldByUser.get(key) ?? 0) + after - before;
    if (total > 0) this.heldByUser.set(key, total);
    else this.heldByUser.delete(key);
  }

  private enqueue(p: Pending): void {
    this.queue.push(p);
    this.schedule();
  }

  /** Flushes after the current I/O phase: every reservation of this tick goes in the same call. */
  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, this.deps.maxBatch ?? MAX_RESERVATIONS_PER_CALL);
    const live: Pending[] = [];
    for (const p of batch) {
      // Closed meanwhile: nothing to count (its admission release drops what it held).
      if (p.conn.closed) p.done(p.delta > 0 ? 'unavailable' : 'ok');
      else live.push(p);
    }
    if (live.length > 0) {
      this.inFlight = true;
      try {
        const verdicts = await this.deps.session.reserveSubscriptions({
          maxPerUser: this.maxPerUser,
          deltas: live.map((p) => ({ connId: p.conn.connId, delta: p.delta, ...(p.force ? { force: true } : {}) })),
        });
        live.forEach((p, i) => this.settle(p, verdicts[i] ?? 'not_admitted'));
      } catch (err) {
        this.deps.logger.warn({ err, deltas: live.length }, 'subscription reservations unavailable: subscribes refused, releases retried');
        for (const p of live) this.failed(p);
      } finally {
        this.inFlight = false;
      }
    }
    if (this.queue.length > 0) this.schedule();
  }

  private settle(p: Pending, v: SubscriptionVerdict): void {
    if (p.delta < 0 || v === 'ok') return p.done('ok');
    this.undo(p);
    if (v === 'not_admitted') this.deps.logger.warn({ conn: p.conn.connId }, 'subscription refused: the session service no longer counts this connection as admitted');
    p.done(v === 'over_cap' ? 'over_cap' : 'unavailable');
  }

  private failed(p: Pending): void {
    if (p.delta > 0) {
      this.undo(p);
      p.done('unavailable');
      return;
    }
    // The caller is answered now; the service learns of the release when it is back.
    p.done('ok');
    const retry = setTimeout(() => {
      if (!p.conn.closed) this.enqueue({ ...p, done: () => undefined });
    }, this.deps.retryMs ?? 1000);
    retry.unref();
  }

  private undo(p: Pending): void {
    // A connection closed meanwhile was already taken out of its user's count.
    if (!p.conn.closed) this.add(p.conn, -p.delta);
  }
}

/** Whether a connection's subscriptions count: it has an identity and the service admitted it. */
function counted(conn: Conn): boolean {
  return conn.identity !== null && conn.admitted;
}
