/** The SessionRepo contract: the memory and Redis implementations behave the same. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdmissionLimits } from './admission.js';
import type { LockoutPolicy, SessionRepo } from './repo.js';

/** Makes a fresh, empty repo with the given limits. */
export type RepoFactory = (limits: AdmissionLimits) => Promise<SessionRepo>;

const limits: AdmissionLimits = { maxConnectionsPerUser: 3, maxConnectionsTotal: 5, newConnectionsPerUserPerMin: 4, newConnectionsPerIpPerMin: 0 };
const policy: LockoutPolicy = { threshold: 3, baseSec: 10, maxSec: 3600, windowSec: 900 };
const req = (userId: string, n: number, nodeId = 'n1', ip = '10.0.0.1') => ({ userId, connId: `${nodeId}:${userId}:${n}`, nodeId, ip });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the contract. */
export function runRepoContract(name: string, make: RepoFactory): void {
  describe(`SessionRepo contract: ${name}`, () => {
    let repo: SessionRepo;
    beforeEach(async () => {
      repo = await make(limits);
    });
    afterEach(async () => {
      await repo.close();
    });

    it('creates users once, reads and deletes them', async () => {
      const u = { name: 'alice', passwordHash: 'scrypt$x', roles: ['admin'], tenant: 't1', createdAt: 1 };
      expect(await repo.createUser(u)).toBe(true);
      expect(await repo.createUser({ ...u, roles: [] })).toBe(false);
      expect(await repo.getUser('alice')).toEqual(u);
      expect(await repo.getUser('nobody')).toBeNull();
      expect(await repo.deleteUser('alice')).toBe(true);
      expect(await repo.getUser('alice')).toBeNull();
      expect(await repo.deleteUser('alice')).toBe(false);
    });

    it('keeps a session with its subscriptions and checkpointed positions', async () => {
      await repo.createSession({ id: 's1', userId: 'alice', roles: ['r'], tenant: 't' }, 60);
      await repo.putSubscription('s1', { key: 'alerts', dialect: 'valtronics', request: { channel: 'alerts', filters: { severity: ['critical'] } } });
      await repo.putSubscription('s1', { key: 'telemetry', dialect: 'valtronics', request: { channel: 'telemetry' } });
      await repo.putSubscription('s1', { key: 'devices', dialect: 'valtronics', request: { channel: 'devices' }, position: { epoch: 'e2', offset: 7 } });
      await repo.checkpoint([
        { sessionId: 's1', key: 'alerts', position: { epoch: 'e1', offset: 41 } },
        { sessionId: 's1', key: 'system', position: { epoch: 'e1', offset: 9 } },
        { sessionId: 'nope', key: 'alerts', position: { epoch: 'e1', offset: 1 } },
      ]);
      await repo.removeSubscription('s1', 'telemetry');
      const s = await repo.touchSession('s1', 60);
      expect(s).toMatchObject({ id: 's1', userId: 'alice', roles: ['r'], tenant: 't' });
      const subs = [...s!.subscriptions].sort((x, y) => x.key.localeCompare(y.key));
      expect(subs).toEqual([
        { key: 'alerts', dialect: 'valtronics', request: { channel: 'alerts', filters: { severity: ['critical'] } }, position: { epoch: 'e1', offset: 41 } },
        // The position given with the subscription (where it started) is kept until a checkpoint moves it.
        { key: 'devices', dialect: 'valtronics', request: { channel: 'devices' }, position: { epoch: 'e2', offset: 7 } },
      ]);
      expect(s!.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    });

    it('takes a checkpoint of hundreds of sessions at once: each position lands where its subscription is, none brings a removed one back', async () => {
      const sessions = 300;
      for (let i = 0; i < sessions; i++) {
        await repo.createSession({ id: `cp-${i}`, userId: `u${i}`, roles: [] }, 60);
        await repo.putSubscription(`cp-${i}`, { key: 'a', dialect: 'valtronics', request: { channel: 'a' } });
        // Every third session has no subscription `b`: its checkpoint of `b` must not create one.
        if (i % 3 !== 0) await repo.putSubscription(`cp-${i}`, { key: 'b', dialect: 'valtronics', request: { channel: 'b' } });
      }
      const entries = [];
      for (let i = 0; i < sessions; i++) {
        entries.push({ sessionId: `cp-${i}`, key: 'a', position: { epoch: 'ea', offset: i } });
        entries.push({ sessionId: `cp-${i}`, key: 'b', position: { epoch: 'eb', offset: 1000 + i } });
      }
      entries.push({ sessionId: 'cp-missing', key: 'a', position: { epoch: 'ea', offset: 1 } });
      await repo.checkpoint(entries);
      for (let i = 0; i < sessions; i++) {
        const s = await repo.touchSession(`cp-${i}`, 60);
        const byKey = new Map(s!.subscriptions.map((x) => [x.key, x.position]));
        expect(byKey.get('a')).toEqual({ epoch: 'ea', offset: i });
        if (i % 3 === 0) expect(byKey.has('b')).toBe(false);
        else expect(byKey.get('b')).toEqual({ epoch: 'eb', offset: 1000 + i });
      }
      expect(await repo.touchSession('cp-missing', 60)).toBeNull();
    });

    it('finds a session by its id alone, with its user, roles and tenant (what resumeSession relies on)', async () => {
      await repo.createSession({ id: 'ghost-1', userId: 'dispatcher@acme', roles: ['ops'], tenant: '42' }, 60);
      await repo.createSession({ id: 'ghost-2', userId: 'plain', roles: [] }, 60);
      await repo.putSubscription('ghost-1', { key: 'assetGeneral', dialect: 'fleetfreedom', request: { company: 42, subscriptionType: 'assetGeneral' } });
      expect(await repo.touchSession('ghost-1', 60)).toMatchObject({
        id: 'ghost-1',
        userId: 'dispatcher@acme',
        roles: ['ops'],
        tenant: '42',
        subscriptions: [{ key: 'assetGeneral', dialect: 'fleetfreedom', request: { company: 42, subscriptionType: 'assetGeneral' } }],
      });
      const plain = await repo.touchSession('ghost-2', 60);
      expect(plain).toMatchObject({ id: 'ghost-2', userId: 'plain', roles: [], subscriptions: [] });
      expect(plain?.tenant).toBeUndefined();
      expect(await repo.touchSession('ghost-unknown', 60)).toBeNull();
    });

    it('a session expires after its TTL unless touched (sliding expiry)', async () => {
      await repo.createSession({ id: 'short', userId: 'u', roles: [] }, 1);
      await sleep(600);
      expect(await repo.touchSession('short', 1)).not.toBeNull();
      await sleep(600);
      expect(await repo.touchSession('short', 1)).not.toBeNull();
      await sleep(1200);
      expect(await repo.touchSession('short', 1)).toBeNull();
      await repo.putSubscription('short', { key: 'alerts', dialect: 'valtronics', request: {} });
      expect(await repo.touchSession('short', 1)).toBeNull();
    });

    it('locks out after the threshold, doubling with each further failure; clearing resets', async () => {
      const now = Date.now();
      expect(await repo.failures('user:bob', now)).toEqual({ count: 0, lockedUntilMs: 0 });
      expect((await repo.recordFailure('user:bob', policy, now)).lockedUntilMs).toBe(0);
      expect((await repo.recordFailure('user:bob', policy, now)).lockedUntilMs).toBe(0);
      expect((await repo.recordFailure('user:bob', policy, now)).lockedUntilMs).toBe(now + 10_000);
      expect((await repo.recordFailure('user:bob', policy, now)).lockedUntilMs).toBe(now + 20_000);
      expect(await repo.failures('user:bob', now)).toEqual({ count: 4, lockedUntilMs: now + 20_000 });
      expect((await repo.failures('user:bob', now + 30_000)).lockedUntilMs).toBe(0);
      await repo.clearFailures('user:bob');
      expect(await repo.failures('user:bob', now)).toEqual({ count: 0, lockedUntilMs: 0 });
    });

    it('reserves login attempts atomically: of 50 concurrent ones at most the threshold go through; the lockout then doubles one attempt at a time', async () => {
      const now = Date.now();
      const burst = await Promise.all(Array.from({ length: 50 }, () => repo.reserveAttempt('user:eve', policy, now)));
      expect(burst.filter((r) => r.ok)).toHaveLength(policy.threshold);
      // Refused while the reserved ones are in flight: no lockout was earned yet, so only a short wait.
      for (const r of burst) if (!r.ok) expect(r).toEqual({ ok: false, lockedUntilMs: now + 1000, busy: true });
      for (let i = 0; i < policy.threshold; i++) await repo.attemptFailed('user:eve', policy, now);
      expect(await repo.failures('user:eve', now)).toEqual({ count: 3, lockedUntilMs: now + 10_000 });
      expect(await repo.reserveAttempt('user:eve', policy, now + 5000)).toEqual({ ok: false, lockedUntilMs: now + 10_000 });
      // The lockout ran out: one attempt at a time, and its failure doubles the lockout (not 50 doublings).
      const later = now + 11_000;
      const again = await Promise.all(Array.from({ length: 50 }, () => repo.reserveAttempt('user:eve', policy, later)));
      expect(again.filter((r) => r.ok)).toEqual([{ ok: true, count: 4 }]);
      expect(await repo.attemptFailed('user:eve', policy, later)).toEqual({ count: 4, lockedUntilMs: later + 20_000 });
      await repo.clearFailures('user:eve');
      expect(await repo.reserveAttempt('user:eve', policy, later)).toEqual({ ok: true, count: 1 });
    });

    it('reservations whose outcome never comes (a checker died) stop blocking after a while; settled failures still count', async () => {
      const now = Date.now();
      expect(await repo.reserveAttempt('user:zed', policy, now)).toEqual({ ok: true, count: 1 });
      await repo.attemptFailed('user:zed', policy, now);
      for (let i = 0; i < 2; i++) expect((await repo.reserveAttempt('user:zed', policy, now)).ok).toBe(true);
      expect(await repo.reserveAttempt('user:zed', policy, now + 1000)).toMatchObject({ ok: false, busy: true });
      // The two in flight never report back: later, only the one settled failure counts.
      expect(await repo.reserveAttempt('user:zed', policy, now + 6000)).toEqual({ ok: true, count: 2 });
    });

    it('gives a slot to one caller per interval', async () => {
      const taken = await Promise.all(Array.from({ length: 20 }, () => repo.takeSlot('ip:10.0.0.9', 300)));
      expect(taken.filter(Boolean)).toHaveLength(1);
      await sleep(350);
      expect(await repo.takeSlot('ip:10.0.0.9', 300)).toBe(true);
    });

    it('records revocations, deletes sessions, replaces password hashes and dates sessions', async () => {
      expect(await repo.revokedAt('session:s9')).toBeNull();
      await repo.revoke('session:s9', 1234, 60);
      await repo.revoke('user:t/bob', 5678, 1);
      expect(await repo.revokedAt('session:s9')).toBe(1234);
      expect(await repo.revokedAt('user:t/bob')).toBe(5678);
      await sleep(1100);
      expect(await repo.revokedAt('user:t/bob')).toBeNull();
      const before = Date.now();
      const created = await repo.createSession({ id: 's9', userId: 'bob', roles: [] }, 60);
      expect(created.createdAt).toBeGreaterThanOrEqual(before);
      expect((await repo.touchSession('s9', 60))?.createdAt).toBe(created.createdAt);
      expect(await repo.deleteSession('s9')).toBe(true);
      expect(await repo.deleteSession('s9')).toBe(false);
      expect(await repo.touchSession('s9', 60)).toBeNull();
      const u = { name: 'bob', passwordHash: 'scrypt$old', roles: [], createdAt: 1 };
      expect(await repo.setPasswordHash('bob', 'scrypt$new')).toBe(false);
      await repo.createUser(u);
      expect(await repo.setPasswordHash('bob', 'scrypt$new')).toBe(true);
      expect(await repo.getUser('bob')).toEqual({ ...u, passwordHash: 'scrypt$new' });
    });

    it('keeps a revocation log: at or after a time, oldest first (ties by key), each key once at its latest revocation, at most a limit, trimmed to the TTL', async () => {
      const t = Date.now();
      await repo.revoke('session:a', t - 3000, 60);
      await repo.revoke('user:t/b', t - 2000, 60);
      await repo.revoke('session:d', t - 1000, 60);
      await repo.revoke('session:c', t - 1000, 60);
      const a = { key: 'session:a', atMs: t - 3000 };
      const b = { key: 'user:t/b', atMs: t - 2000 };
      const c = { key: 'session:c', atMs: t - 1000 };
      const d = { key: 'session:d', atMs: t - 1000 };
      expect(await repo.revocationsSince(0, 10)).toEqual([a, b, c, d]);
      expect(await repo.revocationsSince(t - 2000, 10)).toEqual([b, c, d]);
      expect(await repo.revocationsSince(0, 2)).toEqual([a, b]);
      expect(await repo.revocationsSince(0, 0)).toEqual([]);
      expect(await repo.revocationsSince(t, 10)).toEqual([]);
      // Revoked again: once, at its latest revocation.
      await repo.revoke('session:a', t, 60);
      expect(await repo.revocationsSince(0, 10)).toEqual([b, c, d, { key: 'session:a', atMs: t }]);
      // A revocation kept 1 s trims every entry more than 1 s old.
      await repo.revoke('session:e', t + 1, 1);
      expect(await repo.revocationsSince(0, 10)).toEqual([
        { key: 'session:a', atMs: t },
        { key: 'session:e', atMs: t + 1 },
      ]);
      expect(await repo.revokedAt('session:e')).toBe(t + 1);
    });

    it('admits up to the per-user and total limits; a release frees a place; admit is idempotent', async () => {
      for (let i = 0; i < 3; i++) expect((await repo.admit(req('u', i))).ok).toBe(true);
      expect(await repo.admit(req('u', 0))).toEqual({ ok: true });
      expect(await repo.admit(req('u', 3))).toMatchObject({ ok: false, rule: 'user_concurrent', code: 'connection_limit' });
      expect((await repo.admit(req('v', 0))).ok).toBe(true);
      expect((await repo.admit(req('w', 0))).ok).toBe(true);
      expect(await repo.admit(req('x', 0))).toMatchObject({ ok: false, rule: 'total_concurrent' });
      expect(await repo.count()).toBe(5);
      await repo.release('n1:u:0');
      await repo.release('n1:u:0');
      expect(await repo.count()).toBe(4);
      expect((await repo.admit(req('u', 4))).ok).toBe(true);
    });

    it('limits new connections per user per minute, and per address only when configured', async () => {
      const r = await make({ ...limits, maxConnectionsPerUser: 100, maxConnectionsTotal: 100, newConnectionsPerIpPerMin: 6 });
      for (let i = 0; i < 4; i++) {
        expect((await r.admit(req('u', i))).ok).toBe(true);
        await r.release(`n1:u:${i}`);
      }
      expect(await r.admit(req('u', 9))).toMatchObject({ ok: false, rule: 'user_rate', code: 'rate_limited' });
      expect((await r.admit(req('a', 0))).ok).toBe(true);
      expect((await r.admit(req('b', 0))).ok).toBe(true);
      expect(await r.admit(req('c', 0))).toMatchObject({ ok: false, rule: 'ip_rate' });
      expect((await r.admit(req('c', 0, 'n1', '10.9.9.9'))).ok).toBe(true);
      await r.close();
    });

    it('reaps the connections of a node whose heartbeats stopped, and only those', async () => {
      const now = Date.now();
      await repo.heartbeat('alive', now);
      await repo.heartbeat('dead', now - 30_000);
      expect((await repo.admit(req('u', 1, 'alive'))).ok).toBe(true);
      expect((await repo.admit(req('u', 2, 'dead'))).ok).toBe(true);
      expect((await repo.admit(req('v', 1, 'dead'))).ok).toBe(true);
      expect(await repo.reapDeadNodes(20_000, now)).toEqual([{ node: 'dead', released: 2 }]);
      expect(await repo.count()).toBe(1);
      expect(await repo.reapDeadNodes(20_000, now)).toEqual([]);
      expect((await repo.admit(req('u', 3, 'alive'))).ok).toBe(true);
      expect((await repo.admit(req('u', 4, 'alive'))).ok).toBe(true);
      expect((await repo.admit(req('u', 5, 'alive'))).ok).toBe(false);
    });

    it('releases every connection of a node that shuts down, and only those', async () => {
      for (let i = 0; i < 3; i++) expect((await repo.admit(req(`u${i}`, 1, 'leaving'))).ok).toBe(true);
      expect((await repo.admit(req('u0', 2, 'staying'))).ok).toBe(true);
      expect(await repo.releaseNode('leaving')).toBe(3);
      expect(await repo.count()).toBe(1);
      expect(await repo.releaseNode('leaving')).toBe(0);
    });

    it('a node that admitted but never sent a heartbeat is reaped too', async () => {
      expect((await repo.admit(req('u', 1, 'silent'))).ok).toBe(true);
      expect(await repo.reapDeadNodes(20_000, Date.now() + 25_000)).toEqual([{ node: 'silent', released: 1 }]);
    });

    // Per-user subscription caps across the cluster (counts per admitted connection).

    it('counts subscriptions per user over all its connections and nodes, refusing what would pass the cap', async () => {
      const [a, b, other] = [req('u', 1, 'n1'), req('u', 2, 'n2'), req('v', 1, 'n1')];
      for (const r of [a, b, other]) expect((await repo.admit(r)).ok).toBe(true);
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: 3 }], 5)).toEqual(['ok']);
      expect(await repo.reserveSubscriptions([{ connId: b.connId, delta: 2 }], 5)).toEqual(['ok']);
      expect(await repo.subscriptionsOf('u')).toBe(5);
      // Full: one more on either connection is refused, nothing counted; another user is not affected.
      expect(await repo.reserveSubscriptions([{ connId: b.connId, delta: 1 }, { connId: a.connId, delta: 1 }, { connId: other.connId, delta: 5 }], 5)).toEqual([
        'over_cap',
        'over_cap',
        'ok',
      ]);
      expect(await repo.subscriptionsOf('u')).toBe(5);
      expect(await repo.subscriptionsOf('v')).toBe(5);
      // A delta that does not fit whole is refused whole.
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: -1 }, { connId: b.connId, delta: 2 }, { connId: b.connId, delta: 1 }], 5)).toEqual([
        'ok',
        'over_cap',
        'ok',
      ]);
      expect(await repo.subscriptionsOf('u')).toBe(5);
      // Negative deltas always apply, and never take a connection below zero (nor its user's other ones).
      expect(await repo.reserveSubscriptions([{ connId: b.connId, delta: -10 }], 5)).toEqual(['ok']);
      expect(await repo.subscriptionsOf('u')).toBe(2);
      expect(await repo.reserveSubscriptions([{ connId: b.connId, delta: 3 }], 5)).toEqual(['ok']);
      expect(await repo.subscriptionsOf('u')).toBe(5);
    });

    it('counts forced subscriptions (a resume restores them) past the cap; a later reservation waits until the user is under it', async () => {
      const a = req('u', 1);
      await repo.admit(a);
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: 4 }], 4)).toEqual(['ok']);
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: 3, force: true }], 4)).toEqual(['ok']);
      expect(await repo.subscriptionsOf('u')).toBe(7);
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: -3 }, { connId: a.connId, delta: 1 }], 4)).toEqual(['ok', 'over_cap']);
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: -1 }, { connId: a.connId, delta: 1 }], 4)).toEqual(['ok', 'ok']);
    });

    it('counts nothing for a connection that is not admitted; its negative deltas are no-ops', async () => {
      expect(await repo.reserveSubscriptions([{ connId: 'n1:ghost', delta: 1 }, { connId: 'n1:ghost', delta: -1 }], 5)).toEqual(['not_admitted', 'ok']);
      expect(await repo.reserveSubscriptions([], 5)).toEqual([]);
      const a = req('u', 1);
      await repo.admit(a);
      await repo.reserveSubscriptions([{ connId: a.connId, delta: 2 }], 5);
      await repo.release(a.connId);
      expect(await repo.reserveSubscriptions([{ connId: a.connId, delta: 1 }], 5)).toEqual(['not_admitted']);
      expect(await repo.subscriptionsOf('u')).toBe(0);
    });

    it('drops a connection\'s subscriptions when it is released, its node shuts down or is reaped', async () => {
      const now = Date.now();
      await repo.heartbeat('alive', now);
      await repo.heartbeat('dead', now - 30_000);
      const [closing, leaving, dead] = [req('u', 1, 'alive'), req('u', 2, 'leaving'), req('u', 3, 'dead')];
      for (const r of [closing, leaving, dead]) await repo.admit(r);
      expect(await repo.reserveSubscriptions([closing, leaving, dead].map((r) => ({ connId: r.connId, delta: 2 })), 6)).toEqual(['ok', 'ok', 'ok']);
      expect(await repo.reserveSubscriptions([{ connId: closing.connId, delta: 1 }], 6)).toEqual(['over_cap']);
      await repo.release(closing.connId);
      expect(await repo.subscriptionsOf('u')).toBe(4);
      expect(await repo.releaseNode('leaving')).toBe(1);
      expect(await repo.subscriptionsOf('u')).toBe(2);
      expect(await repo.reapDeadNodes(20_000, now)).toEqual([{ node: 'dead', released: 1 }]);
      expect(await repo.subscriptionsOf('u')).toBe(0);
      const fresh = req('u', 4, 'alive');
      await repo.admit(fresh);
      expect(await repo.reserveSubscriptions([{ connId: fresh.connId, delta: 6 }], 6)).toEqual(['ok']);
    });

    it('concurrent reservations from many connections on several nodes never pass the cap', async () => {
      const r = await make({ ...limits, maxConnectionsPerUser: 100, maxConnectionsTotal: 100, newConnectionsPerUserPerMin: 0 });
      try {
        const conns = Array.from({ length: 30 }, (_, i) => req('crowd', i, `node${i % 3}`));
        for (const c of conns) expect((await r.admit(c)).ok).toBe(true);
        // 30 connections × 4 single reservations and 10 batches of 3, all at once, against a cap of 17.
        const singles = conns.flatMap((c) => Array.from({ length: 4 }, () => r.reserveSubscriptions([{ connId: c.connId, delta: 1 }], 17)));
        const batches = conns.slice(0, 10).map((c, i) => r.reserveSubscriptions([{ connId: c.connId, delta: 2 }, { connId: conns[i + 10]!.connId, delta: 1 }], 17));
        const verdicts = (await Promise.all([...singles, ...batches])).flat();
        const granted: number[] = verdicts.slice(0, singles.length).map((v) => (v === 'ok' ? 1 : 0));
        const batchVerdicts = verdicts.slice(singles.length);
        for (let i = 0; i < batchVerdicts.length; i++) if (batchVerdicts[i] === 'ok') granted.push(i % 2 === 0 ? 2 : 1);
        const total = granted.reduce<number>((a, b) => a + b, 0);
        expect(total).toBeLessThanOrEqual(17);
        expect(total).toBeGreaterThanOrEqual(16);
        expect(await r.subscriptionsOf('crowd')).toBe(total);
        expect(verdicts.every((v) => v === 'ok' || v === 'over_cap')).toBe(true);
      } finally {
        await r.close();
      }
    });
  });
}
