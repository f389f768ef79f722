import type { StreamPosition } from '@switchboard/core';
import type { Admission, SubscriptionCounts } from './admission.js';

/** A user as stored (only the session service ever reads `passwordHash`). */
export interface UserRecord {
  readonly name: string;
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  readonly createdAt: number;
}

/** A subscription a session holds: what to resubscribe with, and where it was last checkpointed. */
export interface StoredSubscription {
  /** The subscription's id on its connection, as the dialect keys it (valtronics: the channel as clients name it). */
  readonly key: string;
  readonly dialect: string;
  /** The dialect's canonical subscribe request, replayed through its codec on resume. */
  readonly request: Record<string, unknown>;
  readonly position?: StreamPosition;
}

/** A session: survives its connection and its edge until its sliding expiry. */
export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  readonly expiresAt: number;
  /** When it was created, ms since the Unix epoch (a user revocation ends the sessions created before it). */
  readonly createdAt: number;
  readonly subscriptions: readonly StoredSubscription[];
}

/** One recorded position of a session's subscription. */
export interface CheckpointEntry {
  readonly sessionId: string;
  /** The subscription's key ({@link StoredSubscription.key}). */
  readonly key: string;
  readonly position: StreamPosition;
}

/** Failed-login bookkeeping of one key (a user or an address). */
export interface FailureState {
  readonly count: number;
  /** 0 when not locked. */
  readonly lockedUntilMs: number;
}

/** Lockout rule: after `threshold` failures, lock for `baseSec`, doubling per further failure. */
export interface LockoutPolicy {
  readonly threshold: number;
  readonly baseSec: number;
  readonly maxSec: number;
  /** Failures are forgotten this long after the last one. */
  readonly windowSec: number;
}

/** The session service's state (DESIGN §2 `SessionRepo`): memory and Redis implementations. */
export interface SessionRepo extends Admission, SubscriptionCounts {
  /** False when the name is taken. */
  createUser(user: UserRecord): Promise<boolean>;
  getUser(name: string): Promise<UserRecord | null>;
  deleteUser(name: string): Promise<boolean>;
  /** Replaces a user's password hash; false when there is no such user. */
  setPasswordHash(name: string, passwordHash: string): Promise<boolean>;

  createSession(s: Omit<SessionRecord, 'expiresAt' | 'subscriptions' | 'createdAt'>, ttlSec: number): Promise<SessionRecord>;
  /** Deletes a session (logout, revocation); false when it did not exist. */
  deleteSession(id: string): Promise<boolean>;
  /** Renews the sliding expiry and returns the session, or null when it does not exist (any more). */
  touchSession(id: string, ttlSec: number): Promise<SessionRecord | null>;
  putSubscription(id: string, sub: StoredSubscription): Promise<void>;
  removeSubscription(id: string, key: string): Promise<void>;
  /** Records positions of existing subscriptions (unknown sessions or keys are ignored). */
  checkpoint(entries: readonly CheckpointEntry[]): Promise<void>;

  failures(key: string, nowMs: number): Promise<FailureState>;
  recordFailure(key: string, policy: LockoutPolicy, nowMs: number): Promise<FailureState>;
  clearFailures(key: string): Promise<void>;
  /**
   * Reserves one login attempt for `key` atomically, before its password is checked, so that a burst of
   * concurrent attempts checks at most `policy.threshold` passwords: refused while locked, and while the
   * attempts already reserved (in flight or failed) reach the threshold. Past the threshold, once a
   * lockout has run out, one attempt at a time goes through. The outcome is settled with
   * {@link attemptFailed} or {@link clearFailures}. A refusal because attempts are still in flight (no
   * lockout yet) says `busy`: their outcome decides whether a caller that waits gets its turn.
   */
  reserveAttempt(key: string, policy: LockoutPolicy, nowMs: number): Promise<AttemptReservation>;
  /** A reserved attempt failed: locks `key` when its count reached the threshold (doubling beyond). */
  attemptFailed(key: string, policy: LockoutPolicy, nowMs: number): Promise<FailureState>;
  /** Takes a slot of `ms` for `key` (at most one caller per `ms`); false when one is taken. */
  takeSlot(key: string, ms: number): Promise<boolean>;

  /**
   * Records a revocation under `key` (`session:<id>`, `user:<tenant>/<name>`) at `atMs`, kept `ttlSec`, and
   * appends it to the revocation log ({@link revocationsSince}).
   */
  revoke(key: string, atMs: number, ttlSec: number): Promise<void>;
  /** When `key` was last revoked, or null. */
  revokedAt(key: string): Promise<number | null>;

  /**
   * The revocation log, which edges poll so that a revocation reaches one that missed its announcement:
   * the revocations at or after `sinceMs`, oldest first (ties by key), at most `limit`. A key revoked again
   * appears once, at its latest revocation. Entries whose `atMs` is `ttlSec` (of the revocation recorded
   * after them) in the past are trimmed.
   */
  revocationsSince(sinceMs: number, limit: number): Promise<RevocationEntry[]>;

  /** Marks a node alive now. */
  heartbeat(nodeId: string, nowMs: number): Promise<void>;
  /** Releases every connection of nodes silent for `deadMs`; returns how many per reaped node. */
  reapDeadNodes(deadMs: number, nowMs: number): Promise<{ node: string; released: number }[]>;
  /** Releases every connection of one node now (it is shutting down); returns how many. */
  releaseNode(nodeId: string): Promise<number>;

  close(): Promise<void>;
}

/** One entry of the revocation log: a revoked key and when it was revoked (the session service's clock). */
export interface RevocationEntry {
  readonly key: string;
  readonly atMs: number;
}

/** The lockout after `count` failures under `policy`, from `nowMs`; 0 when under the threshold. */
export function lockUntil(count: number, policy: LockoutPolicy, nowMs: number): number {
  if (count < policy.threshold) return 0;
  const sec = Math.min(policy.maxSec, policy.baseSec * 2 ** Math.min(30, count - policy.threshold));
  return nowMs + sec * 1000;
}

/** How long a reservation past the threshold holds the key while its password is checked. */
export const ATTEMPT_HOLD_MS = 30_000;

/**
 * Reservations whose outcome has not come this long after the last one are presumed lost (their checker
 * died): they stop blocking, and only the failures that were settled still count.
 */
export const ATTEMPT_STALE_MS = 5000;

/** Answer of {@link SessionRepo.reserveAttempt}. */
export type AttemptReservation =
  | { readonly ok: true; readonly count: number }
  | { readonly ok: false; readonly lockedUntilMs: number; readonly busy?: true };
