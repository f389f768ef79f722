/**
 * Horizontal scaling, as real processes: two `switchboard edge` processes and a real Redis (a
 * standalone redis-server, and a 3-master Redis Cluster), clients on both edges, publishing through
 * either. Also: recovery by offset on another edge, a Redis restart while publishing, and
 * shard-selective reading.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys, shardOf } from '@switchboard/bus';
import { CONTROL_CHANNEL } from '@switchboard/edge';
import { DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import {
  TestClient,
  scrapeMetric,
  startRedis,
  startRedisCluster,
  startSwitchboard,
  type RedisCluster,
  type RedisServer,
  type SwitchboardProcess,
} from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function authed(edge: SwitchboardProcess, user: string, tenant?: string): Promise<TestClient> {
  const c = await TestClient.connect(`${edge.wsUrl}/ws`);
  const token = await hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' }).issue({ sub: user, ttlSec: 600, ...(tenant ? { tenant } : {}) });
  c.send({ type: 'auth', token });
  const res = await c.nextOfType('auth_response');
  if (res.success !== true) throw new Error(JSON.stringify(res));
  return c;
}

async function subscribe(c: TestClient, msg: Record<string, unknown>): Promise<Record<string, unknown>> {
  c.send({ type: 'subscribe', ...msg });
  return c.nextOfType('subscribe_response');
}

/** Publishes through an edge's HTTP API; retries while the bus is unavailable (503). */
async function publish(
  edge: SwitchboardProcess,
  channel: string,
  data: Record<string, unknown>,
  attrs: Record<string, unknown> = {},
  tenant?: string,
): Promise<Record<string, unknown>> {
  const key = randomUUID();
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${edge.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer dev-api-key' },
        // Retried on 503 with the same idempotency key: a publish that may have committed is not doubled.
        body: JSON.stringify({ channel, attrs, data, idempotency_key: key, ...(tenant ? { tenant } : {}) }),
      });
      if (res.ok) return (await res.json()) as Record<string, unknown>;
      if (res.status !== 503 || attempt > 200) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
    } catch (err) {
      if (attempt > 200) throw err;
    }
    await sleep(50);
  }
}

function edgeEnv(url: string, cluster: boolean, nodeId: string, sessionUrl = ''): Record<string, string> {
  return {
    REDIS_URL: url,
    REDIS_CLUSTER: cluster ? '1' : '0',
    NODE_ID: nodeId,
    ...(sessionUrl ? { SWITCHBOARD_SESSION_URL: sessionUrl } : {}),
    SWITCHBOARD_SHARDS: '16',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_HISTORY_SIZE: '1000',
    SWITCHBOARD_DRAIN_MS: '100',
  };
}

/** A session service process on a free port. */
export function startSession(url: string, cluster: boolean, extra: Record<string, string> = {}): Promise<SwitchboardProcess> {
  return startSwitchboard(BIN, 'session', { REDIS_URL: url, REDIS_CLUSTER: cluster ? '1' : '0', ...extra }, 20_000, 'SESSION_PORT');
}

function clusterSuite(name: string, start: () => Promise<{ url: string; cluster: boolean; stop(): Promise<void> }>): void {
  describe(`two edges over ${name}`, () => {
    let redis: { url: string; cluster: boolean; stop(): Promise<void> };
    let session: SwitchboardProcess;
    let a: SwitchboardProcess;
    let b: SwitchboardProcess;
    beforeAll(async () => {
      redis = await start();
      session = await startSession(redis.url, redis.cluster);
      [a, b] = await Promise.all([
        startSwitchboard(BIN, 'edge', edgeEnv(redis.url, redis.cluster, 'edge-a', session.httpUrl)),
        startSwitchboard(BIN, 'edge', edgeEnv(redis.url, redis.cluster, 'edge-b', session.httpUrl)),
      ]);
    }, 90_000);
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await session?.stop();
      await redis?.stop();
    });

    it('clients on both edges receive every message published through either, in order, exactly once', async () => {
      const ca = await authed(a, 'ua');
      const cb = await authed(b, 'ub');
      const sa = await subscribe(ca, { channel: 'alerts' });
      const sb = await subscribe(cb, { channel: 'alerts' });
      expect(sa.epoch).toBe(sb.epoch);
      const start = sa.offset as number;
      const N = 200;
      // Publish concurrently through both edges: Redis decides one order, both clients must see it.
      await Promise.all(
        Array.from({ length: N }, (_, i) => publish(i % 2 ? a : b, 'alerts', { alert_id: i, title: `m${i}` }, { severity: 'info' })),
      );
      const ga = await ca.take(N, (m) => m.type === 'alert', 15_000);
      const gb = await cb.take(N, (m) => m.type === 'alert', 15_000);
      expect(ga.map((m) => m.offset)).toEqual(Array.from({ length: N }, (_, i) => start + i + 1));
      expect(gb.map((m) => m.offset)).toEqual(ga.map((m) => m.offset));
      expect(gb.map((m) => m.alert_id)).toEqual(ga.map((m) => m.alert_id));
      expect(new Set(ga.map((m) => m.alert_id)).size).toBe(N);
      expect(await ca.collect(300, (m) => m.type === 'alert')).toHaveLength(0);
      await Promise.all([ca.close(), cb.close()]);
    }, 60_000);

    it('a client that reconnects to the other edge with its last {epoch, offset} gets exactly the missed 100, then live', async () => {
      const c1 = await authed(a, 'roamer');
      await subscribe(c1, { channel: 'devices', device_id: 7 });
      await publish(b, 'devices', { device_id: 7, new_status: 'online', seq: 0 });
      const last = await c1.nextOfType('device_status_update', 5000);
      await c1.close();
      for (let i = 1; i <= 100; i++) await publish(i % 3 ? b : a, 'devices', { device_id: 7, new_status: 'online', seq: i });
      // A message of another device in between: filtered out, but it still moves the offsets.
      await publish(a, 'devices', { device_id: 8, new_status: 'offline', seq: -1 });
      const c2 = await authed(b, 'roamer');
      const res = await subscribe(c2, { channel: 'devices', device_id: 7, recover: { epoch: last.epoch, offset: last.offset } });
      expect(res).toMatchObject({ recovered: true, replayed: 100 });
      const missed = await c2.take(100, (m) => m.type === 'device_status_update', 10_000);
      expect(missed.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      await publish(a, 'devices', { device_id: 7, new_status: 'offline', seq: 101 });
      expect((await c2.nextOfType('device_status_update', 5000)).seq).toBe(101);
      expect(await c2.collect(200, (m) => m.type === 'device_status_update')).toHaveLength(0);
      await c2.close();
    }, 60_000);

    it('a tenant never receives another tenant\'s messages, across edges', async () => {
      const acme = await authed(a, 'same-name', 'acme');
      const globex = await authed(b, 'same-name', 'globex');
      const acmeOnB = await authed(b, 'other', 'acme');
      for (const c of [acme, globex, acmeOnB]) await subscribe(c, { channel: 'alerts' });
      await publish(b, 'alerts', { alert_id: 'for-acme' }, {}, 'acme');
      await publish(a, 'alerts', { alert_id: 'for-globex' }, {}, 'globex');
      expect((await acme.nextOfType('alert', 5000)).alert_id).toBe('for-acme');
      expect((await acmeOnB.nextOfType('alert', 5000)).alert_id).toBe('for-acme');
      expect((await globex.nextOfType('alert', 5000)).alert_id).toBe('for-globex');
      for (const c of [acme, globex, acmeOnB]) expect(await c.collect(300, (m) => m.type === 'alert')).toHaveLength(0);
      await Promise.all([acme.close(), globex.close(), acmeOnB.close()]);
    }, 60_000);

    it('an edge reads only shards it has interest in', async () => {
      const idle = await startSwitchboard(BIN, 'edge', edgeEnv(redis.url, redis.cluster, 'edge-idle', session.httpUrl));
      // Every edge reads the control plane: the control channel's shard and its own reply channel's.
      const control = new Set([shardOf(CONTROL_CHANNEL, 16), shardOf('switchboard:cluster:reply.edge-idle', 16)]);
      const telemetry = shardOf('valtronics:default:telemetry', 16);
      const alerts = shardOf('valtronics:default:alerts', 16);
      expect([...control, telemetry]).not.toContain(alerts);
      expect(await scrapeMetric(idle.httpUrl, 'switchboard_bus_shards_read')).toBe(control.size);
      const c = await authed(idle, 'one-channel');
      await subscribe(c, { channel: 'telemetry' });
      expect(await scrapeMetric(idle.httpUrl, 'switchboard_bus_shards_read')).toBe(new Set([...control, telemetry]).size);
      const skippedBefore = await scrapeMetric(idle.httpUrl, 'switchboard_bus_messages_skipped_total');
      await publish(a, 'alerts', { alert_id: 'not-for-idle' });
      await publish(a, 'telemetry', { t: { value: 1 } }, { device_id: 1 });
      await c.nextOfType('telemetry_update', 5000);
      // It never read the alerts shard's feed: nothing of it was read and skipped.
      expect(await scrapeMetric(idle.httpUrl, 'switchboard_bus_messages_skipped_total')).toBe(skippedBefore);
      await c.close();
      await sleep(100);
      expect(await scrapeMetric(idle.httpUrl, 'switchboard_bus_shards_read')).toBe(control.size);
      await idle.stop();
    }, 60_000);
  });
}

clusterSuite('a standalone redis-server', async () => {
  const r = await startRedis();
  return { url: r.url, cluster: false, stop: () => r.stop() };
});

clusterSuite('a 3-master Redis Cluster', async () => {
  const c: RedisCluster = await startRedisCluster(3);
  return { url: c.url, cluster: true, stop: () => c.stop() };
});

describe('redis-server restarts while publishing', () => {
  async function run(persistent: boolean) {
    const redis: RedisServer = await startRedis({ persistent });
    const session = await startSession(redis.url, false);
    const [a, b] = await Promise.all([
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, false, 'edge-ra', session.httpUrl)),
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, false, 'edge-rb', session.httpUrl)),
    ]);
    const ca = await authed(a, 'ra');
    const cb = await authed(b, 'rb');
    const first = await subscribe(ca, { channel: 'alerts' });
    await subscribe(cb, { channel: 'alerts' });
    let publishing = true;
    let acked = 0;
    const publisher = (async () => {
      for (let i = 0; publishing; i++) {
        await publish(i % 2 ? a : b, 'alerts', { alert_id: i });
        acked++;
      }
    })();
    await sleep(300);
    await redis.kill();
    await sleep(300);
    await redis.restart();
    await sleep(800);
    publishing = false;
    await publisher;
    return { redis, session, a, b, ca, cb, first, acked };
  }

  it('with persistence: every edge resumes and clients see every message, contiguous, no gap', async () => {
    const { redis, session, a, b, ca, cb, first } = await run(true);
    const admin = new Redis(redis.url);
    const top = Number(await admin.hget(keys.meta(shardOf('valtronics:default:alerts', 16), 'valtronics:default:alerts'), 'o'));
    admin.disconnect();
    for (const c of [ca, cb]) {
      const got = await c.take(top - (first.offset as number), (m) => m.type === 'alert', 15_000);
      const offsets = got.map((m) => m.offset as number);
      expect(offsets).toEqual(offsets.map((_, i) => (first.offset as number) + i + 1));
      expect(new Set(got.map((m) => m.epoch)).size).toBe(1);
      expect(c.open).toBe(true);
    }
    await Promise.all([ca.close(), cb.close(), a.stop(), b.stop(), session.stop()]);
    await redis.stop();
  }, 60_000);

  it('without persistence: the loss is reported (4010), and recovery says recovered:false', async () => {
    const { redis, session, a, b, ca, cb, first } = await run(false);
    for (const c of [ca, cb]) {
      const { code } = await Promise.race([c.closed, sleep(10_000).then(() => ({ code: -1 }))]);
      expect(code).toBe(4010);
      const alerts = c.drain((m) => m.type === 'alert');
      const offsets = alerts.map((m) => m.offset as number);
      // What was delivered before the close was contiguous in the old epoch.
      expect(offsets).toEqual(offsets.map((_, i) => (first.offset as number) + i + 1));
    }
    const back = await authed(b, 'rb');
    const res = await subscribe(back, { channel: 'alerts', recover: { epoch: first.epoch, offset: first.offset } });
    expect(res.recovered).toBe(false);
    await Promise.all([back.close(), a.stop(), b.stop(), session.stop()]);
    await redis.stop();
  }, 60_000);
});

