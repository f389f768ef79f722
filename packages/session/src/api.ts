import type { StreamPosition } from '@switchboard/core';
import type { AdmissionRequest, AdmissionResult, SubscriptionDelta, SubscriptionVerdict } from './admission.js';
import type { CheckpointEntry, StoredSubscription } from './repo.js';

/** A login attempt (the address is the client's, for per-address lockout). */
export interface LoginRequest {
  readonly username: string;
  readonly password: string;
  readonly ip: string;
}

/** The user as clients see it. */
export interface PublicUser {
  readonly name: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
}

/** Answer of {@link SessionApi.login}. */
export type LoginResult =
  | { readonly ok: true; readonly token: string; readonly sessionId: string; readonly expiresAt: number; readonly user: PublicUser }
  | {
      readonly ok: false;
      readonly code: 'invalid_credentials' | 'locked_out' | 'invalid_message';
      readonly message: string;
      readonly retryAfterSec?: number;
    };

/** Opening (or resuming) the session of an authenticated connection. */
export interface OpenSessionRequest {
  readonly userId: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  /** The session to resume, when the client names one. */
  readonly sessionId?: string;
  /** The session the token was issued for (its `sid`), checked for revocation. */
  readonly tokenSessionId?: string;
  /** The token's `iat` (seconds), checked against revocations of its user. */
  readonly issuedAt?: number;
}

/** A verified token as the revocation checks need it. */
export interface TokenCheck {
  readonly userId: string;
  readonly tenant?: string;
  /** The token's `sid`, if it belongs to a session. */
  readonly tokenSessionId?: string;
  /** The token's `iat` (seconds). */
  readonly issuedAt?: number;
}

/** Answer of {@link SessionApi.openSession}. */
export interface OpenSessionResult {
  readonly sessionId: string;
  readonly expiresAt: number;
  /**
   * True when the named session existed, belongs to this user (and tenant), and gives back subscriptions
   * of an earlier connection. An existing session with none (the first connection with a login token)
   * keeps its id but is not resumed.
   */
  readonly resumed: boolean;
  /** True when the named session existed and this connection carries it on (same id), subscriptions or not. */
  readonly continued: boolean;
  readonly subscriptions: readonly StoredSubscription[];
}

/**
 * A live session found by its id alone ({@link SessionApi.resumeSession}): whose it is, so a client that
 * presents only a session id (a Fleet Freedom `ghostId`) can be logged in without credentials.
 */
export interface ResumedSession {
  readonly sessionId: string;
  readonly userId: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  /** The renewed sliding expiry, ms since the Unix epoch. */
  readonly expiresAt: number;
  readonly subscriptions: readonly StoredSubscription[];
}

/** Answer of {@link SessionApi.revocationsSince}. */
export interface RevocationsPage {
  /** The session service's clock when it answered: an edge's next cursor derives from it, never from its own clock. */
  readonly nowMs: number;
  /** Oldest first (ties by key); each key once, at its latest revocation. */
  readonly revocations: readonly { readonly key: string; readonly atMs: number }[];
  /** More revocations follow the last one: ask again from its `atMs`. */
  readonly more: boolean;
}

/** Most operations one {@link SessionApi.recordSubscriptions} call may carry (edges split larger batches). */
export const MAX_SUBSCRIPTION_RECORDS_PER_CALL = 1000;

/**
 * One change to the subscriptions recorded in a session ({@link SessionApi.recordSubscriptions}): `save` records
 * (or replaces) one, `remove` forgets the one under that key.
 */
export type SubscriptionRecord =
  | { readonly sessionId: string; readonly save: StoredSubscription }
  | { readonly sessionId: string; readonly remove: string };

/** Most subscription deltas one {@link SessionApi.reserveSubscriptions} call may carry (edges split larger batches). */
export const MAX_RESERVATIONS_PER_CALL = 10_000;

/** A batch of subscription count changes from one edge ({@link SessionApi.reserveSubscriptions}). */
export interface SubscriptionReservationRequest {
  /** The cap on one user's subscriptions across the cluster (`SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER` of the edge). */
  readonly maxPerUser: number;
  readonly deltas: readonly SubscriptionDelta[];
}

/**
 * What edges ask of the session service (DESIGN §6). The all-in-one process calls the service
 * directly; edges of a cluster call it over the Rpc seam.
 */
export interface SessionApi {
  login(req: LoginRequest): Promise<LoginResult>;
  admit(req: AdmissionRequest): Promise<AdmissionResult>;
  release(connId: string): Promise<void>;
  heartbeat(nodeId: string): Promise<void>;
  /** Opens or resumes a session; rejects with `revoked_token` when the token or session was revoked. */
  openSession(req: OpenSessionRequest): Promise<OpenSessionResult>;
  /** Whether a verified token is still good (not revoked): a re-`auth` on a live connection asks. */
  checkToken(req: TokenCheck): Promise<{ readonly ok: true } | { readonly ok: false; readonly message: string }>;
  /** Logs a token out: its session is revoked (or, for a token of no session, its user's tokens until now). */
  logout(req: TokenCheck): Promise<void>;
  /**
   * Finds a live session by its id alone and renews its sliding expiry: its user, roles, tenant and
   * subscriptions, or null when it does not exist (any more). The id is a bearer secret (128 random bits):
   * whoever holds it is that user until the session expires. The caller still admits the connection
   * and resumes through {@link openSession} with the returned user.
   */
  resumeSession(sessionId: string): Promise<ResumedSession | null>;
  /**
   * Saves and removes recorded subscriptions of many sessions in one call, applied in the order given (an
   * edge batches what its connections subscribed and unsubscribed within one tick).
   */
  recordSubscriptions(records: readonly SubscriptionRecord[]): Promise<void>;
  checkpoint(entries: readonly CheckpointEntry[]): Promise<void>;
  /** Renews a session's sliding expiry (on disconnect). */
  touchSession(sessionId: string): Promise<void>;
  /** Renews many sessions at once (an edge draining its connections). */
  touchSessions(sessionIds: readonly string[]): Promise<void>;
  /** Releases every connection a node holds (an edge shutting down gracefully); returns how many. */
  releaseNode(nodeId: string): Promise<number>;

  /**
   * The revocations recorded at or after `sinceMs` (the service's clock), a page at a time, with the
   * service's clock: edges poll it, so a revocation whose announcement they missed still closes its
   * sockets. Without `sinceMs`, no revocations: only the clock.
   */
  revocationsSince(sinceMs?: number): Promise<RevocationsPage>;

  /**
   * Changes the subscription counts of admitted connections, in order and atomically (one call per edge
   * tick): a positive delta is refused (`over_cap`) when its user's total across the cluster would pass
   * the cap, unless forced (a resume's restored subscriptions); negative deltas always apply.
   */
  reserveSubscriptions(req: SubscriptionReservationRequest): Promise<SubscriptionVerdict[]>;
}

export type { CheckpointEntry, StoredSubscription, StreamPosition, SubscriptionDelta, SubscriptionVerdict };
