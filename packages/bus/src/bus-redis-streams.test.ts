/**
 * The Bus contract against real Redis: a redis-server started by the test on a free port, and a
 * 3-master Redis Cluster. Plus what only the Redis bus has: shard-selective reading, resuming after a
 * Redis restart, gap reports, and interest changes without restarting the reader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createLogger } from '@switchboard/core';
import { startRedis, startRedisPair, startRedisReplica, type RedisCluster, type RedisPair, type RedisServer } from '@switchboard/testkit';
import type { BusGap } from './bus.js';
import { Collector, runBusContract, type BusWorld } from './bus.contract.js';
import { NotReplicatedError, RedisStreamsBus, type RedisStreamsBusOptions } from './bus-redis-streams.js';
import { keys, shardOf } from './keys.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metricValue(bus: RedisStreamsBus, name: string): Promise<number> {
  const registry = (bus.options.registry ?? undefined)!;
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

function options(url: string, cluster: boolean, extra: Partial<RedisStreamsBusOptions> = {}): RedisStreamsBusOptions {
  return {
    target: { url, cluster },
    shards: 16,
    feedMaxLen: 10_000,
    blockMs: 1000,
    readCount: 500,
    historySize: 10,
    historyTtlSec: 1,
    logger,
    nodeId: 'test',
    registry: new Registry(),
    idempotencyWindowSec: 1,
    ...extra,
  };
}

function world(url: string, cluster: boolean, flush: () => Promise<void>): () => Promise<BusWorld> {
  return async () => {
    await flush();
    const nodes: RedisStreamsBus[] = [];
    return {
      historySize: 10,
      historyTtlSec: 1,
      idempotencyWindowSec: 1,
      node: async () => {
        const bus = await RedisStreamsBus.connect(options(url, cluster));
        nodes.push(bus);
        return bus;
      },
      loseData: flush,
      close: async () => {
        await Promise.all(nodes.map((n) => n.close()));
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

runBusContract('Redis Streams (standalone redis-server)', () => world(redis.url, false, flushStandalone)());
runBusContract('Redis Streams (3-master Redis Cluster)', () => world(cluster.url, true, flushCluster)());

describe('Redis Streams bus specifics', () => {
  it('keys of one channel share a hash tag, so they live in one cluster slot', () => {
    const s = shardOf('telemetry', 64);
    expect(keys.feed(s)).toBe(`sb:{${s}}:feed`);
    expect(keys.meta(s, 'telemetry')).toBe(`sb:{${s}}:meta:telemetry`);
    expect(keys.history(s, 'telemetry')).toBe(`sb:{${s}}:h:telemetry`);
    expect(shardOf('telemetry', 64)).toBe(s);
  });

  it('a flush spread over many shards is one script call on a standalone Redis, one per shard on a Cluster; each message in its own shard feed', async () => {
    // Script calls a server ran so far (EVALSHA, and EVAL where a script was not loaded yet).
    const scriptCalls = async (nodes: readonly RedisServer[]) => {
      let n = 0;
      for (const node of nodes) {
        const info = await node.command('INFO commandstats');
        for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) n += Number(m[1]);
      }
      return n;
    };
    const channels = Array.from({ length: 40 }, (_, i) => `spread.${i}`);
    const shards = new Set(channels.map((c) => shardOf(c, 16)));
    expect(shards.size).toBeGreaterThan(8);
    for (const [url, isCluster, nodes] of [
      [redis.url, false, [redis]],
      [cluster.url, true, cluster.nodes],
    ] as const) {
      const bus = await RedisStreamsBus.connect(options(url, isCluster));
      try {
        await bus.publish({ channel: 'warm', attrs: {}, data: '0' });
        const before = await scriptCalls(nodes);
        const res = await bus.publishBatch(channels.map((channel, i) => ({ channel, attrs: {}, data: String(i) })));
        expect(res.map((r) => r.offset)).toEqual(channels.map(() => 1));
        expect((await scriptCalls(nodes)) - before).toBe(isCluster ? shards.size : 1);
        const raw = isCluster ? new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port }))) : new Redis(url);
        try {
          for (const [i, channel] of channels.entries()) {
            const feed = (await raw.xrange(keys.feed(shardOf(channel, 16)), '-', '+')) as [string, string[]][];
            // Its one entry: channel, offset 1, its epoch, and its payload.
            const mine = feed.filter(([, f]) => f[1] === channel).map(([, f]) => [f[3], f[5], f.includes('p')]);
            expect(mine).toEqual([['1', res[i]!.epoch, true]]);
          }
        } finally {
          raw.disconnect();
        }
      } finally {
        await bus.close();
      }
    }
  });

  it('readiness follows Redis answering: false within a second of a stall, true again when it answers', async () => {
    const own = await startRedis();
    const bus = await RedisStreamsBus.connect(options(own.url, false));
    try {
      await sleep(300);
      expect(bus.ready()).toBe(true);
      own.pause();
      const stalledAt = Date.now();
      while (bus.ready() && Date.now() - stalledAt < 3000) await sleep(20);
      expect(Date.now() - stalledAt).toBeLessThan(1000);
      expect(bus.ready()).toBe(false);
      own.resume();
      const resumedAt = Date.now();
      while (!bus.ready() && Date.now() - resumedAt < 3000) await sleep(20);
      expect(bus.ready()).toBe(true);
    } finally {
      own.resume();
      await bus.close();
      await own.stop();
    }
  });

  it('with minReplicas, a publish is acknowledged only once a replica has it; otherwise not_replicated, with its position', async () => {
    const master = await startRedis();
    const replica = await startRedisReplica(master);
    const bus = await RedisStreamsBus.connect({ ...options(master.url, false), minReplicas: 1, replicaTimeoutMs: 300 });
    try {
      const p1 = await bus.publish({ channel: 'repl', attrs: {}, data: '1' });
      expect(p1.offset).toBe(1);
      const batch = await bus.publishBatch([2, 3].map((i) => ({ channel: 'repl', attrs: {}, data: String(i) })));
      expect(batch.map((p) => p.offset)).toEqual([2, 3]);
      // Announced once replicated, as one feed entry for the run (offsets 2 and 3 of one script run).
      const raw = new Redis(master.url);
      const feed = (await raw.xrange(keys.feed(shardOf('repl', 16)), '-', '+')) as [string, string[]][];
      raw.disconnect();
      expect(feed.map(([, f]) => [f[3], f.filter((x) => x === 'p').length])).toEqual([
        ['1', 1],
        ['2', 2],
      ]);
      replica.pause();
      const started = Date.now();
      const err = await bus.publish({ channel: 'repl', attrs: {}, data: '4' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotReplicatedError);
      expect((err as NotReplicatedError).code).toBe('not_replicated');
      expect((err as NotReplicatedError).position).toEqual({ epoch: p1.epoch, offset: 4 });
      expect(Date.now() - started).toBeLessThan(1500);
      // A batch fails once, with its first message's error (as a Promise.all over its messages would).
      const batchErr = await bus.publishBatch(['4a', '4b'].map((data) => ({ channel: 'repl', attrs: {}, data }))).catch((e: unknown) => e);
      expect(batchErr).toBeInstanceOf(NotReplicatedError);
      expect((batchErr as NotReplicatedError).position).toEqual({ epoch: p1.epoch, offset: 5 });
      // Committed but not announced: no edge can see it (position, history, feed) while it may be lost.
      expect(await bus.position('repl')).toEqual({ epoch: p1.epoch, offset: 3 });
      expect((await bus.history('repl', { epoch: p1.epoch, offset: 3 })).messages).toEqual([]);
      replica.resume();
      await sleep(200);
      expect((await bus.publish({ channel: 'repl', attrs: {}, data: '5' })).offset).toBe(7);
      // The next announcement makes it visible: replicated by now, since WAIT covers every earlier write.
      const after = await bus.history('repl', { epoch: p1.epoch, offset: 3 });
      expect(after.messages.map((m) => [m.offset, m.data])).toEqual([
        [4, '4'],
        [5, '4a'],
        [6, '4b'],
        [7, '5'],
      ]);
      // A burst over many channels (several per shard, one script per shard): each announced once replicated.
      const reader = await RedisStreamsBus.connect(options(master.url, false));
      const col = new Collector(reader);
      const many = Array.from({ length: 80 }, (_, k) => `repl.${k}`);
      await Promise.all(many.map((c) => reader.subscribe(c)));
      const burst = await Promise.all(many.flatMap((c) => [1, 2].map((i) => bus.publish({ channel: c, attrs: { i }, data: String(i) }))));
      expect(burst.map((p) => p.offset)).toEqual(many.flatMap(() => [1, 2]));
      await col.waitFor(160);
      for (const c of many) expect(col.of(c).map((e) => e.offset)).toEqual([1, 2]);
      await reader.close();
      const metrics = await (bus.options.registry ?? new Registry()).getSingleMetricAsString('switchboard_bus_replica_waits_total');
      expect(metrics).toContain('outcome="not_replicated"');
    } finally {
      replica.resume();
      await bus.close();
      await replica.stop();
      await master.stop();
    }
  }, 30_000);

  it('a message has one identity, its write id, whether read live or from history', async () => {
    await flushStandalone();
    const bus = await RedisStreamsBus.connect(options(redis.url, false));
    const col = new Collector(bus);
    await bus.subscribe('ident');
    const start = await bus.position('ident');
    for (let i = 0; i < 3; i++) await bus.publish({ channel: 'ident', attrs: {}, data: String(i) });
    await col.waitFor(3);
    const live = col.got.map((e) => e.writeId);
    expect(live.every((id) => typeof id === 'string' && /^\d+-1$/.test(id))).toBe(true);
    expect(new Set(live).size).toBe(3);
    const hist = await bus.history('ident', start);
    expect(hist.messages.map((e) => e.writeId)).toEqual(live);
    // A batch is one script run: one stamp, one index per message.
    const batch = await bus.publishBatch([1, 2].map((i) => ({ channel: 'ident', attrs: {}, data: String(i) })));
    await col.waitFor(5);
    const ids = col.got.slice(3).map((e) => e.writeId!);
    expect(ids.map((id) => id.split('-')[1])).toEqual(['1', '2']);
    expect(batch).toHaveLength(2);
    await bus.close();
  });

  it('announces a run of a channel\'s messages in one feed entry (at most 64 messages or about 16 KB), read back message by message', async () => {
    await flushStandalone();
    const bus = await RedisStreamsBus.connect(options(redis.url, false));
    const pub = await RedisStreamsBus.connect(options(redis.url, false));
    const r = new Redis(redis.url);
    try {
      const col = new Collector(bus);
      await bus.subscribe('runs');
      const feed = keys.feed(shardOf('runs', 16));
      const entries = async () => ((await r.xrange(feed, '-', '+')) as [string, string[]][]).length;
      // 200 messages of one channel in one script run: ceil(200 / 64) entries instead of 200.
      const big = await pub.publishBatch(Array.from({ length: 200 }, (_, i) => ({ channel: 'runs', attrs: { i }, data: String(i) })));
      expect(big.map((p) => p.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      await col.waitFor(200);
      expect(await entries()).toBe(4);
      expect(col.got.map((e) => [e.offset, e.data, e.attrs.i])).toEqual(Array.from({ length: 200 }, (_, i) => [i + 1, String(i), i]));
      // Each message keeps its own write id (<stamp>-1 … <stamp>-200), the same as in the history.
      const live = col.got.map((e) => e.writeId!);
      expect(new Set(live.map((id) => id.split('-')[0])).size).toBe(1);
      expect(live.map((id) => Number(id.split('-')[1]))).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const hist = await bus.history('runs', { epoch: big[0]!.epoch, offset: 190 });
      expect(hist.messages.map((e) => e.writeId)).toEqual(live.slice(190));
      expect(hist.messages.map((e) => e.offset)).toEqual(Array.from({ length: 10 }, (_, i) => 191 + i));
      // The history holds runs too (one entry per 64 messages at most), trimmed to keep historySize (10).
      expect(await r.xlen(keys.history(shardOf('runs', 16), 'runs'))).toBeLessThanOrEqual(4);
      expect((await bus.history('runs', { epoch: big[0]!.epoch, offset: 189 })).recovered).toBe(false);
      // Large payloads: an entry closes once it holds about 16 KB (4 messages of 5 KB here).
      const before = await entries();
      await pub.publishBatch(Array.from({ length: 10 }, (_, i) => ({ channel: 'runs', attrs: {}, data: `"${String(i).repeat(5000)}"` })));
      await col.waitFor(210);
      expect((await entries()) - before).toBe(3);
      expect(col.got.slice(200).map((e) => e.offset)).toEqual(Array.from({ length: 10 }, (_, i) => 201 + i));
      // A duplicate in the middle takes no offset: the new messages around it still share one entry.
      const first = await pub.publish({ channel: 'runs', attrs: {}, data: '"k"', idempotencyKey: 'k1' });
      await col.waitFor(211);
      const mid = await entries();
      const mixed = await pub.publishBatch([
        { channel: 'runs', attrs: {}, data: '"x"' },
        { channel: 'runs', attrs: {}, data: '"k again"', idempotencyKey: 'k1' },
        { channel: 'runs', attrs: {}, data: '"y"' },
      ]);
      expect(mixed.map((p) => [p.offset, p.duplicate ?? false])).toEqual([
        [first.offset + 1, false],
        [first.offset, true],
        [first.offset + 2, false],
      ]);
      await col.waitFor(213);
      expect((await entries()) - mid).toBe(1);
      expect(col.got.slice(211).map((e) => [e.offset, e.data])).toEqual([
        [first.offset + 1, '"x"'],
        [first.offset + 2, '"y"'],
      ]);
      expect(await metricValue(bus, 'switchboard_bus_messages_read_total')).toBe(213);
    } finally {
      r.disconnect();
      await bus.close();
      await pub.close();
    }
  });

  it('with entryMessages 1, every message has a history entry and a feed entry of its own (the layout edges built before run entries read)', async () => {
    await flushStandalone();
    const pub = await RedisStreamsBus.connect(options(redis.url, false, { entryMessages: 1 }));
    const bus = await RedisStreamsBus.connect(options(redis.url, false));
    const r = new Redis(redis.url);
    try {
      const col = new Collector(bus);
      await bus.subscribe('single');
      const s = shardOf('single', 16);
      const res = await pub.publishBatch(Array.from({ length: 5 }, (_, i) => ({ channel: 'single', attrs: {}, data: String(i) })));
      await col.waitFor(5);
      const feed = (await r.xrange(keys.feed(s), '-', '+')) as [string, string[]][];
      expect(feed.map(([, f]) => [f[0], f[2], f[4], f[6], f[8], f.length])).toEqual(res.map(() => ['c', 'o', 'e', 'p', 'w', 10]));
      expect(feed.map(([, f]) => f[3])).toEqual(['1', '2', '3', '4', '5']);
      const hist = (await r.xrange(keys.history(s, 'single'), '-', '+')) as [string, string[]][];
      expect(hist.map(([id, f]) => [id, f[0], f[2]])).toEqual(res.map((p) => [`${p.offset}-0`, 'p', 'w']));
      expect(col.got.map((e) => e.data)).toEqual(['0', '1', '2', '3', '4']);
    } finally {
      r.disconnect();
      await bus.close();
      await pub.close();
    }
  });

  it('publishes that arrive while two flushes are in flight go out together once one answers', async () => {
    await flushStandalone();
    const pub = await RedisStreamsBus.connect(options(redis.url, false));
    const admin = new Redis(redis.url);
    try {
      // Redis holds every script for 300 ms: the first two flushes stay in flight.
      await admin.client('PAUSE', 300, 'WRITE');
      const pending: Promise<{ offset: number }>[] = [];
      for (let i = 0; i < 50; i++) {
        pending.push(pub.publish({ channel: 'gated', attrs: {}, data: String(i) }));
        // Each publish in a turn of the event loop of its own: ungated, each would be a flush of its own.
        await new Promise((r) => setImmediate(r));
      }
      const res = await Promise.all(pending);
      expect(res.map((p) => p.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      // One feed entry for each of the two flushes in flight, and one for the 48 that waited.
      expect(await admin.xlen(keys.feed(shardOf('gated', 16)))).toBe(3);
    } finally {
      admin.disconnect();
      await pub.close();
    }
  });

  it('reads only the shards it has interest in, and adjusts the read set without losing messages', async () => {
    await flushStandalone();
    const bus = await RedisStreamsBus.connect(options(redis.url, false, { blockMs: 5000 }));
    const pub = await RedisStreamsBus.connect(options(redis.url, false));
    const col = new Collector(bus);
    const a = 'chan-a';
    let b = 'chan-b';
    for (let i = 0; shardOf(b, 16) === shardOf(a, 16); i++) b = `chan-b${i}`;
    expect(bus.shardsRead()).toEqual([]);
    await bus.subscribe(a);
    expect(bus.shardsRead()).toEqual([shardOf(a, 16)]);
    await pub.publish({ channel: a, attrs: {}, data: '1' });
    await col.waitFor(1);
    // The loop is now blocked in XREAD for up to 5 s: adding b must take effect at once.
    const t0 = Date.now();
    await bus.subscribe(b);
    await pub.publish({ channel: b, attrs: {}, data: '2' });
    await col.waitFor(2, 2000);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(bus.shardsRead()).toEqual([shardOf(a, 16), shardOf(b, 16)].sort((x, y) => x - y));
    await bus.unsubscribe(a);
    expect(bus.shardsRead()).toEqual([shardOf(b, 16)]);
    await pub.publish({ channel: a, attrs: {}, data: '3' });
    await pub.publish({ channel: b, attrs: {}, data: '4' });
    await col.waitFor(3, 2000);
    await sleep(100);
    expect(col.got.map((e) => e.data)).toEqual(['1', '2', '4']);
    // Only the reading connection of this node blocks on the feed of b's shard, not a's.
    const admin = new Redis(redis.url);
    const clients = (await admin.client('LIST')) as string;
    admin.disconnect();
    const reader = clients.split('\n').find((l) => l.includes('name=sb:test:read'));
    expect(reader).toContain('cmd=xread');
    await bus.close();
    await pub.close();
  });

  it('resumes after redis-server restarts: nothing still in the feed is lost', async () => {
    const persistent = await startRedis({ persistent: true });
    const bus = await RedisStreamsBus.connect(options(persistent.url, false));
    const pub = await RedisStreamsBus.connect(options(persistent.url, false));
    const col = new Collector(bus);
    await bus.subscribe('restart');
    for (let i = 1; i <= 5; i++) await pub.publish({ channel: 'restart', attrs: {}, data: String(i) });
    await col.waitFor(5);
    await persistent.kill();
    await expect(pub.publish({ channel: 'restart', attrs: {}, data: 'x' })).rejects.toThrow();
    await persistent.restart();
    // Publish as soon as the publisher is back, possibly before the reader reconnects.
    let n = 6;
    const deadline = Date.now() + 10_000;
    while (n <= 10 && Date.now() < deadline) {
      try {
        await pub.publish({ channel: 'restart', attrs: {}, data: String(n) });
        n++;
      } catch {
        await sleep(50);
      }
    }
    await col.waitFor(10, 10_000);
    expect(col.got.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await bus.close();
    await pub.close();
    await persistent.stop();
  }, 30_000);

  it('reports a gap when Redis lost the feed while the reader was away', async () => {
    const volatile = await startRedis();
    const bus = await RedisStreamsBus.connect(options(volatile.url, false));
    const pub = await RedisStreamsBus.connect(options(volatile.url, false));
    const gaps: BusGap[] = [];
    bus.onGap((g) => gaps.push(g));
    const col = new Collector(bus);
    await bus.subscribe('lossy');
    await pub.publish({ channel: 'lossy', attrs: {}, data: '1' });
    await col.waitFor(1);
    await volatile.kill();
    await volatile.restart();
    const deadline = Date.now() + 10_000;
    while (gaps.length === 0 && Date.now() < deadline) await sleep(50);
    expect(gaps[0]?.channels).toEqual(['lossy']);
    await bus.close();
    await pub.close();
    await volatile.stop();
  }, 30_000);

  it('reports a gap when the feed was trimmed past the reader position, and none when it was not', async () => {
    await flushStandalone();
    const bus = await RedisStreamsBus.connect(options(redis.url, false));
    const pub = await RedisStreamsBus.connect(options(redis.url, false));
    const gaps: BusGap[] = [];
    bus.onGap((g) => gaps.push(g));
    const col = new Collector(bus);
    await bus.subscribe('trim');
    await pub.publish({ channel: 'trim', attrs: {}, data: '1' });
    await col.waitFor(1);
    const shard = shardOf('trim', 16);
    const r = new Redis(redis.url);
    const readUpTo = ((await r.xrange(keys.feed(shard), '-', '+')) as [string, string[]][])[0]![0];
    // Position = the entry just read: nothing trimmed past it yet.
    await bus.checkGaps([shard], new Map([[shard, readUpTo]]));
    expect(gaps).toHaveLength(0);
    for (let i = 0; i < 20; i++) await pub.publish({ channel: 'trim', attrs: {}, data: String(i) });
    await r.xtrim(keys.feed(shard), 'MAXLEN', 1);
    r.disconnect();
    await bus.checkGaps([shard], new Map([[shard, readUpTo]]));
    expect(gaps).toEqual([{ channels: ['trim'], reason: expect.stringContaining('trimmed') as unknown }]);
    await bus.close();
    await pub.close();
  });

  it('a reader whose connection is killed comes back and reads on, checking for gaps', async () => {
    await flushStandalone();
    const bus = await RedisStreamsBus.connect(options(redis.url, false));
    const pub = await RedisStreamsBus.connect(options(redis.url, false));
    const col = new Collector(bus);
    await bus.subscribe('killed');
    await pub.publish({ channel: 'killed', attrs: {}, data: '1' });
    await col.waitFor(1);
    const admin = new Redis(redis.url);
    const list = (await admin.client('LIST')) as string;
    const id = /id=(\d+) [^\n]*name=sb:test:read/.exec(list)?.[1];
    expect(id).toBeDefined();
    await admin.client('KILL', 'ID', id!);
    admin.disconnect();
    for (let i = 2; i <= 5; i++) await pub.publish({ channel: 'killed', attrs: {}, data: String(i) });
    await col.waitFor(5, 5000);
    expect(col.got.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5]);
    const deadline = Date.now() + 3000;
    while ((await metricValue(bus, 'switchboard_bus_reconnects_total')) === 0 && Date.now() < deadline) await sleep(20);
    expect(await metricValue(bus, 'switchboard_bus_reconnects_total')).toBeGreaterThanOrEqual(1);
    await bus.close();
    await pub.close();
  });

  it('fails fast when Redis is unreachable: connect and publish reject within seconds', async () => {
    const down = await startRedis();
    const url = down.url;
    await down.stop();
    const t0 = Date.now();
    await expect(RedisStreamsBus.connect(options(url, false))).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(7000);
  });
});
