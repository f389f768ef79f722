/**
 * The session/auth service logic: logins (scrypt, lockout with backoff per user and per address),
 * token minting, sessions that outlive their edge, cluster-wide admission and dead-edge reaping.
 * State lives in the SessionRepo; this class holds none, so replicas are interchangeable.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_TENANT, SwitchboardError, isValidTenant, type Logger } from '@switchboard/core';
import type { AdmissionRequest, AdmissionResult, SubscriptionVerdict } from './admission.js';
import type { LoginRequest, LoginResult, OpenSessionRequest, OpenSessionResult, PublicUser, ResumedSession, RevocationsPage, SessionApi, SubscriptionRecord, SubscriptionReservationRequest, TokenCheck } from './api.js';
import { RevocationAnnouncer } from './announcer.js';
import type { TokenIssuer } from './keys.js';
import type { SessionMetrics } from './metrics.js';
import { dummyHash, hashPassword, passwordPolicyProblem, verifyPassword, MAX_PASSWORD_LENGTH } from './passwords.js';
import type { AttemptReservation, CheckpointEntry, LockoutPolicy, SessionRepo } from './repo.js';
import type { TokenClaims } from './tokens.js';

/** User names: what may appear in a token `sub` and a Redis key. */
export const USER_NAME_RE = /^[A-Za-z0-9_.@+-]{1,128}$/;
const ROLE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Settings of the service. */
export interface SessionServiceOptions {
  readonly repo: SessionRepo;
  readonly issuer: TokenIssuer;
  readonly logger: Logger;
  readonly metrics: SessionMetrics;
  readonly tokenTtlSec: number;
  readonly sessionTtlSec: number;
  readonly userLockout: LockoutPolicy;
  readonly ipLockout: LockoutPolicy;
  readonly nodeDeadSec: number;
  /** Longest token lifetime: no token is minted longer, and revocation markers are kept this long. */
  readonly maxTokenLifetimeSec: number;
}

/** Tells the edges to close the connections indexed under these keys (`session:<id>`, `user:<tenant>/<name>`). */
export type RevocationListener = (keys: readonly string[]) => Promise<void>;

/** The revocation key of a user: its connections are indexed under it on every edge. */
export function userRevocationKey(userId: string, tenant: string | undefined): string {
  return `user:${tenant ?? DEFAULT_TENANT}/${userId}`;
}

/** The revocation key of a session. */
export function sessionRevocationKey(sessionId: string): string {
  return `session:${sessionId}`;
}

/** How long a login waits for the attempts of the same user ahead of it to be checked (within the edge's login deadline of 4 Rpc timeouts). */
const LOGIN_QUEUE_MS = 15_000;

/** After this many failed logins from one address (any users), its logins are slowed to one per second. */
const ADDRESS_SLOT_MS = 1000;

/** Most revocations one {@link SessionService.revocationsSince} answer carries (`more` says others follow). */
export const REVOCATIONS_PAGE = 1000;

/** A new session id (the Fleet Freedom `ghostId`): 128 random bits, URL-safe. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** The session service. */
export class SessionService implements SessionApi {
  private readonly repo: SessionRepo;
  private readonly log: Logger;
  /** The service's metrics (the Rpc handler records into them too). */
  readonly metrics: SessionMetrics;

  private announcer: RevocationAnnouncer | null = null;

  constructor(private readonly o: SessionServiceOptions) {
    this.repo = o.repo;
    this.log = o.logger.child({ component: 'session' });
    this.metrics = o.metrics;
  }

  /**
   * Where revocations are announced (the edges' control channel); set once the bus is up. A failed
   * announcement is retried with backoff for a while (announcer.ts).
   */
  onRevoke(listener: RevocationListener): void {
    this.announcer?.stop();
    this.announcer = new RevocationAnnouncer(listener, this.log);
  }

  /** Pending announcement retries stop (the process is shutting down; the edges' poll covers them). */
  stopAnnouncing(): void {
    this.announcer?.stop();
  }

  async login(req: LoginRequest): Promise<LoginResult> {
    const end = this.o.metrics.loginDuration.startTimer();
    try {
      const result = await this.tryLogin(req);
      this.o.metrics.logins.inc({ outcome: result.ok ? 'ok' : result.code });
      return result;
    } finally {
      end();
    }
  }

  private async tryLogin(req: LoginRequest): Promise<LoginResult> {
    if (typeof req.username !== 'string' || !USER_NAME_RE.test(req.username) || typeof req.password !== 'string' || req.password.length > MAX_PASSWORD_LENGTH)
      return { ok: false, code: 'invalid_message', message: '"username" and "password" must be strings' };
    const now = Date.now();
    const userKey = `user:${req.username}`;
    const ipKey = `ip:${req.ip}`;
    // Per address: a throttle, never a lockout, so one attacker behind a NAT cannot lock its other users
    // out; past the limit the address gets one attempt per second for all its users together.
    const ipf = await this.repo.failures(ipKey, now);
    if (ipf.count >= this.o.ipLockout.threshold && !(await this.repo.takeSlot(`throttle:${ipKey}`, ADDRESS_SLOT_MS)))
      return { ok: false, code: 'locked_out', message: 'too many failed logins from this address; retry in 1 s', retryAfterSec: 1 };
    // Per user: the attempt is reserved before the password is looked at, so a burst of concurrent
    // guesses checks at most the limit, and a correct guess during a lockout gains nothing.
    const reserved = await this.reserve(userKey, now);
    if (!reserved.ok) {
      const retryAfterSec = Math.max(1, Math.ceil((reserved.lockedUntilMs - now) / 1000));
      return { ok: false, code: 'locked_out', message: `too many failed logins; retry in ${retryAfterSec} s`, retryAfterSec };
    }
    const user = await this.repo.getUser(req.username);
    const matches = await verifyPassword(req.password, user?.passwordHash ?? (await dummyHash()));
    if (!user || !matches) {
      const failedAt = Date.now();
      const [after] = await Promise.all([this.repo.attemptFailed(userKey, this.o.userLockout, failedAt), this.repo.recordFailure(ipKey, this.o.ipLockout, failedAt)]);
      this.log.info({ user: req.username, ip: req.ip, failures: after.count }, 'login failed');
      return { ok: false, code: 'invalid_credentials', message: 'wrong user name or password' };
    }
    await this.repo.clearFailures(userKey);
    const session = await this.repo.createSession(
      { id: newSessionId(), userId: user.name, roles: user.roles, ...(user.tenant !== undefined ? { tenant: user.tenant } : {}) },
      this.o.sessionTtlSec,
    );
    this.o.metrics.sessions.inc({ outcome: 'new' });
    const token = await this.o.issuer.issue({
      sub: user.name,
      roles: user.roles,
      ...(user.tenant !== undefined ? { tenant: user.tenant } : {}),
      sid: session.id,
      ttlSec: this.o.tokenTtlSec,
    });
    return { ok: true, token, sessionId: session.id, expiresAt: now + this.o.tokenTtlSec * 1000, user: publicUser(user) };
  }

  /**
   * Reserves a login attempt; while the attempts already reserved are still being checked (`busy`), waits
   * for their outcome: a success clears the way (many correct logins at once all get in, a few at a
   * time), failures end in a lockout that refuses the waiting ones too.
   */
  private async reserve(userKey: string, startedMs: number): Promise<AttemptReservation> {
    for (;;) {
      const r = await this.repo.reserveAttempt(userKey, this.o.userLockout, Date.now());
      if (r.ok || !r.busy || Date.now() - startedMs > LOGIN_QUEUE_MS) return r;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
    }
  }

  async admit(req: AdmissionRequest): Promise<AdmissionResult> {
    const res = await this.repo.admit(req);
    this.o.metrics.admissions.inc({ outcome: res.ok ? 'ok' : res.rule });
    return res;
  }

  release(connId: string): Promise<void> {
    return this.repo.release(connId);
  }

  heartbeat(nodeId: string): Promise<void> {
    return this.repo.heartbeat(nodeId, Date.now());
  }

  async openSession(req: OpenSessionRequest): Promise<OpenSessionResult> {
    const refused = await this.revocation(req);
    if (refused) throw new SwitchboardError('revoked_token', refused);
    if (req.sessionId !== undefined) {
      const s = await this.repo.touchSession(req.sessionId, this.o.sessionTtlSec);
      // Same user and same tenant: the same name in another tenant is another user.
      if (s && s.userId === req.userId && (s.tenant ?? DEFAULT_TENANT) === (req.tenant ?? DEFAULT_TENANT)) {
        if (await this.sessionRevoked(s)) throw new SwitchboardError('revoked_token', 'the session was revoked; log in again');
        // "Resumed" means an earlier connection's subscriptions come back. The session a login created
        // (named by its token) has none on its first connection: it continues, it does not resume, and
        // the client must subscribe itself.
        const resumed = s.subscriptions.length > 0;
        this.o.metrics.sessions.inc({ outcome: resumed ? 'resumed' : 'continued' });
        return { sessionId: s.id, expiresAt: s.expiresAt, resumed, continued: true, subscriptions: s.subscriptions };
      }
    }
    const s = await this.repo.createSession(
      { id: newSessionId(), userId: req.userId, roles: req.roles, ...(req.tenant !== undefined ? { tenant: req.tenant } : {}) },
      this.o.sessionTtlSec,
    );
    this.o.metrics.sessions.inc({ outcome: 'new' });
    return { sessionId: s.id, expiresAt: s.expiresAt, resumed: false, continued: false, subscriptions: [] };
  }

  async resumeSession(sessionId: string): Promise<ResumedSession | null> {
    let s = await this.repo.touchSession(sessionId, this.o.sessionTtlSec);
    if (s && (await this.sessionRevoked(s))) {
      await this.repo.deleteSession(s.id);
      s = null;
    }
    this.o.metrics.resumeLookups.inc({ outcome: s ? 'found' : 'unknown' });
    if (!s) return null;
    return {
      sessionId: s.id,
      userId: s.userId,
      roles: s.roles,
      ...(s.tenant !== undefined ? { tenant: s.tenant } : {}),
      expiresAt: s.expiresAt,
      subscriptions: s.subscriptions,
    };
  }

  async checkToken(req: TokenCheck): Promise<{ ok: true } | { ok: false; message: string }> {
    const refused = await this.revocation(req);
    return refused ? { ok: false, message: refused } : { ok: true };
  }

  async logout(req: TokenCheck): Promise<void> {
    if (req.tokenSessionId !== undefined) {
      await this.revokeSession(req.tokenSessionId);
      return;
    }
    // A token of no session (minted by an admin): its user's tokens issued until now end.
    await this.revokeUser(req.userId, req.tenant, 'logout');
  }

  /**
   * Why a token (its user, tenant, session and issue time) no longer authenticates, or null: its session
   * was revoked (logout, admin), or its user was revoked after it was issued (deleted, password changed,
   * logged out everywhere). A token of a session is judged by when its session was created (exact);
   * one without by its `iat` (whole seconds: a token of the very second of the revocation stays valid).
   */
  private async revocation(req: TokenCheck): Promise<string | null> {
    const sid = req.tokenSessionId;
    const [sessionRevokedAt, userRevokedAt] = await Promise.all([
      sid !== undefined ? this.repo.revokedAt(sessionRevocationKey(sid)) : Promise.resolve(null),
      this.repo.revokedAt(userRevocationKey(req.userId, req.tenant)),
    ]);
    if (sessionRevokedAt !== null) return 'the session of this token was revoked (logged out); log in again';
    if (userRevokedAt === null) return null;
    if (sid !== undefined) {
      const s = await this.repo.touchSession(sid, this.o.sessionTtlSec);
      if (s) return s.createdAt < userRevokedAt ? 'the user was revoked after this session began; log in again' : null;
    }
    if (req.issuedAt === undefined || req.issuedAt * 1000 < Math.floor(userRevokedAt / 1000) * 1000)
      return 'the user was revoked after this token was issued; log in again';
    return null;
  }

  private async sessionRevoked(s: { id: string; userId: string; tenant?: string; createdAt: number }): Promise<boolean> {
    const [bySession, byUser] = await Promise.all([this.repo.revokedAt(sessionRevocationKey(s.id)), this.repo.revokedAt(userRevocationKey(s.userId, s.tenant))]);
    return bySession !== null || (byUser !== null && s.createdAt < byUser);
  }

  private get revocationTtlSec(): number {
    return Math.max(this.o.maxTokenLifetimeSec, this.o.sessionTtlSec) + 60;
  }

  /** Ends a session: its tokens stop authenticating and its connections close on every edge. */
  async revokeSession(sessionId: string): Promise<boolean> {
    const existed = await this.repo.deleteSession(sessionId);
    await this.repo.revoke(sessionRevocationKey(sessionId), Date.now(), this.revocationTtlSec);
    this.log.info({ session: sessionId }, 'session revoked');
    await this.announce([sessionRevocationKey(sessionId)]);
    return existed;
  }

  /** Ends every token and session a user holds now; its connections close on every edge. */
  private async revokeUser(userId: string, tenant: string | undefined, why: string): Promise<void> {
    const key = userRevocationKey(userId, tenant);
    await this.repo.revoke(key, Date.now(), this.revocationTtlSec);
    this.log.info({ user: userId, tenant, why }, 'user tokens and sessions revoked');
    await this.announce([key]);
  }

  /**
   * Tells the edges at once. The tokens and sessions are refused from now on regardless; a failed
   * announcement is retried, and an edge that never hears it finds it in the revocation log it polls.
   */
  private async announce(keys: readonly string[]): Promise<void> {
    await this.announcer?.announce(keys);
  }

  /**
   * The revocation log from `sinceMs` (an edge's poll), at most {@link REVOCATIONS_PAGE} entries, with
   * this service's clock. Without `sinceMs` only the clock (an edge learning where to start).
   */
  async revocationsSince(sinceMs?: number): Promise<RevocationsPage> {
    const nowMs = Date.now();
    if (sinceMs === undefined) return { nowMs, revocations: [], more: false };
    // Nothing older than the revocation TTL matters: whatever it revoked has expired.
    const from = Math.max(sinceMs, nowMs - this.revocationTtlSec * 1000);
    const rows = await this.repo.revocationsSince(from, REVOCATIONS_PAGE + 1);
    return { nowMs, revocations: rows.slice(0, REVOCATIONS_PAGE), more: rows.length > REVOCATIONS_PAGE };
  }

  async recordSubscriptions(records: readonly SubscriptionRecord[]): Promise<void> {
    // Issued together: the repo's one connection (or the memory repo) applies them in this order.
    await Promise.all(records.map((r) => ('save' in r ? this.repo.putSubscription(r.sessionId, r.save) : this.repo.removeSubscription(r.sessionId, r.remove))));
  }

  checkpoint(entries: readonly CheckpointEntry[]): Promise<void> {
    return this.repo.checkpoint(entries);
  }

  async touchSession(sessionId: string): Promise<void> {
    await this.repo.touchSession(sessionId, this.o.sessionTtlSec);
  }

  async touchSessions(sessionIds: readonly string[]): Promise<void> {
    await Promise.all(sessionIds.map((id) => this.repo.touchSession(id, this.o.sessionTtlSec)));
  }

  async releaseNode(nodeId: string): Promise<number> {
    const released = await this.repo.releaseNode(nodeId);
    if (released > 0) this.log.info({ node: nodeId, released }, 'edge shut down: its connections are released');
    return released;
  }

  reserveSubscriptions(req: SubscriptionReservationRequest): Promise<SubscriptionVerdict[]> {
    return this.repo.reserveSubscriptions(req.deltas, req.maxPerUser);
  }

  /** Releases the connections of edges that stopped sending heartbeats. */
  async reap(): Promise<number> {
    const reaped = await this.repo.reapDeadNodes(this.o.nodeDeadSec * 1000, Date.now());
    let total = 0;
    for (const r of reaped) {
      total += r.released;
      this.log.warn({ node: r.node, released: r.released }, 'edge stopped sending heartbeats: its connections are released');
    }
    if (total > 0) this.o.metrics.reaped.inc(total);
    return total;
  }

  // ------------------------------------------------------------------------------------------------
  // Admin operations (HTTP admin API and CLI only; never reachable from an edge).

  /** Creates a user; throws `invalid_message` on a bad name/password/roles, `already_exists` when taken. */
  async createUser(input: { name: unknown; password: unknown; roles?: unknown; tenant?: unknown }): Promise<PublicUser> {
    if (typeof input.name !== 'string' || !USER_NAME_RE.test(input.name))
      throw new SwitchboardError('invalid_message', '"name" must be 1–128 of A-Z a-z 0-9 _ . @ + -');
    const problem = passwordPolicyProblem(input.password);
    if (problem) throw new SwitchboardError('invalid_message', problem);
    const roles = input.roles ?? [];
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string' && ROLE_RE.test(r)))
      throw new SwitchboardError('invalid_message', '"roles" must be an array of role names');
    if (input.tenant !== undefined && !isValidTenant(input.tenant))
      throw new SwitchboardError('invalid_message', '"tenant" must be 1-64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit');
    const user = {
      name: input.name,
      passwordHash: await hashPassword(input.password as string),
      roles: roles as string[],
      ...(typeof input.tenant === 'string' ? { tenant: input.tenant } : {}),
      createdAt: Date.now(),
    };
    if (!(await this.repo.createUser(user))) throw new SwitchboardError('already_exists', `user "${input.name}" already exists`);
    this.log.info({ user: user.name, roles: user.roles }, 'user created');
    return publicUser(user);
  }

  async getUser(name: string): Promise<(PublicUser & { createdAt: number }) | null> {
    const u = await this.repo.getUser(name);
    return u ? { ...publicUser(u), createdAt: u.createdAt } : null;
  }

  /** Deletes a user; its tokens and sessions are revoked and its connections closed. */
  async deleteUser(name: string): Promise<boolean> {
    const u = await this.repo.getUser(name);
    if (!u) return false;
    const deleted = await this.repo.deleteUser(name);
    await this.revokeUser(u.name, u.tenant, 'deleted');
    return deleted;
  }

  /** Sets a user's password (policy checked); its earlier tokens and sessions are revoked. */
  async changePassword(name: string, password: unknown): Promise<boolean> {
    const problem = passwordPolicyProblem(password);
    if (problem) throw new SwitchboardError('invalid_message', problem);
    const u = await this.repo.getUser(name);
    if (!u) return false;
    if (!(await this.repo.setPasswordHash(name, await hashPassword(password as string)))) return false;
    await this.repo.clearFailures(`user:${name}`);
    await this.revokeUser(u.name, u.tenant, 'password changed');
    return true;
  }

  /** Mints a token for any subject (admin API: `switchboard token`), never longer than the maximum lifetime. */
  mintToken(claims: TokenClaims): Promise<string> {
    if (!USER_NAME_RE.test(claims.sub)) throw new SwitchboardError('invalid_message', '"sub" must be a user name');
    if (claims.ttlSec > this.o.maxTokenLifetimeSec)
      throw new SwitchboardError('invalid_message', `"ttl" is longer than the maximum token lifetime (${this.o.maxTokenLifetimeSec} s)`);
    return this.o.issuer.issue(claims);
  }
}

function publicUser(u: { name: string; roles: readonly string[]; tenant?: string }): PublicUser {
  return { name: u.name, roles: u.roles, ...(u.tenant !== undefined ? { tenant: u.tenant } : {}) };
}
