/**
 * The way into a session, shared by every dialect that authenticates: verify the token, admit the
 * connection (cluster-wide limits), open or resume the session, and bind identity, tenant and session to
 * the connection. The dialect renders the outcome in its own frames and restores subscriptions with its
 * own codec; the gate also records and forgets a session's subscriptions for it.
 */
import type { CloseCodeName, ErrorCode, Identity, Logger, StreamPosition } from '@switchboard/core';
import type { OpenSessionResult, SessionApi, StoredSubscription, TokenVerifier } from '@switchboard/session';
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
}

/** The verify → admit → open/resume path of every dialect. */
export class SessionGate {
  private readonly log: Logger;

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
      conn.identity = identity;
      return { ok: true, refreshed: true, identity };
    }
    return this.admit(conn, metrics, identity, wantedSessionId ?? identity.sessionId);
  }

  /** Admits an already verified identity and opens (or resumes) its session. */
  async admit(conn: Conn, metrics: DialectMetrics, identity: Identity, wantedSessionId?: string): Promise<GateResult> {
    let admitted;
    try {
      admitted = await this.deps.session.admit({ userId: identity.userId, connId: conn.connId, nodeId: this.deps.conns.nodeId, ip: conn.ip });
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
      });
    } catch (err) {
      this.log.warn({ err }, 'session service unavailable');
      if (conn.closed) return { ok: false, code: 'gone' };
      return { ok: false, code: 'unavailable', message: 'the session service is unavailable; retry', close: 'internal_error' };
    }
    if (conn.closed) return { ok: false, code: 'gone' };
    setIdentity(conn, identity);
    conn.sessionId = session.sessionId;
    this.deps.conns.authenticated(conn);
    return { ok: true, refreshed: false, identity, session };
  }

  /** Records a subscription in the connection's session (with its start position), so a resume restores it. */
  saveSubscription(conn: Conn, key: string, request: Record<string, unknown>, position: StreamPosition | null): void {
    if (conn.sessionId === null) return;
    const sub: StoredSubscription = { key, dialect: conn.dialect, request, ...(position ? { position } : {}) };
    this.deps.session.saveSubscription(conn.sessionId, sub).catch((err: unknown) => this.log.warn({ err, key }, 'subscription not recorded in the session'));
  }

  /** Forgets a subscription of the connection's session. */
  forgetSubscription(conn: Conn, key: string): void {
    if (conn.sessionId === null) return;
    this.deps.session.removeSubscription(conn.sessionId, key).catch((err: unknown) => this.log.warn({ err, key }, 'subscription not removed from the session'));
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
