/**
 * The way into a session, shared by every dialect that authenticates: verify the token, admit the
 * connection (cluster-wide limits), open or resume the session, and bind identity, tenant and session to
 * the connection. The dialect renders the outcome in its own frames and restores subscriptions with its
 * own codec; the gate also records and forgets a session's subscriptions for it.
 */
import { DEFAULT_TENANT, SwitchboardError, type CloseCodeName, type ErrorCode, type Identity, type Logger, type StreamPosition } from '@switchboard/core';
import { MAX_SUBSCRIPTION_RECORDS_PER_CALL, type OpenSessionResult, type SessionApi, type StoredSubscription, type SubscriptionRecord, type TokenCheck, type TokenVerifier } from '@switchboard/session';
import type { ClusterControl } from './cluster.js';
import { setIdentity, type Conn, type ConnectionRegistry } from './conn.js';
import type { DialectMetrics } from './dialect.js';

/** What {@link SessionGate.authenticate} achieved. */
export type GateResult =
  /** A fresh token on an authenticated connection (same user): identity renewed, nothing else changes. */
  | { readonly ok: true; readonly refreshed: true; readonly identity: Identity }
  /** Authenticated, admitted, in a session (resumed or new). */
  | { readonly ok: true; readonly refreshed: false; readonly identity: Identity; readonly session: OpenSessionResult }
  /** Refused; `close` says whether the connection must be closed (and with which code). */
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly close?: CloseCodeName }
  /** The connection closed meanwhile: nothing to answer. */
  | { readonly ok: false; readonly code: 'gone' };

/** What the gate needs. */
export interface SessionGateDeps {
  readonly verifier: TokenVerifier;
  readonly session: SessionApi;
  readonly conns: ConnectionRegistry;
  readonly logger: Logger;
  /** Closes a resumed session's older connections on every edge. */
  readonly cluster: Pick<ClusterControl, 'closeWhere'>;
}

/** The index key of a user's connections (the session service revokes `user:<tenant>/<name>`). */
export function userIndexKey(identity: Identity): string {
  return `user:${identity.tenant ?? DEFAULT_TENANT}/${identity.userId}`;
}

/**
 * Who a connection is counted as by admission and the per-user subscription cap: the user name within its
 * tenant, so a user of one tenant never uses up the limits of a namesake in another. The separator cannot
 * appear in a token's `sub` (printable characters only); default-tenant users keep their plain name.
 */
export function admissionUserOf(identity: Identity): string {
  return identity.tenant === undefined || identity.tenant === DEFAULT_TENANT ? identity.userId : `${identity.tenant}\x1e${identity.userId}`;
}

/** When a token expires, in ms (0 when it has no `exp`). */
function tokenExpMs(identity: Identity): number {
  return identity.exp !== undefined ? identity.exp * 1000 : 0;
}

/** What the session service's revocation checks need of a verified identity. */
export function tokenCheckOf(identity: Identity): TokenCheck {
  return {
    userId: identity.userId,
    ...(identity.tenant !== undefined ? { tenant: identity.tenant } : {}),
    ...(identity.sessionId !== undefined ? { tokenSessionId: identity.sessionId } : {}),
    ...(identity.iat !== undefined ? { issuedAt: identity.iat } : {}),
  };
}

/** The verify → admit → open/resume path of every dialect. */
export class SessionGate {
  private readonly log: Logger;
  /**
   * Subscriptions saved and forgotten this tick, in order: one `recordSubscriptions` call carries a tick's worth
   * from every connection (a Rpc round trip costs the session service more than the write).
   */
  private records: SubscriptionRecord[] = [];
  private recordScheduled = false;

  constructor(private readonly deps: SessionGateDeps) {
    this.log = deps.logger.child({ component: 'session-gate' });
  }

  /**
   * Authenticates `conn` with `token`, resuming `wantedSessionId` (or the session the token was issued
   * for) when it belongs to the same user and tenant. A connection already authenticated only refreshes
   * its identity, and only for the same user.
   */
  async authenticate(conn: Conn, metrics: DialectMetrics, token: string, wantedSessionId?: string | null): Promise<GateResult> {
    const verified = await this.deps.verifier.verify(token);
    if (conn.closed) return { ok: false, code: 'gone' };
    if (!verified.ok) return { ok: false, code: verified.code, message: verified.message };
    const identity = verified.identity;
    if (conn.identity) {
      if (conn.identity.userId !== identity.userId || (conn.identity.tenant ?? null) !== (identity.tenant ?? null))
        return { ok: false, code: 'user_mismatch', message: 'the token names another user than this connection' };
      // A fresh token must not be a revoked one (a logged-out session's token renewing a live socket).
      let check;
      try {
        check = await this.deps.session.checkToken(tokenCheckOf(identity));
      } catch (err) {
        this.log.warn({ err }, 'token check unavailable');
        if (conn.closed) return { ok: false, code: 'gone' };
        return { ok: false, code: 'unavailable', message: 'the session service is unavailable; retry' };
      }
      if (conn.closed) return { ok: false, code: 'gone' };
      if (!check.ok) return { ok: false, code: 'revoked_token', message: check.message, close: 'session_revoked' };
      conn.identity = identity;
      conn.tokenExpMs = tokenExpMs(identity);
      return { ok: true, refreshed: true, identity };
    }
    // A session the client names explicitly is taken over from any other socket; the one a login token
    // carries is shared by the connections opened with that token.
    const res = await this.admit(conn, metrics, identity, wantedSessionId ?? identity.sessionId, wantedSessionId != null);
    if (res.ok) conn.tokenExpMs = tokenExpMs(identity);
    return res;
  }

  /**
   * Admits an already verified identity and opens (or resumes) its session. `exclusive` (default: when a
   * session is named) closes the session's other connections on every edge: one session, one socket.
   */
  async admit(conn: Conn, metrics: DialectMetrics, identity: Identity, wantedSessionId?: string, exclusive = wantedSessionId !== undefined): Promise<GateResult> {
    let admitted;
    try {
      admitted = await this.deps.session.admit({ userId: admissionUserOf(identity), connId: conn.connId, nodeId: this.deps.conns.nodeId, ip: conn.ip });
    } catch (err) {
      this.log.warn({ err }, 'admission unavailable');
      if (conn.closed) return { ok: false, code: 'gone' };
      return { ok: false, code: 'unavailable', message: 'the session service is unavailable; retry' };
    }
    if (!admitted.ok) {
      metrics.rateLimited(admitted.rule);
      if (conn.closed) return { ok: false, code: 'gone' };
      return { ok: false, code: admitted.code, message: admitted.message, close: 'admission_refused' };
    }
    if (conn.closed) {
      await this.release(conn.connId);
      return { ok: false, code: 'gone' };
    }
    conn.admitted = true;
    let session: OpenSessionResult;
    try {
      session = await this.deps.session.openSession({
        userId: identity.userId,
        roles: identity.roles,
        ...(identity.tenant !== undefined ? { tenant: identity.tenant } : {}),
        ...(wantedSessionId !== undefined ? { sessionId: wantedSessionId } : {}),
        ...(identity.sessionId !== undefined ? { tokenSessionId: identity.sessionId } : {}),
        ...(identity.iat !== undefined ? { issuedAt: identity.iat } : {}),
      });
    } catch (err) {
      if (err instanceof SwitchboardError && err.code === 'revoked_token') {
        conn.admitted = false;
        await this.release(conn.connId);
        if (conn.closed) return { ok: false, code: 'gone' };
        return { ok: false, code: 'revoked_token', message: err.message, close: 'session_revoked' };
      }
      this.log.warn({ err }, 'session service unavailable');
      if (conn.closed) return { ok: false, code: 'gone' };
      return { ok: false, code: 'unavailable', message: 'the session service is unavailable; retry', close: 'internal_error' };
    }
    if (conn.closed) return { ok: false, code: 'gone' };
    setIdentity(conn, identity);
    conn.sessionId = session.sessionId;
    this.deps.conns.authenticated(conn);
    // Indexed for revocations (logout, user deleted, password changed) and takeovers, on whichever edge.
    this.deps.conns.index(conn, userIndexKey(identity));
    this.deps.conns.index(conn, `session:${session.sessionId}`);
    if (exclusive && session.continued) {
      this.deps.cluster.closeWhere(`session:${session.sessionId}`, 'session_replaced', conn.connId).catch((err: unknown) => {
        this.log.warn({ err }, 'older connections of a resumed session not closed');
      });
    }
    return { ok: true, refreshed: false, identity, session };
  }

  /** Records a subscription in the connection's session (with its start position), so a resume restores it. */
  saveSubscription(conn: Conn, key: string, request: Record<string, unknown>, position: StreamPosition | null): void {
    if (conn.sessionId === null) return;
    const sub: StoredSubscription = { key, dialect: conn.dialect, request, ...(position ? { position } : {}) };
    this.record({ sessionId: conn.sessionId, save: sub });
  }

  /** Forgets a subscription of the connection's session. */
  forgetSubscription(conn: Conn, key: string): void {
    if (conn.sessionId === null) return;
    this.record({ sessionId: conn.sessionId, remove: key });
  }

  private record(r: SubscriptionRecord): void {
    this.records.push(r);
    this.scheduleRecords();
  }

  /**
   * Sent after the current I/O phase, without waiting for an earlier call: a subscription the client was
   * told about must reach its session within a tick, so that an edge killed right after still leaves it
   * to be resumed elsewhere. (Records within one call are applied in order; calls may overlap, as the
   * single calls they replace did.)
   */
  private scheduleRecords(): void {
    if (this.recordScheduled || this.records.length === 0) return;
    this.recordScheduled = true;
    setImmediate(() => {
      this.recordScheduled = false;
      this.flushRecords();
    });
  }

  private flushRecords(): void {
    while (this.records.length > 0) {
      const batch = this.records.splice(0, MAX_SUBSCRIPTION_RECORDS_PER_CALL);
      this.deps.session.recordSubscriptions(batch).catch((err: unknown) => {
        // Not retried: a resume then restores what the session held before (the client resubscribes the rest).
        this.log.warn({ err, records: batch.length }, 'subscriptions not recorded in their sessions');
      });
    }
  }

  private async release(connId: string): Promise<void> {
    try {
      await this.deps.session.release(connId);
    } catch (err) {
      // The reaper frees it with the node's other dead connections; the slot is only held meanwhile.
      this.log.warn({ err }, 'admission release failed');
    }
  }
}
