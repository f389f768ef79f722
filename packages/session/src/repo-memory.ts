import { refusal, type AdmissionLimits, type AdmissionRequest, type AdmissionResult, type SubscriptionDelta, type SubscriptionVerdict } from './admission.js';
import {
  ATTEMPT_HOLD_MS,
  ATTEMPT_STALE_MS,
  lockUntil,
  type AttemptReservation,
  type CheckpointEntry,
  type FailureState,
  type LockoutPolicy,
  type RevocationEntry,
  type SessionRecord,
  type SessionRepo,
  type StoredSubscription,
  type UserRecord,
} from './repo.js';

const WINDOW_MS = 60_000;

function prune(log: number[], nowMs: number): number {
  let drop = 0;
  while (drop < log.length && log[drop]! <= nowMs - WINDOW_MS) drop++;
  if (drop > 0) log.splice(0, drop);
  return log.length;
}

interface StoredSession {
  readonly id: string;
  readonly userId: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  expiresAt: number;
  readonly createdAt: number;
  readonly subs: Map<string, StoredSubscription>;
}

/**
 * The in-process SessionRepo of the all-in-one server: the same rules as the Redis one (exact sliding
 * one-minute windows, lockout doubling, heartbeats and reaping), state lives as long as the process.
 */
export class MemorySessionRepo implements SessionRepo {
  private readonly users = new Map<string, UserRecord>();
  private readonly sessions = new Map<string, StoredSession>();
  private readonly fails = new Map<string, { count: number; lockedUntilMs: number; expiresAt: number; reservedAt?: number; failed?: number }>();
  private readonly conns = new Map<string, AdmissionRequest>();
  private readonly perUser = new Map<string, number>();
  private readonly userLog = new Map<string, number[]>();
  private readonly ipLog = new Map<string, number[]>();
  private readonly beats = new Map<string, number>();
  private readonly slots = new Map<string, number>();
  private readonly revocations = new Map<string, { atMs: number; expiresAt: number }>();
  /** The revocation log: key → latest `atMs`, in the order last revoked (so the oldest are trimmed first). */
  private readonly revocationLog = new Map<string, number>();
  /** Subscription counts per user: the total and each admitted connection's share. */
  private readonly subCounts = new Map<string, { total: number; readonly byConn: Map<string, number> }>();
  private lastGcMs = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  createUser(user: UserRecord): Promise<boolean> {
    if (this.users.has(user.name)) return Promise.resolve(false);
    this.users.set(user.name, user);
    return Promise.resolve(true);
  }

  getUser(name: string): Promise<UserRecord | null> {
    return Promise.resolve(this.users.get(name) ?? null);
  }

  deleteUser(name: string): Promise<boolean> {
    return Promise.resolve(this.users.delete(name));
  }

  setPasswordHash(name: string, passwordHash: string): Promise<boolean> {
    const u = this.users.get(name);
    if (!u) return Promise.resolve(false);
    this.users.set(name, { ...u, passwordHash });
    return Promise.resolve(true);
  }

  deleteSession(id: string): Promise<boolean> {
    return Promise.resolve(this.live(id) !== null && this.sessions.delete(id));
  }

  private view(s: StoredSession): SessionRecord {
    return {
      id: s.id,
      userId: s.userId,
      roles: s.roles,
      ...(s.tenant !== undefined ? { tenant: s.tenant } : {}),
      expiresAt: s.expiresAt,
      createdAt: s.createdAt,
      subscriptions: [...s.subs.values()],
    };
  }

  private live(id: string): StoredSession | null {
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  createSession(s: Omit<SessionRecord, 'expiresAt' | 'subscriptions' | 'createdAt'>, ttlSec: number): Promise<SessionRecord> {
    const stored: StoredSession = { ...s, expiresAt: this.now() + ttlSec * 1000, createdAt: this.now(), subs: new Map() };
    this.sessions.set(s.id, stored);
    this.gc();
    return Promise.resolve(this.view(stored));
  }

  touchSession(id: string, ttlSec: number): Promise<SessionRecord | null> {
    const s = this.live(id);
    if (!s) return Promise.resolve(null);
    s.expiresAt = this.now() + ttlSec * 1000;
    return Promise.resolve(this.view(s));
  }

  putSubscription(id: string, sub: StoredSubscription): Promise<void> {
    this.live(id)?.subs.set(sub.key, sub);
    return Promise.resolve();
  }

  removeSubscription(id: string, key: string): Promise<void> {
    this.live(id)?.subs.delete(key);
    return Promise.resolve();
  }

  checkpoint(entries: readonly CheckpointEntry[]): Promise<void> {
    for (const e of entries) {
      const s = this.live(e.sessionId);
      const sub = s?.subs.get(e.key);
      if (s && sub) s.subs.set(e.key, { ...sub, position: e.position });
    }
    return Promise.resolve();
  }

  failures(key: string, nowMs: number): Promise<FailureState> {
    const f = this.fails.get(key);
    if (!f || f.expiresAt <= nowMs) return Promise.resolve({ count: 0, lockedUntilMs: 0 });
    return Promise.resolve({ count: f.count, lockedUntilMs: f.lockedUntilMs > nowMs ? f.lockedUntilMs : 0 });
  }

  recordFailure(key: string, policy: LockoutPolicy, nowMs: number): Promise<FailureState> {
    const prev = this.fails.get(key);
    const count = prev && prev.expiresAt > nowMs ? prev.count + 1 : 1;
    const lockedUntilMs = lockUntil(count, policy, nowMs);
    this.fails.set(key, { count, lockedUntilMs, expiresAt: Math.max(nowMs + policy.windowSec * 1000, lockedUntilMs) });
    return Promise.resolve({ count, lockedUntilMs });
  }

  clearFailures(key: string): Promise<void> {
    this.fails.delete(key);
    return Promise.resolve();
  }

  reserveAttempt(key: string, policy: LockoutPolicy, nowMs: number): Promise<AttemptReservation> {
    const prev = this.fails.get(key);
    const live = prev && prev.expiresAt > nowMs ? prev : { count: 0, lockedUntilMs: 0, expiresAt: 0 };
    if (live.lockedUntilMs > nowMs) return Promise.resolve({ ok: false, lockedUntilMs: live.lockedUntilMs });
    let reserved = live.count;
    if (reserved >= policy.threshold && live.lockedUntilMs === 0) {
      if (nowMs - (live.reservedAt ?? 0) < ATTEMPT_STALE_MS) return Promise.resolve({ ok: false, lockedUntilMs: nowMs + 1000, busy: true });
      reserved = live.failed ?? 0;
    }
    const count = reserved + 1;
    const lockedUntilMs = count > policy.threshold ? nowMs + ATTEMPT_HOLD_MS : live.lockedUntilMs;
    this.fails.set(key, {
      count,
      lockedUntilMs,
      expiresAt: Math.max(nowMs + policy.windowSec * 1000, lockedUntilMs),
      reservedAt: nowMs,
      failed: live.failed ?? 0,
    });
    return Promise.resolve({ ok: true, count });
  }

  attemptFailed(key: string, policy: LockoutPolicy, nowMs: number): Promise<FailureState> {
    const prev = this.fails.get(key);
    const live = prev && prev.expiresAt > nowMs ? prev : null;
    const count = live ? live.count : 1;
    const lockedUntilMs = lockUntil(count, policy, nowMs);
    this.fails.set(key, {
      count,
      lockedUntilMs,
      expiresAt: Math.max(nowMs + policy.windowSec * 1000, lockedUntilMs),
      reservedAt: live?.reservedAt ?? nowMs,
      failed: (live?.failed ?? 0) + 1,
    });
    return Promise.resolve({ count, lockedUntilMs });
  }

  takeSlot(key: string, ms: number): Promise<boolean> {
    const nowMs = this.now();
    if ((this.slots.get(key) ?? 0) > nowMs) return Promise.resolve(false);
    this.slots.set(key, nowMs + ms);
    return Promise.resolve(true);
  }

  revoke(key: string, atMs: number, ttlSec: number): Promise<void> {
    this.revocations.set(key, { atMs, expiresAt: this.now() + ttlSec * 1000 });
    this.logRevocation(key, atMs, ttlSec);
    return Promise.resolve();
  }

  private logRevocation(key: string, atMs: number, ttlSec: number): void {
    this.revocationLog.delete(key);
    this.revocationLog.set(key, atMs);
    // Revocations arrive in time order (their atMs is the service's clock when they were made): the
    // expired ones are at the front, and trimming stops at the first one still kept.
    const cutoff = this.now() - ttlSec * 1000;
    for (const [k, at] of this.revocationLog) {
      if (at > cutoff) break;
      this.revocationLog.delete(k);
    }
  }

  revocationsSince(sinceMs: number, limit: number): Promise<RevocationEntry[]> {
    const out: RevocationEntry[] = [];
    for (const [key, atMs] of this.revocationLog) if (atMs >= sinceMs) out.push({ key, atMs });
    out.sort((a, b) => a.atMs - b.atMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return Promise.resolve(out.slice(0, Math.max(0, limit)));
  }

  revokedAt(key: string): Promise<number | null> {
    const r = this.revocations.get(key);
    return Promise.resolve(r && r.expiresAt > this.now() ? r.atMs : null);
  }

  admit(req: AdmissionRequest): Promise<AdmissionResult> {
    const nowMs = this.now();
    const l = this.limits;
    if (this.conns.has(req.connId)) return Promise.resolve({ ok: true });
    if ((this.perUser.get(req.userId) ?? 0) >= l.maxConnectionsPerUser) return Promise.resolve(refusal('user_concurrent', l));
    if (this.conns.size >= l.maxConnectionsTotal) return Promise.resolve(refusal('total_concurrent', l));
    const ulog = this.userLog.get(req.userId) ?? [];
    if (l.newConnectionsPerUserPerMin > 0 && prune(ulog, nowMs) >= l.newConnectionsPerUserPerMin)
      return Promise.resolve(refusal('user_rate', l));
    const ilog = this.ipLog.get(req.ip) ?? [];
    if (l.newConnectionsPerIpPerMin > 0 && prune(ilog, nowMs) >= l.newConnectionsPerIpPerMin) return Promise.resolve(refusal('ip_rate', l));
    this.conns.set(req.connId, req);
    this.perUser.set(req.userId, (this.perUser.get(req.userId) ?? 0) + 1);
    if (!this.beats.has(req.nodeId)) this.beats.set(req.nodeId, nowMs);
    if (l.newConnectionsPerUserPerMin > 0) {
      ulog.push(nowMs);
      this.userLog.set(req.userId, ulog);
    }
    if (l.newConnectionsPerIpPerMin > 0) {
      ilog.push(nowMs);
      this.ipLog.set(req.ip, ilog);
    }
    this.gc();
    return Promise.resolve({ ok: true });
  }

  release(connId: string): Promise<void> {
    const req = this.conns.get(connId);
    if (req) {
      this.conns.delete(connId);
      this.dropSubscriptions(req.userId, connId);
      const n = (this.perUser.get(req.userId) ?? 1) - 1;
      if (n <= 0) this.perUser.delete(req.userId);
      else this.perUser.set(req.userId, n);
    }
    return Promise.resolve();
  }

  count(): Promise<number> {
    return Promise.resolve(this.conns.size);
  }

  reserveSubscriptions(deltas: readonly SubscriptionDelta[], maxPerUser: number): Promise<SubscriptionVerdict[]> {
    const out: SubscriptionVerdict[] = [];
    for (const d of deltas) {
      const req = this.conns.get(d.connId);
      if (!req) {
        out.push(d.delta > 0 ? 'not_admitted' : 'ok');
        continue;
      }
      const counts = this.subCounts.get(req.userId) ?? { total: 0, byConn: new Map<string, number>() };
      const held = counts.byConn.get(d.connId) ?? 0;
      if (d.delta > 0 && !d.force && counts.total + d.delta > maxPerUser) {
        out.push('over_cap');
        continue;
      }
      const delta = Math.max(d.delta, -held);
      counts.total += delta;
      if (held + delta > 0) counts.byConn.set(d.connId, held + delta);
      else counts.byConn.delete(d.connId);
      if (counts.total > 0) this.subCounts.set(req.userId, counts);
      else this.subCounts.delete(req.userId);
      out.push('ok');
    }
    return Promise.resolve(out);
  }

  subscriptionsOf(userId: string): Promise<number> {
    return Promise.resolve(this.subCounts.get(userId)?.total ?? 0);
  }

  /** A released connection's subscriptions stop counting for its user. */
  private dropSubscriptions(userId: string, connId: string): void {
    const counts = this.subCounts.get(userId);
    const held = counts?.byConn.get(connId);
    if (!counts || held === undefined) return;
    counts.byConn.delete(connId);
    counts.total -= held;
    if (counts.total <= 0) this.subCounts.delete(userId);
  }

  heartbeat(nodeId: string, nowMs: number): Promise<void> {
    this.beats.set(nodeId, nowMs);
    return Promise.resolve();
  }

  async reapDeadNodes(deadMs: number, nowMs: number): Promise<{ node: string; released: number }[]> {
    const out: { node: string; released: number }[] = [];
    for (const [node, at] of this.beats) {
      if (at > nowMs - deadMs) continue;
      out.push({ node, released: await this.releaseNode(node) });
    }
    return out;
  }

  async releaseNode(nodeId: string): Promise<number> {
    this.beats.delete(nodeId);
    let released = 0;
    for (const [connId, req] of this.conns) {
      if (req.nodeId !== nodeId) continue;
      await this.release(connId);
      released++;
    }
    return released;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Forgets expired sessions and idle rate logs once a minute, so memory stays bounded. */
  private gc(): void {
    const nowMs = this.now();
    if (nowMs - this.lastGcMs < WINDOW_MS) return;
    this.lastGcMs = nowMs;
    for (const [id, s] of this.sessions) if (s.expiresAt <= nowMs) this.sessions.delete(id);
    for (const logs of [this.userLog, this.ipLog]) for (const [k, log] of logs) if (prune(log, nowMs) === 0) logs.delete(k);
    for (const [k, f] of this.fails) if (f.expiresAt <= nowMs) this.fails.delete(k);
    for (const [k, until] of this.slots) if (until <= nowMs) this.slots.delete(k);
    for (const [k, r] of this.revocations) if (r.expiresAt <= nowMs) this.revocations.delete(k);
  }
}
