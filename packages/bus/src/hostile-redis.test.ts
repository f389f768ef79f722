/**
 * Hostile data read back from Redis (a tampered or corrupted server): entries written straight into a
 * shard's feed and a channel's history with payloads that are not ours — garbage bytes, msgpack nested
 * 100 000 deep, lying length headers, attrs that are not flat scalars, a `__proto__` key, bad offsets and
 * epochs, missing fields. The reader skips and counts them, never throws, pollutes no prototype, keeps
 * delivering the valid messages around them, and a history holding one is reported as not recovered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { Registry } from 'prom-client';
import { createLogger, type Envelope } from '@switchboard/core';
import { startRedis, type RedisServer } from '@switchboard/testkit';
import { RedisStreamsBus } from './bus-redis-streams.js';
import { keys, shardOf } from './keys.js';

const SHARDS = 4;
const CHANNEL = 'valtronics:default:alerts';
const packr = new Packr({ useRecords: false });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
let raw: Redis;
let bus: RedisStreamsBus;
let publisher: RedisStreamsBus;
const registry = new Registry();
const delivered: Envelope[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
  const logger = createLogger({ name: 'test', level: 'silent' });
  const options = (reg: Registry, nodeId: string) => ({
    target: { url: redis.url, cluster: false },
    shards: SHARDS,
    feedMaxLen: 10_000,
    blockMs: 200,
    readCount: 100,
    historySize: 100,
    historyTtlSec: 60,
    logger,
    nodeId,
    registry: reg,
    idempotencyWindowSec: 60,
  });
  bus = await RedisStreamsBus.connect(options(registry, 'reader'));
  publisher = await RedisStreamsBus.connect(options(new Registry(), 'writer'));
  bus.onDeliver((batch) => {
    for (const env of batch) delivered.push(env);
  });
  await bus.subscribe(CHANNEL);
}, 30_000);

afterAll(async () => {
  await bus?.close();
  await publisher?.close();
  raw?.disconnect();
  await redis?.stop();
});

async function skippedTotal(): Promise<number> {
  const m = await registry.getSingleMetric('switchboard_bus_messages_skipped_total')?.get();
  return m?.values.reduce((s, v) => s + v.value, 0) ?? 0;
}

describe('hostile entries in Redis', () => {
  it('feed entries that are not ours are skipped and counted; the valid ones around them are delivered in order', async () => {
    const feed = keys.feed(shardOf(CHANNEL, SHARDS));
    const first = await publisher.publish({ channel: CHANNEL, attrs: {}, data: '{"n":1}' });
    const epoch = first.epoch;
    const entry = (payload: Buffer | string, offset: string | number = first.offset + 1, ep = epoch) => ['c', CHANNEL, 'o', String(offset), 'e', ep, 'p', payload];
    const hostile: (Buffer | string)[][] = [
      entry(Buffer.from('definitely not msgpack')),
      entry(Buffer.alloc(100_000, 0x91)),
      entry(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])),
      entry(packr.pack([Date.now(), { severity: { nested: true } }, '{}'])),
      entry(packr.pack([Date.now(), { tags: ['a', 'b'] }, '{}'])),
      entry(packr.pack(['yesterday', {}, '{}'])),
      entry(packr.pack([Date.now(), {}, { not: 'a string' }])),
      entry(packr.pack([Date.now(), {}, '{}']), 'NaN'),
      entry(packr.pack([Date.now(), {}, '{}']), -5),
      entry(packr.pack([Date.now(), {}, '{}']), first.offset + 1, ''),
      ['c', CHANNEL, 'o', '2'],
    ];
    const before = await skippedTotal();
    for (const fields of hostile) await raw.xadd(feed, '*', ...fields);
    // A payload with a __proto__ key (msgpackr renames it) and otherwise fine: delivered, pollutes nothing.
    await raw.xadd(feed, '*', ...entry(packr.pack([Date.now(), new Map<string, unknown>([['__proto__', { polluted: true }], ['severity', 'x']]), '{"proto":1}']), 9_999));
    const second = await publisher.publish({ channel: CHANNEL, attrs: {}, data: '{"n":2}' });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !delivered.some((e) => e.offset === second.offset && e.data === '{"n":2}')) await sleep(20);
    const data = delivered.map((e) => e.data);
    expect(data).toContain('{"n":1}');
    expect(data).toContain('{"n":2}');
    expect(data.indexOf('{"n":1}')).toBeLessThan(data.indexOf('{"n":2}'));
    expect(delivered.every((e) => Number.isSafeInteger(e.offset) && e.offset >= 0 && e.epoch.length > 0 && typeof e.data === 'string')).toBe(true);
    for (const e of delivered) for (const v of Object.values(e.attrs)) expect(['string', 'number', 'boolean']).toContain(typeof v);
    expect(await skippedTotal()).toBeGreaterThanOrEqual(before + hostile.length);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('run entries (several messages of a channel in one entry) that are not laid out as ours are skipped; an unreadable message inside a run is skipped alone', async () => {
    const feed = keys.feed(shardOf(CHANNEL, SHARDS));
    const first = await publisher.publish({ channel: CHANNEL, attrs: {}, data: '{"r":0}' });
    const ok = (n: number) => packr.pack([Date.now(), {}, `{"r":${n}}`]);
    const run = (wid: string, ...rest: (Buffer | string)[]) => ['c', CHANNEL, 'o', String(first.offset + 1), 'e', first.epoch, 'w', wid, ...rest];
    const hostile: (Buffer | string)[][] = [
      run('1-1', 'p', ok(1), 'q', ok(2)),
      run('no-write-id', 'p', ok(1), 'p', ok(2)),
      run('-1', 'p', ok(1), 'p', ok(2)),
      run('1-1', 'p', ok(1), 'p', ok(2)).map((v, i) => (i === 3 ? 'NaN' : v)),
    ];
    const before = await skippedTotal();
    const count = delivered.length;
    for (const fields of hostile) await raw.xadd(feed, '*', ...fields);
    // A well-formed run whose middle payload is garbage: its neighbours arrive, the garbage is counted.
    await raw.xadd(feed, '*', ...run('7-1', 'p', ok(1), 'p', Buffer.alloc(1000, 0x91), 'p', ok(3)));
    const last = await publisher.publish({ channel: CHANNEL, attrs: {}, data: '{"r":9}' });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !delivered.some((e) => e.offset === last.offset && e.data === '{"r":9}')) await sleep(20);
    const got = delivered.slice(count).map((e) => [e.offset, e.data, e.writeId]);
    expect(got).toContainEqual([first.offset + 1, '{"r":1}', '7-1']);
    expect(got).toContainEqual([first.offset + 3, '{"r":3}', '7-3']);
    expect(got.filter((g) => g[0] === first.offset + 2)).toEqual([]);
    expect(got.at(-1)?.[1]).toBe('{"r":9}');
    // 2 messages in each of the 4 malformed runs and the garbage message.
    expect(await skippedTotal()).toBeGreaterThanOrEqual(before + 9);
  });

  it('a history holding an entry that is not ours is reported as not recovered, never replayed with a hole', async () => {
    const channel = 'valtronics:default:telemetry';
    const p1 = await publisher.publish({ channel, attrs: {}, data: '{"n":1}' });
    const s = shardOf(channel, SHARDS);
    // The next entry of the history is not ours, and the channel's position covers it.
    const next = p1.offset + 1;
    await raw.xadd(keys.history(s, channel), `${next}-0`, 'p', Buffer.alloc(50_000, 0x91));
    await raw.hset(keys.meta(s, channel), 'o', next, 'a', next);
    const res = await bus.history(channel, { epoch: p1.epoch, offset: 0 });
    expect(res.recovered).toBe(false);
    expect(res.messages).toEqual([]);
  });

  it('a history run entry (several messages in one entry) that is not laid out as ours, or holds a payload that is not, is not recovered', async () => {
    const ok = (n: number) => packr.pack([Date.now(), {}, `{"h":${n}}`]);
    const cases: (Buffer | string)[][] = [
      ['w', '5-1', 'p', ok(1), 'p', Buffer.alloc(2000, 0x91)],
      ['w', '5-1', 'p', ok(1), 'q', ok(2)],
      ['w', 'nope', 'p', ok(1), 'p', ok(2)],
      ['x', '5-1', 'p', ok(1), 'p', ok(2)],
    ];
    for (const [k, fields] of cases.entries()) {
      const channel = `valtronics:default:hist${k}`;
      const p1 = await publisher.publish({ channel, attrs: {}, data: '{"h":0}' });
      const s = shardOf(channel, SHARDS);
      await raw.xadd(keys.history(s, channel), `${p1.offset + 1}-0`, ...fields);
      await raw.hset(keys.meta(s, channel), 'o', p1.offset + 2, 'a', p1.offset + 2);
      const res = await bus.history(channel, { epoch: p1.epoch, offset: p1.offset });
      expect([k, res.recovered, res.messages]).toEqual([k, false, []]);
    }
    // The same entry laid out as ours is read back message by message, from the middle of the run too.
    const channel = 'valtronics:default:histok';
    const p1 = await publisher.publish({ channel, attrs: {}, data: '{"h":0}' });
    const s = shardOf(channel, SHARDS);
    await raw.xadd(keys.history(s, channel), `${p1.offset + 1}-0`, 'w', '5-1', 'p', ok(1), 'p', ok(2), 'p', ok(3));
    await raw.hset(keys.meta(s, channel), 'o', p1.offset + 3, 'a', p1.offset + 3);
    const whole = await bus.history(channel, { epoch: p1.epoch, offset: p1.offset });
    expect(whole.messages.map((m) => [m.offset, m.data, m.writeId])).toEqual([
      [p1.offset + 1, '{"h":1}', '5-1'],
      [p1.offset + 2, '{"h":2}', '5-2'],
      [p1.offset + 3, '{"h":3}', '5-3'],
    ]);
    const tail = await bus.history(channel, { epoch: p1.epoch, offset: p1.offset + 1 });
    expect(tail.messages.map((m) => m.offset)).toEqual([p1.offset + 2, p1.offset + 3]);
  });
});
