/**
 * Atomicity of a write and its change event across a crash: a burst of concurrent writes while
 * redis-server is killed with SIGKILL and restarted from its AOF (`appendfsync always`). Afterwards:
 * - every acknowledged write has exactly one event in the channel history, with the same data;
 * - every event has its write: replaying the events in offset order (create → the object, merge → v
 *   moves by exactly the parts the event names, remove → gone) gives exactly the objects stored now;
 * - the channel keeps one epoch and contiguous offsets, and a bus subscriber that lived through the
 *   crash received every event in order.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createLogger, type Envelope } from '@switchboard/core';
import { RedisStreamsBus } from '@switchboard/bus';
import { startRedis, type RedisServer } from '@switchboard/testkit';
import { RedisObjectStore, type RedisObjectStoreOptions } from './store-redis.js';
import type { StoredObject, WriteResult, RemoveResult } from './store.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const CHANNEL = 'ff:7:asset';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis({ persistent: true });
}, 30_000);
afterAll(() => redis?.stop());

const common = {
  shards: 16,
  feedMaxLen: 100_000,
  historySize: 100_000,
  historyTtlSec: 3600,
  logger,
  nodeId: 'atomicity',
};

function storeOptions(): RedisObjectStoreOptions {
  return {
    ...common,
    target: { url: redis.url, cluster: false },
    registry: new Registry(),
    types: { asset: { parts: ['general', 'advanced'], fields: { general: ['name'], advanced: ['odometer'] } } },
    channel: (tenant, type) => `ff:${tenant}:${type}`,
  };
}

interface Acked {
  readonly op: 'create' | 'merge' | 'remove';
  readonly offset: number;
  readonly epoch: string;
  readonly data: string;
}

it('every acknowledged write has exactly one event, and every event its write, across a SIGKILL', async () => {
  const store = await RedisObjectStore.connect(storeOptions());
  const bus = await RedisStreamsBus.connect({ ...common, target: { url: redis.url, cluster: false }, blockMs: 500, readCount: 1000, registry: new Registry() });
  const delivered: Envelope[] = [];
  bus.onDeliver((batch) => delivered.push(...batch));
  await bus.subscribe(CHANNEL);

  const acked: Acked[] = [];
  let failed = 0;
  let ids = 0;
  const record = (op: Acked['op'], res: WriteResult | RemoveResult) => {
    if (res.ok) acked.push({ op, offset: res.position.offset, epoch: res.position.epoch, data: res.data });
  };
  for (let i = 0; i < 10; i++) record('create', await store.create('7', 'asset', { name: `seed${i}` }));
  ids = 10;

  let running = true;
  let n = 0;
  const worker = async (w: number) => {
    while (running) {
      const k = n++;
      const id = 1 + ((k * 7 + w) % Math.max(ids, 1));
      try {
        if (k % 10 === 0) {
          const res = await store.create('7', 'asset', { name: `c${k}` });
          if (res.ok) ids = Math.max(ids, res.object.id);
          record('create', res);
        } else if (k % 37 === 0) {
          record('remove', await store.remove('7', 'asset', id));
        } else {
          record('merge', await store.merge('7', 'asset', id, k % 3 === 0 ? { odometer: k } : { name: `n${k}` }));
        }
      } catch {
        // Redis is down (or the reply was lost): the outcome of this write is unknown, which the
        // checks below allow for — it must be all (write and event) or nothing.
        failed++;
        await sleep(20);
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));

  // Kill mid-burst, once writes are flowing, then restart from the AOF while the workers keep going.
  while (acked.length < 300) await sleep(5);
  await redis.kill();
  const ackedAtKill = acked.length;
  await sleep(300);
  await redis.restart();
  const deadline = Date.now() + 15_000;
  while (acked.length < ackedAtKill + 300 && Date.now() < deadline) await sleep(20);
  running = false;
  await Promise.all(workers);
  expect(failed).toBeGreaterThan(0);
  expect(acked.length).toBeGreaterThanOrEqual(ackedAtKill + 300);

  // The channel's history: one epoch, offsets 1..top without a hole. The bus's own connection comes back
  // on its own schedule (it fails fast while away, by design): ask once it is ready again.
  while (!bus.ready() && Date.now() < deadline + 10_000) await sleep(20);
  const top = await bus.position(CHANNEL);
  const hist = await bus.history(CHANNEL, { epoch: top.epoch, offset: 0 }, 100_000);
  expect(hist.recovered).toBe(true);
  const events = hist.messages;
  expect(events.map((e) => e.offset)).toEqual(Array.from({ length: top.offset }, (_, k) => k + 1));
  expect(new Set(acked.map((a) => a.epoch))).toEqual(new Set([top.epoch]));

  // Every acknowledged write: its event, at its offset, with its data, and no other event like it.
  const byOffset = new Map(events.map((e) => [e.offset, e]));
  const key = (op: unknown, data: string) => {
    const o = JSON.parse(data) as StoredObject;
    return `${String(op)}:${o.id}:${o.v.join(',')}`;
  };
  const eventKeys = new Map<string, number>();
  for (const e of events) eventKeys.set(key(e.attrs.op, e.data), (eventKeys.get(key(e.attrs.op, e.data)) ?? 0) + 1);
  for (const a of acked) {
    const e = byOffset.get(a.offset);
    expect(e?.data).toBe(a.data);
    expect(e?.attrs.op).toBe(a.op);
    expect(eventKeys.get(key(a.op, a.data))).toBe(1);
  }

  // Every event has its write: replaying the events gives exactly the stored objects, and each merge
  // moves v by exactly the parts it names.
  const replay = new Map<number, StoredObject>();
  for (const e of events) {
    const o = JSON.parse(e.data) as StoredObject;
    const prev = replay.get(o.id);
    if (e.attrs.op === 'create') {
      expect(prev).toBeUndefined();
      expect(o.v).toEqual([1, 1]);
      replay.set(o.id, o);
    } else if (e.attrs.op === 'merge') {
      expect(prev).toBeDefined();
      const bump = [e.attrs['part.general'] === true ? 1 : 0, e.attrs['part.advanced'] === true ? 1 : 0];
      expect(o.v).toEqual([prev!.v[0]! + bump[0]!, prev!.v[1]! + bump[1]!]);
      replay.set(o.id, o);
    } else {
      expect(e.attrs.op).toBe('remove');
      expect(o).toEqual(prev);
      replay.delete(o.id);
    }
  }
  const stored = new Map<number, StoredObject>();
  let after: number | null = 0;
  while (after !== null) {
    const page = await store.query('7', 'asset', { afterId: after });
    if (!page.ok) throw new Error(page.message);
    for (const o of page.objects) stored.set(o.id, o);
    after = page.nextAfterId;
  }
  expect(stored.size).toBe(replay.size);
  for (const [id, o] of replay) expect(stored.get(id)).toEqual(o);

  // The subscriber lived through the crash: it resumed from the AOF-restored feed and got everything.
  const waitUntil = Date.now() + 10_000;
  while (delivered.length < top.offset && Date.now() < waitUntil) await sleep(20);
  expect(delivered.map((e) => e.offset)).toEqual(events.map((e) => e.offset));
  expect(delivered.map((e) => e.data)).toEqual(events.map((e) => e.data));

  await bus.close();
  await store.close();
}, 60_000);
