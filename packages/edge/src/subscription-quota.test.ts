/**
 * The edge's side of the per-user subscription cap: reservations of one tick go in one call, the local
 * pre-check spares calls, anonymous connections cost nothing, a resume is counted but not refused, and an
 * unreachable session service refuses subscribes while releases are retried until it is back.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { MemorySessionRepo, createSessionService, hmacIssuer } from '@switchboard/session/service';
import { ConnectionRegistry, type Conn } from './conn.js';
import { userIndexKey } from './session-gate.js';
import { SubscriptionQuota } from './subscription-quota.js';

function setup(maxPerUser: number, nodeId = 'e1') {
  const config = loadConfig({}, { logLevel: 'silent', maxConnectionsPerUser: 100_000, maxConnectionsTotal: 100_000, newConnectionsPerUserPerMin: 0 });
  const repo = new MemorySessionRepo(config);
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: config.jwtIssuer, audience: config.jwtAudience });
  const service = createSessionService(config, repo, issuer, createLogger({ name: 'test', level: 'silent' }), createMetricsRegistry({ processMetrics: false }));
  const conns = new ConnectionRegistry(nodeId);
  let down = false;
  let calls = 0;
  const session = {
    reserveSubscriptions: (req: Parameters<typeof service.reserveSubscriptions>[0]) => {
      calls++;
      return down ? Promise.reject(new Error('rpc timeout')) : service.reserveSubscriptions(req);
    },
  };
  const quota = new SubscriptionQuota({ session, conns, maxPerUser, logger: createLogger({ name: 'test', level: 'silent' }), retryMs: 20 });
  /** An open connection of `userId` on this edge, admitted (null: anonymous, never admitted). */
  const open = async (userId: string | null): Promise<Conn> => {
    const connId = conns.nextId();
    const conn = { connId, dialect: 'valtronics', closed: false, identity: userId === null ? null : { userId, roles: [] }, admitted: false } as unknown as Conn;
    conns.add(conn, 0);
    if (userId !== null) {
      expect((await service.admit({ userId, connId, nodeId, ip: '10.0.0.1' })).ok).toBe(true);
      conn.admitted = true;
      conns.index(conn, userIndexKey(conn.identity!));
    }
    return conn;
  };
  return {
    service,
    repo,
    quota,
    open,
    calls: () => calls,
    setDown: (v: boolean) => {
      down = v;
    },
  };
}

describe('SubscriptionQuota', () => {
  it('sends the reservations of one tick — a thousand connections of ten users — in one call, within each user\'s cap', async () => {
    const t = setup(60);
    const conns: Conn[] = [];
    for (let i = 0; i < 1000; i++) conns.push(await t.open(`user${i % 10}`));
    const verdicts = await Promise.all(conns.map((c) => t.quota.reserve(c, 1)));
    expect(t.calls()).toBe(1);
    expect(verdicts.filter((v) => v === 'ok')).toHaveLength(600);
    expect(verdicts.filter((v) => v === 'over_cap')).toHaveLength(400);
    for (let u = 0; u < 10; u++) expect(await t.repo.subscriptionsOf(`user${u}`)).toBe(60);
  });

  it('a client subscribing to 20 at once costs one call; prepaid credit is used without one and refunded', async () => {
    const t = setup(100);
    const c = await t.open('u');
    expect(await Promise.all(Array.from({ length: 20 }, () => t.quota.reserve(c, 1)))).toEqual(Array(20).fill('ok'));
    expect(t.calls()).toBe(1);
    expect(await t.quota.prepay(c, 5)).toBe('ok');
    expect(t.calls()).toBe(2);
    for (let i = 0; i < 3; i++) expect(await t.quota.reserve(c, 1)).toBe('ok');
    expect(t.calls()).toBe(2);
    await t.quota.refund(c);
    expect(await t.repo.subscriptionsOf('u')).toBe(23);
  });

  it('refuses locally what this edge alone knows is over the cap, and asks the service for the rest (other edges count)', async () => {
    const t = setup(5);
    const [a, b] = [await t.open('u'), await t.open('u')];
    expect(await t.quota.reserve(a, 3)).toBe('ok');
    const before = t.calls();
    expect(await t.quota.reserve(b, 3)).toBe('over_cap');
    expect(t.calls()).toBe(before);
    // Another edge's connection of the same user fills the cluster-wide rest: this edge learns it from the service.
    await t.service.admit({ userId: 'u', connId: 'e2:1', nodeId: 'e2', ip: '10.0.0.2' });
    await t.service.reserveSubscriptions({ maxPerUser: 5, deltas: [{ connId: 'e2:1', delta: 2 }] });
    expect(await t.quota.reserve(b, 1)).toBe('over_cap');
    expect(t.calls()).toBe(before + 1);
    // Releasing resolves once the service applied it: room made here is room everywhere.
    await t.quota.release(a, 1);
    expect(await t.repo.subscriptionsOf('u')).toBe(4);
    expect(await t.quota.reserve(b, 1)).toBe('ok');
  });

  it('counts a resume\'s subscriptions past the cap (forced), and nothing for anonymous connections', async () => {
    const t = setup(2);
    const c = await t.open('u');
    expect(await t.quota.reserve(c, 2)).toBe('ok');
    expect(await t.quota.prepay(c, 3, true)).toBe('ok');
    expect(await t.repo.subscriptionsOf('u')).toBe(5);
    const anon = await t.open(null);
    const calls = t.calls();
    expect(await t.quota.reserve(anon, 50)).toBe('ok');
    await t.quota.release(anon, 50);
    expect(t.calls()).toBe(calls);
  });

  it('refuses subscribes with `unavailable` while the service is unreachable; releases are retried until it is back', async () => {
    const t = setup(3);
    const c = await t.open('u');
    expect(await t.quota.reserve(c, 3)).toBe('ok');
    t.setDown(true);
    expect(await t.quota.reserve(c, 1, true)).toBe('unavailable');
    await t.quota.release(c, 2);
    expect(await t.repo.subscriptionsOf('u')).toBe(3);
    // What was refused is not held locally either: after the release, 2 fit again by the local count.
    t.setDown(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(await t.repo.subscriptionsOf('u')).toBe(1);
    expect(await t.quota.reserve(c, 2)).toBe('ok');
    expect(await t.quota.reserve(c, 1)).toBe('over_cap');
  });

  it('a closed connection stops counting here at once, and at the service once its admission is released', async () => {
    const t = setup(2);
    const [a, b] = [await t.open('u'), await t.open('u')];
    expect(await t.quota.reserve(a, 2)).toBe('ok');
    expect(await t.quota.reserve(b, 1)).toBe('over_cap');
    const calls = t.calls();
    a.closed = true;
    t.quota.closed(a);
    // Not over the cap by this edge's count any more, so the service is asked: it still counts a.
    expect(await t.quota.reserve(b, 2)).toBe('over_cap');
    expect(t.calls()).toBe(calls + 1);
    await t.service.release(a.connId);
    expect(await t.quota.reserve(b, 2)).toBe('ok');
  });

  it('a connection closed before its reservation was sent costs nothing; one the service released is refused', async () => {
    const t = setup(3);
    const c = await t.open('u');
    const pending = t.quota.reserve(c, 1);
    c.closed = true;
    t.quota.closed(c);
    expect(await pending).toBe('unavailable');
    const d = await t.open('u');
    await t.service.release(d.connId);
    expect(await t.quota.reserve(d, 1)).toBe('unavailable');
    expect(await t.repo.subscriptionsOf('u')).toBe(0);
  });
});
