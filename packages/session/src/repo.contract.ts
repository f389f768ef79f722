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
  });
}
