/**
 * The `gooduncle` dialect as real processes: two `switchboard edge` processes, one `switchboard session`
 * and a real Redis (a standalone redis-server, and a 3-master Redis Cluster). A live query on one edge
 * gets its first results, then the changes a writer makes through the other edge; `forbidden` before
 * `upgrade` (with a user of the session service); accounts stay apart across edges; and the seed's
 * keep-alive timing on an edge's own GOODUNCLE_PORT.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES, DEV_ADMIN_TOKEN, DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import { TestClient, freePort, startRedis, startRedisCluster, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TOPICS = {
  orders: { indexed: ['status', 'customer'] },
  notes: {},
};

interface Envelope {
  session: { id: string; roles: string[] };
  request: { time: number; payload: Record<string, unknown> | null };
  response: { time: number; code: string; errors: { field: string | null; code: string; problem: string }[]; payload: Record<string, unknown> };
  passport: Record<string, unknown>[];
}

const isResponse = (m: Record<string, unknown>) => typeof m.session === 'object' && typeof m.response === 'object' && Array.isArray(m.passport);
let tags = 0;

/** Sends a request tagged with a unique `tag` (echoed in `request.payload`) and waits for its response. */
async function ask(c: TestClient, request: Record<string, unknown>, timeoutMs = 8000): Promise<Envelope> {
  const tag = ++tags;
  c.send({ ...request, tag });
  return (await c.next((m) => isResponse(m) && (m as unknown as Envelope).request.payload?.tag === tag, timeoutMs)) as unknown as Envelope;
}

/** Live-query updates answering `sub` (same tag). */
function updatesOf(c: TestClient, sub: Envelope, n: number, timeoutMs = 10_000): Promise<Envelope[]> {
  const tag = sub.request.payload?.tag;
  return c.take(n, (m) => isResponse(m) && (m as unknown as Envelope).request.payload?.tag === tag, timeoutMs) as unknown as Promise<Envelope[]>;
}

function ok(res: Envelope): Record<string, unknown> {
  expect(res.response.code, JSON.stringify(res.response.errors)).toBe('ok');
  return res.response.payload;
}

const stops: (() => void)[] = [];
/** A Good Uncle client that keeps itself alive as the seed's clients do ("`" every 300 ms). */
async function connect(url: string): Promise<TestClient> {
  const c = await TestClient.connect(url);
  const t = setInterval(() => c.open && c.send('`'), 300);
  stops.push(() => clearInterval(t));
  return c;
}

function edgeEnv(url: string, cluster: boolean, nodeId: string, sessionUrl: string, ownPort: number): Record<string, string> {
  return {
    REDIS_URL: url,
    REDIS_CLUSTER: cluster ? '1' : '0',
    NODE_ID: nodeId,
    SWITCHBOARD_SESSION_URL: sessionUrl,
    SWITCHBOARD_SHARDS: '16',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_DRAIN_MS: '100',
    // Set for every dialect, as production does: anonymous Good Uncle sessions must not inherit it.
    SWITCHBOARD_AUTH_TIMEOUT_MS: '1000',
    GOODUNCLE_PORT: String(ownPort),
    GOODUNCLE_TOPICS: JSON.stringify(TOPICS),
  };
}

function clusterSuite(name: string, start: () => Promise<{ url: string; cluster: boolean; stop(): Promise<void> }>, timing: boolean): void {
  describe(`gooduncle on two edges over ${name}`, () => {
    let redis: { url: string; cluster: boolean; stop(): Promise<void> };
    let session: SwitchboardProcess;
    let a: SwitchboardProcess;
    let b: SwitchboardProcess;
    let aOwn: string;
    beforeAll(async () => {
      redis = await start();
      session = await startSwitchboard(BIN, 'session', { REDIS_URL: redis.url, REDIS_CLUSTER: redis.cluster ? '1' : '0' }, 20_000, 'SESSION_PORT');
      const [pa, pb] = [await freePort(), await freePort()];
      [a, b] = await Promise.all([
        startSwitchboard(BIN, 'edge', edgeEnv(redis.url, redis.cluster, 'edge-a', session.httpUrl, pa)),
        startSwitchboard(BIN, 'edge', edgeEnv(redis.url, redis.cluster, 'edge-b', session.httpUrl, pb)),
      ]);
      aOwn = `ws://127.0.0.1:${pa}`;
      for (const user of [
        { name: 'ollie', password: 'ollie-password-1', roles: ['driver'] },
        { name: 'acme-ann', password: 'acme-password-1', roles: ['driver'], tenant: 'acme' },
      ]) {
        const res = await fetch(`${session.httpUrl}/v1/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
          body: JSON.stringify(user),
        });
        expect(res.status, await res.text()).toBe(201);
      }
    }, 90_000);
    afterAll(async () => {
      for (const s of stops.splice(0)) s();
      await Promise.all([a?.stop(), b?.stop()]);
      await session?.stop();
      await redis?.stop();
    });

    it('forbidden before upgrade; a live query on edge B gets its results, then the writes made through edge A', async () => {
      const writer = await connect(`${a.wsUrl}/gooduncle`);
      const before = await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'c1' } });
      expect(before.response).toMatchObject({ code: 'forbidden', errors: [{ field: 'topic', code: 'forbidden' }] });
      const up = await ask(writer, { type: 'upgrade', username: 'ollie', password: 'ollie-password-1' });
      expect(ok(up)).toEqual({ user: 'ollie', account: 'default', roles: ['driver'] });
      const first = ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'c1' } })).object as { id: number };

      const reader = await connect(`${b.wsUrl}/gooduncle`);
      const sub = await ask(reader, { type: 'subscribe', topic: 'orders', query: { customer: 'c1', status: 'open' } });
      expect(ok(sub)).toEqual({ objects: [{ id: first.id, v: [1], status: 'open', customer: 'c1' }], truncated: false });
      expect(sub.passport).toEqual([{ service: 'edge', node: 'edge-b' }]);

      const second = ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'c1' } })).object as { id: number };
      ok(await ask(writer, { type: 'update', topic: 'orders', id: first.id, data: { eta: '12:30' }, v: [1] }));
      const stale = await ask(writer, { type: 'update', topic: 'orders', id: first.id, data: { eta: 'never' }, v: [1] });
      expect(stale.response).toMatchObject({ code: 'bad request', errors: [{ field: 'v', code: 'version_conflict' }] });
      ok(await ask(writer, { type: 'update', topic: 'orders', id: second.id, data: { status: 'delivered' } }));
      ok(await ask(writer, { type: 'delete', topic: 'orders', id: first.id }));

      const updates = await updatesOf(reader, sub, 4);
      expect(updates.map((u) => u.response.payload)).toEqual([
        { change: 'entered', op: 'create', object: { id: second.id, v: [1], status: 'open', customer: 'c1' } },
        { change: 'changed', op: 'update', object: { id: first.id, v: [2], status: 'open', customer: 'c1', eta: '12:30' } },
        { change: 'left', op: 'update', object: { id: second.id, v: [2], status: 'delivered', customer: 'c1' } },
        { change: 'left', op: 'delete', object: { id: first.id, v: [2], status: 'open', customer: 'c1', eta: '12:30' } },
      ]);
      for (const u of updates) {
        expect(u.session).toEqual(sub.session);
        expect(u.request).toEqual(sub.request);
        expect(u.passport).toEqual([{ service: 'store', epoch: expect.any(String), offset: expect.any(Number) }, { service: 'edge', node: 'edge-b' }]);
      }
      // The stale update changed nothing and sent nothing.
      expect(await reader.collect(300, isResponse)).toEqual([]);
      await Promise.all([writer.close(), reader.close()]);
    }, 60_000);

    it('accounts stay apart across edges: another account\'s live query hears nothing, its id is not found', async () => {
      const acme = await connect(`${a.wsUrl}/gooduncle`);
      ok(await ask(acme, { type: 'upgrade', username: 'acme-ann', password: 'acme-password-1' }));
      const other = await connect(`${b.wsUrl}/gooduncle`);
      const watch = await ask(other, { type: 'subscribe', topic: 'notes', query: {} });
      const before = (ok(watch).objects as unknown[]).length;
      const acmeWatch = await connect(`${b.wsUrl}/gooduncle`);
      // With a token this time (the dev issuer the edges verify in dev mode).
      const token = await hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' }).issue({ sub: 'acme-bob', roles: [], tenant: 'acme', ttlSec: 600 });
      expect(ok(await ask(acmeWatch, { type: 'upgrade', token }))).toEqual({ user: 'acme-bob', account: 'acme', roles: [] });
      const mine = await ask(acmeWatch, { type: 'subscribe', topic: 'notes', query: {} });
      const note = ok(await ask(acme, { type: 'create', topic: 'notes', data: { text: 'acme only' } })).object as { id: number };
      expect((await updatesOf(acmeWatch, mine, 1))[0]!.response.payload).toMatchObject({ change: 'entered', object: { text: 'acme only' } });
      expect(await other.collect(500, isResponse)).toEqual([]);
      const probe = await ask(other, { type: 'read', topic: 'notes', id: note.id });
      if (probe.response.code === 'ok') expect(probe.response.payload.object).not.toMatchObject({ text: 'acme only' });
      else expect(probe.response.code).toBe('not found');
      expect(before).toBe((ok(await ask(other, { type: 'subscribe', topic: 'notes', query: {} })).objects as unknown[]).length);
      await Promise.all([acme.close(), other.close(), acmeWatch.close()]);
    }, 60_000);

    if (timing)
      it('on GOODUNCLE_PORT: ≥ 8 "`" in 3 s, invalid JSON keeps the connection, silence closes it within 3000–3500 ms', async () => {
        const silent = await TestClient.connect(aOwn);
        const talker = await TestClient.connect(aOwn);
        const opened = Date.now();
        const talking = setInterval(() => talker.send('this is not JSON'), 500);
        const { code } = await silent.closed;
        const ms = Date.now() - opened;
        expect(code).toBe(CLOSE_CODES.client_silent.code);
        expect(ms).toBeGreaterThanOrEqual(3000);
        expect(ms).toBeLessThan(3500);
        expect(silent.frames.filter((f) => f.text === '`').length).toBeGreaterThanOrEqual(8);
        await sleep(1000);
        clearInterval(talking);
        // Past the silence limit and the core auth deadline, the one that talked is still open and never answered.
        expect(talker.open).toBe(true);
        expect(talker.frames.filter((f) => f.text !== '`')).toEqual([]);
        expect(talker.frames.length).toBeGreaterThanOrEqual(11);
        await talker.close();
      }, 30_000);
  });
}

clusterSuite(
  'a standalone redis-server',
  async () => {
    const r = await startRedis();
    return { url: r.url, cluster: false, stop: () => r.stop() };
  },
  true,
);

clusterSuite(
  'a 3-master Redis Cluster',
  async () => {
    const c = await startRedisCluster(3);
    return { url: c.url, cluster: true, stop: () => c.stop() };
  },
  false,
);

describe('gooduncle while Redis is away', () => {
  it('writes and reads are answered with `error` (unavailable), connections stay, and work again once Redis is back', async () => {
    const redis = await startRedis({ persistent: true });
    const session = await startSwitchboard(BIN, 'session', { REDIS_URL: redis.url, REDIS_CLUSTER: '0' }, 20_000, 'SESSION_PORT');
    const edge = await startSwitchboard(BIN, 'edge', edgeEnv(redis.url, false, 'edge-r', session.httpUrl, await freePort()));
    try {
      const c = await connect(`${edge.wsUrl}/gooduncle`);
      const token = await hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' }).issue({ sub: 'rita', roles: ['driver'], ttlSec: 600 });
      ok(await ask(c, { type: 'upgrade', token }));
      const kept = ok(await ask(c, { type: 'create', topic: 'notes', data: { text: 'before' } })).object as { id: number };
      await redis.kill();
      const down = await ask(c, { type: 'create', topic: 'notes', data: { text: 'during' } }, 15_000);
      expect(down.response).toMatchObject({ code: 'error', errors: [{ field: null, code: 'unavailable' }] });
      expect((await ask(c, { type: 'read', topic: 'notes', id: kept.id }, 15_000)).response.code).toBe('error');
      expect(c.open).toBe(true);
      await redis.restart();
      let back: Envelope | null = null;
      for (let i = 0; i < 100 && back?.response.code !== 'ok'; i++) {
        back = await ask(c, { type: 'read', topic: 'notes', id: kept.id }, 15_000);
        if (back.response.code !== 'ok') await sleep(100);
      }
      expect(back?.response.payload.object).toEqual({ id: kept.id, v: [1], text: 'before' });
      expect(edge.child.exitCode).toBeNull();
      await c.close();
    } finally {
      for (const s of stops.splice(0)) s();
      await edge.stop();
      await session.stop();
      await redis.stop();
    }
  }, 60_000);
});
