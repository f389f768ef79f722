/**
 * The slow path of revocation: an edge reads the session service's revocation log on a timer, so a
 * revocation whose announcement it never received (cut off from Redis when it went out, the control
 * message trimmed away meanwhile) still closes its sockets with 4012. The announcement on the control
 * channel stays the fast path; by the time a poll sees a revocation its sockets are usually closed already.
 *
 * The cursor is in the session service's clock (its answer's `nowMs` minus a margin), never this edge's.
 * A failed poll keeps it, so the next one that gets through covers the gap.
 */
import type { Logger } from '@switchboard/core';
import type { SessionApi } from '@switchboard/session';
import type { Conn, ConnectionRegistry } from './conn.js';
import { closeConn } from './listeners.js';
import { tokenCheckOf } from './session-gate.js';

/**
 * Every poll reads again this far behind the service's clock of the previous answer: a revocation
 * recorded by another service replica (its clock a little off) or written a little late is still seen.
 */
export const REVOCATION_POLL_MARGIN_MS = 10_000;

/** Pages one poll reads at most (`SessionApi.revocationsSince` answers up to 1000 each); the next continues. */
const MAX_PAGES_PER_POLL = 20;

/** Polls the revocation log and closes what it revoked here. */
export class RevocationPoll {
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  /** Service clock from which the next poll reads; null until the service first answered. */
  private cursorMs: number | null = null;

  private readonly log: Logger;

  constructor(
    private readonly session: Pick<SessionApi, 'revocationsSince' | 'checkToken'>,
    private readonly conns: Pick<ConnectionRegistry, 'byKey'>,
    logger: Logger,
    private readonly o: { readonly pollMs: number; readonly marginMs?: number },
  ) {
    this.log = logger.child({ component: 'revocation-poll' });
  }

  /** Starts polling (the first poll at once: it learns the service's clock). */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops polling. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One poll; resolves when it is done (never rejects). Exposed for tests. */
  async poll(): Promise<void> {
    const marginMs = this.o.marginMs ?? REVOCATION_POLL_MARGIN_MS;
    try {
      if (this.cursorMs === null) {
        // Sockets here were judged by the service when they authenticated; any since the service became
        // reachable (a poll interval at most) are within the margin.
        this.cursorMs = (await this.session.revocationsSince()).nowMs - marginMs;
        return;
      }
      for (let page = 0; page < MAX_PAGES_PER_POLL; page++) {
        const res = await this.session.revocationsSince(this.cursorMs);
        await this.apply(res.revocations);
        const last = res.revocations[res.revocations.length - 1];
        if (!res.more || last === undefined) {
          this.cursorMs = res.nowMs - marginMs;
          return;
        }
        // Continue from the last one (inclusive: applying twice is harmless); a page all in one
        // millisecond moves past it.
        this.cursorMs = last.atMs > this.cursorMs ? last.atMs : this.cursorMs + 1;
      }
    } catch (err) {
      this.log.warn({ err }, 'revocation poll failed; the next one covers the gap');
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.poll().finally(() => this.schedule(this.o.pollMs));
    }, ms);
    this.timer.unref();
  }

  private async apply(revocations: readonly { readonly key: string; readonly atMs: number }[]): Promise<void> {
    let closed = 0;
    for (const r of revocations) {
      const conns = this.conns.byKey(r.key).filter((c) => !c.closed);
      if (conns.length === 0) continue;
      if (!r.key.startsWith('user:')) {
        // A revoked session never authenticates again: everything indexed under it predates it.
        for (const conn of conns) closeConn(conn, 'session_revoked');
        closed += conns.length;
        continue;
      }
      // Sockets opened with the same token get one answer (a client may hold many).
      const asked = new Map<string, Promise<boolean>>();
      const verdicts = await Promise.all(
        conns.map((conn) => {
          const id = conn.identity;
          const token = id ? `${id.sessionId ?? ''} ${id.iat ?? ''}` : '';
          let verdict = asked.get(token);
          if (!verdict) asked.set(token, (verdict = this.predates(conn, r.atMs)));
          return verdict;
        }),
      );
      conns.forEach((conn, i) => {
        if (!verdicts[i] || conn.closed) return;
        closeConn(conn, 'session_revoked');
        closed++;
      });
    }
    if (closed > 0) this.log.info({ closed }, 'revocations whose announcement this edge missed: sockets closed');
  }

  /**
   * Whether `conn` authenticated before a user revocation at `atMs` (service clock). A token issued in an
   * earlier second surely did; otherwise (the same second, a newer token, or no `iat` at all: a Fleet
   * Freedom login or `ghostId`) the session service's own rule decides — by its session's start where it
   * has one, so a user who logged in again after a password change stays. When the service cannot be
   * asked, it is closed: it reconnects and is judged then.
   */
  private async predates(conn: Conn, atMs: number): Promise<boolean> {
    const identity = conn.identity;
    if (!identity) return true;
    if (identity.iat !== undefined && identity.iat < Math.floor(atMs / 1000)) return true;
    try {
      return !(await this.session.checkToken(tokenCheckOf(identity))).ok;
    } catch (err) {
      this.log.warn({ err }, 'token check unavailable for a revoked user’s socket: closing it');
      return true;
    }
  }
}
