/**
 * The session/auth service logic: logins (scrypt, lockout with backoff per user and per address),
 * token minting, sessions that outlive their edge, cluster-wide admission and dead-edge reaping.
 * State lives in the SessionRepo; this class holds none, so replicas are interchangeable.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_TENANT, SwitchboardError, isValidTenant, type Logger } from '@switchboard/core';
import type { AdmissionRequest, AdmissionResult } from './admission.js';
import type { LoginRequest, LoginResult, OpenSessionRequest, OpenSessionResult, PublicUser, ResumedSession, SessionApi } from './api.js';
import type { TokenIssuer } from './keys.js';
import type { SessionMetrics } from './metrics.js';
import { dummyHash, hashPassword, passwordPolicyProblem, verifyPassword, MAX_PASSWORD_LENGTH } from './passwords.js';
import type { CheckpointEntry, LockoutPolicy, SessionRepo, StoredSubscription } from './repo.js';
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
}

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

  constructor(private readonly o: SessionServiceOptions) {
    this.repo = o.repo;
    this.log = o.logger.child({ component: 'session' });
    this.metrics = o.metrics;
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
    const [uf, ipf] = await Promise.all([this.repo.failures(userKey, now), this.repo.failures(ipKey, now)]);
    const lockedUntil = Math.max(uf.lockedUntilMs, ipf.lockedUntilMs);
    if (lockedUntil > now) {
      // Refused before the password is even looked at: a correct guess during a lockout gains nothing.
      const retryAfterSec = Math.ceil((lockedUntil - now) / 1000);
      return { ok: false, code: 'locked_out', message: `too many failed logins; retry in ${retryAfterSec} s`, retryAfterSec };
    }
    const user = await this.repo.getUser(req.username);
    const matches = await verifyPassword(req.password, user?.passwordHash ?? (await dummyHash()));
    if (!user || !matches) {
      const [after] = await Promise.all([this.repo.recordFailure(userKey, this.o.userLockout, now), this.repo.recordFailure(ipKey, this.o.ipLockout, now)]);
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
    if (req.sessionId !== undefined) {
      const s = await this.repo.touchSession(req.sessionId, this.o.sessionTtlSec);
      // Same user and same tenant: the same name in another tenant is another user.
      if (s && s.userId === req.userId && (s.tenant ?? DEFAULT_TENANT) === (req.tenant ?? DEFAULT_TENANT)) {
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
    const s = await this.repo.touchSession(sessionId, this.o.sessionTtlSec);
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

  saveSubscription(sessionId: string, sub: StoredSubscription): Promise<void> {
    return this.repo.putSubscription(sessionId, sub);
  }

  removeSubscription(sessionId: string, key: string): Promise<void> {
    return this.repo.removeSubscription(sessionId, key);
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

  deleteUser(name: string): Promise<boolean> {
    return this.repo.deleteUser(name);
  }

  /** Mints a token for any subject (admin API: `switchboard token`). */
  mintToken(claims: TokenClaims): Promise<string> {
    if (!USER_NAME_RE.test(claims.sub)) throw new SwitchboardError('invalid_message', '"sub" must be a user name');
    return this.o.issuer.issue(claims);
  }
}

function publicUser(u: { name: string; roles: readonly string[]; tenant?: string }): PublicUser {
  return { name: u.name, roles: u.roles, ...(u.tenant !== undefined ? { tenant: u.tenant } : {}) };
}
