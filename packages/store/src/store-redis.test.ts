/**
 * The ObjectStore contract against real Redis: a redis-server on a free port and a 3-master Redis
 * Cluster, with change events read by the RedisStreamsBus. Plus what only the Redis store has: its keys
 * share the channel's hash tag, its payload is the bus codec's, a failing script leaves nothing
 * behind, and it fails fast when Redis is away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createLogger } from '@switchboard/core';
import { RedisStreamsBus, decodePayload, encodePayload, keys, shardOf } from '@switchboard/bus';
import { startRedis, startRedisPair, type RedisCluster, type RedisPair, type RedisServer } from '@switchboard/testkit';
import { runStoreContract, type StoreWorld } from './store.contract.js';
import { RedisObjectStore, encodeTs, storeKeys, type RedisObjectStoreOptions } from './store-redis.js';
import type { ObjectStoreOptions } from './store.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const SHARDS = 16;

function storeOptions(url: string, cluster: boolean, options: ObjectStoreOptions): RedisObjectStoreOptions {
  return {
    ...options,
    target: { url, cluster },
    shards: SHARDS,
    feedMaxLen: 10_000,
    historySize: 1000,
    historyTtlSec: 60,
    logger,
    nodeId: 'test',
    registry: new Registry(),
  };
}

function world(url: string, cluster: boolean, flush: () => Promise<void>): () => Promise<StoreWorld> {
  return async () => {
    await flush();
    const closers: (() => Promise<void>)[] = [];
    return {
      store: async (options) => {
        const store = await RedisObjectStore.connect(storeOptions(url, cluster, options));
        closers.push(() => store.close());
        return store;
      },
      bus: async () => {
        const bus = await RedisStreamsBus.connect({
          target: { url, cluster },
          shards: SHARDS,
          feedMaxLen: 10_000,
          blockMs: 1000,
          readCount: 500,
          historySize: 1000,
          historyTtlSec: 60,
          logger,
          nodeId: 'test',
          registry: new Registry(),
        });
        closers.push(() => bus.close());
        return bus;
      },
      close: async () => {
        await Promise.all(closers.map((c) => c()));
      },
    };
  };
}

let redis: RedisServer;
let cluster: RedisCluster;
let pair: RedisPair | undefined;
beforeAll(async () => {
  pair = await startRedisPair();
  ({ redis, cluster } = pair);
}, 60_000);
afterAll(() => pair?.stop());

const flushStandalone = async () => {
  await redis.command('FLUSHALL');
};
const flushCluster = async () => {
  await Promise.all(cluster.nodes.map((n) => n.command('FLUSHALL')));
};

runStoreContract('Redis (standalone redis-server)', () => world(redis.url, false, flushStandalone)());
runStoreContract('Redis (3-master Redis Cluster)', () => world(cluster.url, true, flushCluster)());

const TYPES: ObjectStoreOptions = {
  types: { asset: { parts: ['general', 'advanced'], fields: { general: ['name', 'status'], advanced: ['notes'] }, indexed: ['status'] } },
  channel: (tenant, type) => `ff:${tenant}:${type}`,
};

describe('Redis object store specifics', () => {
  it('encodes the timestamp exactly as the bus codec does, so a payload is the codec\'s [ts, attrs, data]', () => {
    for (const ts of [0, 1, 255, 2 ** 32, Date.now(), 1.5]) {
      const full = encodePayload({ ts, attrs: {}, data: '' });
      const tail = full.subarray(full.length - (encodePayload({ ts: 0, attrs: {}, data: '' }).length - 2));
      expect(full[0]).toBe(0x93);
      expect(Buffer.concat([Buffer.from([0x93]), encodeTs(ts), tail])).toEqual(full);
      expect(decodePayload(Buffer.concat([Buffer.from([0x93]), encodeTs(ts), Buffer.from([0x81, 0xa1, 0x61, 0x01, 0xa1, 0x78])]))).toEqual({ ts, attrs: { a: 1 }, data: 'x' });
    }
  });

  it('keeps every key of a channel under its hash tag, and the event is the bus payload', async () => {
    await flushStandalone();
    const store = await RedisObjectStore.connect(storeOptions(redis.url, false, TYPES));
    const res = await store.create('42', 'asset', { name: 'truck', status: 'active' });
    expect(res.ok).toBe(true);
    const s = shardOf('ff:42:asset', SHARDS);
    const r = new Redis(redis.url);
    const all = (await r.keys('*')).sort();
    expect(all).toEqual(
      [
        keys.feed(s),
        keys.history(s, 'ff:42:asset'),
        keys.meta(s, 'ff:42:asset'),
        storeKeys.ids(s, 'ff:42:asset'),
        storeKeys.index(s, 'ff:42:asset', 'status', '"active"'),
        storeKeys.object(s, 'ff:42:asset', 1),
        storeKeys.seq(s, 'ff:42:asset'),
      ].sort(),
    );
    for (const k of all) expect(k).toContain(`{${s}}`);
    const entries = (await r.xrangeBuffer(keys.history(s, 'ff:42:asset'), '-', '+')) as [Buffer, Buffer[]][];
    expect(entries).toHaveLength(1);
    const payload = decodePayload(entries[0]![1][1]!);
    expect(payload).toMatchObject({ attrs: { op: 'create', id: 1, 'part.general': true, 'part.advanced': true, 'f.status': '"active"' } });
    expect(payload!.data).toBe(res.ok ? res.data : '');
    expect(Math.abs(payload!.ts - Date.now())).toBeLessThan(5000);
    const [feedEntry] = (await r.xrange(keys.feed(s), '-', '+')) as [string, string[]][];
    expect(feedEntry![1].filter((_, i) => i % 2 === 0)).toEqual(['c', 'o', 'e', 'p', 'w']);
    r.disconnect();
    await store.close();
  });

  it('orders each script so that a failing command never leaves an object change without its event', async () => {
    await flushStandalone();
    const store = await RedisObjectStore.connect(storeOptions(redis.url, false, TYPES));
    expect((await store.create('42', 'asset', { name: 'a' })).ok).toBe(true);
    const s = shardOf('ff:42:asset', SHARDS);
    const r = new Redis(redis.url);
    // Redis does not roll a script back: what ran before a failing command stays. So every check
    // comes first, then the event, then the object. A failure while appending the event (here the
    // history key has the wrong type) leaves the object as it was.
    await r.rename(keys.history(s, 'ff:42:asset'), 'saved');
    await r.set(keys.history(s, 'ff:42:asset'), 'not a stream');
    await expect(store.merge('42', 'asset', 1, { name: 'b' })).rejects.toThrow(/WRONGTYPE/);
    expect(await store.get('42', 'asset', 1)).toMatchObject({ ok: true, object: { v: [1, 1], name: 'a' } });
    expect(await r.xlen(keys.feed(s))).toBe(1);
    await r.del(keys.history(s, 'ff:42:asset'));
    await r.rename('saved', keys.history(s, 'ff:42:asset'));
    // A failure after the event (an index key of the wrong type) leaves the write and its event both done.
    await r.set(storeKeys.index(s, 'ff:42:asset', 'status', '"broken"'), 'not a zset');
    await expect(store.merge('42', 'asset', 1, { status: 'broken' })).rejects.toThrow(/WRONGTYPE/);
    expect(await store.get('42', 'asset', 1)).toMatchObject({ ok: true, object: { v: [2, 1], status: 'broken' } });
    const events = (await r.xrangeBuffer(keys.feed(s), '-', '+')) as [Buffer, Buffer[]][];
    expect(events.map(([, f]) => decodePayload(f[7]!)!.attrs.op)).toEqual(['create', 'merge']);
    r.disconnect();
    await store.close();
  });

  it('counts calls by operation and outcome', async () => {
    await flushStandalone();
    const registry = new Registry();
    const store = await RedisObjectStore.connect({ ...storeOptions(redis.url, false, TYPES), registry });
    await store.create('42', 'asset', { name: 'a' });
    await store.merge('42', 'asset', 1, { name: 'b' }, { expectV: [0, 0] });
    await store.get('42', 'asset', 9);
    const calls = await registry.getSingleMetric('switchboard_store_calls_total')!.get();
    const by = Object.fromEntries(calls.values.map((v) => [`${v.labels.op}:${v.labels.outcome}`, v.value]));
    expect(by).toEqual({ 'create:ok': 1, 'merge:version_conflict': 1, 'get:not_found': 1 });
    await store.close();
  });

  it('fails fast when Redis is unreachable', async () => {
    const down = await startRedis();
    const url = down.url;
    await down.stop();
    const t0 = Date.now();
    await expect(RedisObjectStore.connect(storeOptions(url, false, TYPES))).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(7000);
  });

  it('refuses a type spec or channel function a dialect must fix, before connecting', async () => {
    const bad: ObjectStoreOptions[] = [
      { types: { a: { parts: [] } }, channel: (t, ty) => `x:${t}:${ty}` },
      { types: { a: { parts: ['p', 'p'] } }, channel: (t, ty) => `x:${t}:${ty}` },
      { types: { a: { parts: ['p'], fields: { q: ['f'] } } }, channel: (t, ty) => `x:${t}:${ty}` },
      { types: { a: { parts: ['p'], fields: { p: ['id'] } } }, channel: (t, ty) => `x:${t}:${ty}` },
      { types: { a: { parts: ['p'], indexed: ['f'] } }, channel: (t, ty) => `x:${t}:${ty}` },
      { types: { a: { parts: ['p'], defaultPart: 'p', indexed: ['bad|name'] } }, channel: (t, ty) => `x:${t}:${ty}` },
      { types: { a: { parts: ['p'] } }, channel: (_t, ty) => `x:shared:${ty}` },
      { types: { a: { parts: ['p'] } }, channel: (t, ty) => `x {${t}} ${ty}` },
      { types: { a: { parts: ['p'] }, b: { parts: ['p'] } }, channel: (t) => `x:${t}` },
    ];
    for (const options of bad) await expect(RedisObjectStore.connect(storeOptions(redis.url, false, options))).rejects.toThrow(/object type|channel function/);
  });
});
