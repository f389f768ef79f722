/**
 * The Bus contract: one suite every Bus implementation passes (memory in unit tests, Redis Streams
 * against a real redis-server). Each test gets a fresh world of nodes sharing one backend.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { Envelope, PublishRequest } from '@switchboard/core';
import type { Bus, PublishResult } from './bus.js';

/** What an implementation provides to the contract. */
export interface BusWorld {
  /** A new node (an edge's bus) on the shared backend. */
  node(): Promise<Bus>;
  /** Makes the backend lose all data (Redis FLUSHALL, broker flush). */
  loseData(): Promise<void>;
  /** Releases everything the world created. */
  close(): Promise<void>;
  /** The history size the world was created with. */
  readonly historySize: number;
  /** The history TTL (seconds) the world was created with. */
  readonly historyTtlSec: number;
  /** How long idempotency keys are remembered in this world (1 s, so the contract can see one forgotten). */
  readonly idempotencyWindowSec: number;
}

/** Records deliveries and waits for them. */
export class Collector {
  readonly got: Envelope[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(bus: Bus) {
    bus.onDeliver((batch) => {
      for (const env of batch) this.got.push(env);
      this.waiters = this.waiters.filter((w) => {
        if (this.got.length >= w.n) w.resolve();
        return this.got.length < w.n;
      });
    });
  }

  /** Resolves once `n` envelopes arrived in total; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 5000): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${n} deliveries, got ${this.got.length}`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  of(channel: string): Envelope[] {
    return this.got.filter((e) => e.channel === channel);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function msg(channel: string, i: number, attrs: Record<string, string | number> = {}): PublishRequest {
  return { channel, attrs: { i, ...attrs }, data: JSON.stringify({ i, text: `message ${i}` }) };
}

/** Runs the Bus contract against worlds made by `makeWorld`. */
export function runBusContract(name: string, makeWorld: () => Promise<BusWorld>): void {
  describe(`Bus contract: ${name}`, () => {
    let world: BusWorld;
    beforeEach(async () => {
      world = await makeWorld();
    });
    afterEach(async () => {
      await world.close();
    });

    it('assigns offsets 1, 2, 3… per channel under one epoch', async () => {
      const bus = await world.node();
      const a1 = await bus.publish(msg('c.a', 1));
      const a2 = await bus.publish(msg('c.a', 2));
      const b1 = await bus.publish(msg('c.b', 1));
      expect(a1.offset).toBe(1);
      expect(a2.offset).toBe(2);
      expect(a2.epoch).toBe(a1.epoch);
      expect(b1.offset).toBe(1);
      expect(await bus.position('c.a')).toEqual(a2);
    });

    it('delivers only channels with interest, with attrs, data, offset, epoch and timestamp intact', async () => {
      const bus = await world.node();
      const col = new Collector(bus);
      await bus.subscribe('c.in');
      const before = Date.now();
      await bus.publish(msg('c.out', 1));
      const pos = await bus.publish({ channel: 'c.in', attrs: { device_id: 7, ok: true, s: 'x' }, data: '{"v":"ü€"}' });
      await col.waitFor(1);
      await sleep(50);
      expect(col.got).toHaveLength(1);
      const env = col.got[0]!;
      expect(env).toMatchObject({ channel: 'c.in', offset: pos.offset, epoch: pos.epoch, attrs: { device_id: 7, ok: true, s: 'x' } });
      expect(env.data).toBe('{"v":"ü€"}');
      expect(env.ts).toBeGreaterThanOrEqual(before - 1000);
      expect(env.ts).toBeLessThanOrEqual(Date.now() + 1000);
    });

    it('stops delivering after unsubscribe', async () => {
      const bus = await world.node();
      const col = new Collector(bus);
      await bus.subscribe('c.u');
      await bus.publish(msg('c.u', 1));
      await col.waitFor(1);
      await bus.unsubscribe('c.u');
      await bus.publish(msg('c.u', 2));
      await sleep(150);
      expect(col.got.map((e) => e.offset)).toEqual([1]);
    });

    it('keeps publish order per channel, for single and batch publishes interleaved', async () => {
      const bus = await world.node();
      const col = new Collector(bus);
      await bus.subscribe('c.o1');
      await bus.subscribe('c.o2');
      const pending: Promise<unknown>[] = [];
      for (let i = 1; i <= 200; i++) {
        if (i % 10 === 0) pending.push(bus.publishBatch([msg('c.o1', i), msg('c.o2', i), msg('c.o1', i + 0.5)]));
        else pending.push(bus.publish(msg(i % 2 ? 'c.o1' : 'c.o2', i)));
      }
      await Promise.all(pending);
      const total = 200 + 2 * 20;
      await col.waitFor(total);
      for (const ch of ['c.o1', 'c.o2']) {
        const offs = col.of(ch).map((e) => e.offset);
        expect(offs).toEqual(offs.map((_, k) => k + 1));
        const is = col.of(ch).map((e) => e.attrs.i as number);
        expect(is).toEqual([...is].sort((x, y) => x - y));
      }
    });

    it('a burst over many channels in one turn: per channel consecutive offsets in request order, keyed retries answered as duplicates', async () => {
      const bus = await world.node();
      const col = new Collector(bus);
      const channels = Array.from({ length: 600 }, (_, k) => `c.burst.${k}`);
      await Promise.all(channels.slice(0, 50).map((c) => bus.subscribe(c)));
      // Each channel: message 1 (keyed), message 2, a retry of message 1, message 3 — all in one turn.
      const pending: Promise<PublishResult>[] = [];
      for (let round = 1; round <= 4; round++) {
        for (const c of channels) {
          if (round === 1 || round === 3) pending.push(bus.publish({ ...msg(c, 1), idempotencyKey: `key-${c}` }));
          else pending.push(bus.publish(msg(c, round === 2 ? 2 : 3)));
        }
      }
      const res = await Promise.all(pending);
      for (let k = 0; k < channels.length; k++) {
        const [r1, r2, r3, r4] = [0, 1, 2, 3].map((round) => res[round * channels.length + k]!) as [PublishResult, PublishResult, PublishResult, PublishResult];
        expect([r1.offset, r2.offset, r3.offset, r4.offset, r3.duplicate, r1.duplicate]).toEqual([1, 2, 1, 3, true, undefined]);
        expect(new Set([r1.epoch, r2.epoch, r3.epoch, r4.epoch]).size).toBe(1);
      }
      await col.waitFor(150);
      await sleep(100);
      for (const c of channels.slice(0, 50)) expect(col.of(c).map((e) => [e.offset, e.attrs.i])).toEqual([[1, 1], [2, 2], [3, 3]]);
    });

    it('publishBatch returns positions in request order', async () => {
      const bus = await world.node();
      const res = await bus.publishBatch([msg('c.pb', 1), msg('c.pb2', 1), msg('c.pb', 2)]);
      expect(res.map((p) => p.offset)).toEqual([1, 1, 2]);
      expect(res[0]!.epoch).toBe(res[2]!.epoch);
    });

    it('delivers to every node with interest, exactly once, and to no node without', async () => {
      const a = await world.node();
      const b = await world.node();
      const c = await world.node();
      const ca = new Collector(a);
      const cb = new Collector(b);
      const cc = new Collector(c);
      await a.subscribe('c.shared');
      await b.subscribe('c.shared');
      await c.subscribe('c.other');
      for (let i = 1; i <= 50; i++) await (i % 2 ? a : c).publish(msg('c.shared', i));
      await ca.waitFor(50);
      await cb.waitFor(50);
      await sleep(100);
      expect(ca.got.map((e) => e.offset)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
      expect(cb.got.map((e) => e.offset)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
      expect(cc.got).toHaveLength(0);
    });

    it('recovers exactly the messages after a position, in order', async () => {
      const bus = await world.node();
      for (let i = 1; i <= 20; i++) await bus.publish(msg('c.h', i));
      const pos = await bus.position('c.h');
      const res = await bus.history('c.h', { epoch: pos.epoch, offset: 12 });
      expect(res.recovered).toBe(true);
      expect(res.messages.map((e) => e.offset)).toEqual([13, 14, 15, 16, 17, 18, 19, 20]);
      expect(res.messages.map((e) => e.attrs.i)).toEqual([13, 14, 15, 16, 17, 18, 19, 20]);
      expect(res.position).toEqual(pos);
    });

    it('a publish whose idempotency key is remembered is not published again: the first position comes back', async () => {
      const bus = await world.node();
      const col = new Collector(bus);
      await bus.subscribe('c.idem');
      await bus.subscribe('c.idem2');
      const first = await bus.publish({ ...msg('c.idem', 1), idempotencyKey: 'k-1' });
      expect(first.duplicate).toBeUndefined();
      const retry = await bus.publish({ ...msg('c.idem', 1), idempotencyKey: 'k-1' });
      expect(retry).toEqual({ ...first, duplicate: true });
      // In one batch too, and together with new messages; keys are per channel.
      const batch = await bus.publishBatch([
        { ...msg('c.idem', 2), idempotencyKey: 'k-2' },
        { ...msg('c.idem', 2), idempotencyKey: 'k-2' },
        { ...msg('c.idem', 1), idempotencyKey: 'k-1' },
        msg('c.idem', 3),
        { ...msg('c.idem2', 1), idempotencyKey: 'k-1' },
      ]);
      expect(batch.map((r) => [r.offset, r.duplicate === true])).toEqual([
        [first.offset + 1, false],
        [first.offset + 1, true],
        [first.offset, true],
        [first.offset + 2, false],
        [1, false],
      ]);
      await col.waitFor(4);
      await sleep(100);
      expect(col.got.map((e) => `${e.channel}/${e.offset}`)).toEqual(['c.idem/1', 'c.idem/2', 'c.idem/3', 'c.idem2/1']);
      // Forgotten after the window: the same key publishes again.
      await sleep(world.idempotencyWindowSec * 1000 + 300);
      const later = await bus.publish({ ...msg('c.idem', 4), idempotencyKey: 'k-1' });
      expect(later.duplicate).toBeUndefined();
      expect(later).not.toEqual({ epoch: first.epoch, offset: first.offset });
    });

    it('abandons an epoch once: a new epoch from offset 1, no recovery into the old one, a second abandon changes nothing', async () => {
      const bus = await world.node();
      const col = new Collector(bus);
      await bus.subscribe('c.abandon');
      for (let i = 1; i <= 3; i++) await bus.publish(msg('c.abandon', i));
      const old = await bus.position('c.abandon');
      const after = await bus.abandonEpoch('c.abandon', old.epoch);
      expect(after.epoch).not.toBe(old.epoch);
      expect(after.offset).toBe(0);
      // Another edge noticing the same reuse a moment later leaves the new epoch alone.
      expect(await bus.abandonEpoch('c.abandon', old.epoch)).toEqual(after);
      expect(await bus.history('c.abandon', { epoch: old.epoch, offset: 1 })).toMatchObject({ recovered: false, messages: [] });
      const p = await bus.publish(msg('c.abandon', 4));
      expect(p).toEqual({ epoch: after.epoch, offset: 1 });
      await col.waitFor(4);
      expect(col.got.map((e) => [e.epoch === old.epoch ? 'old' : 'new', e.offset])).toEqual([
        ['old', 1],
        ['old', 2],
        ['old', 3],
        ['new', 1],
      ]);
    });

    it('reports recovered with nothing to replay at the top, and not recovered for another epoch', async () => {
      const bus = await world.node();
      await bus.publish(msg('c.e', 1));
      const pos = await bus.position('c.e');
      expect(await bus.history('c.e', pos)).toMatchObject({ recovered: true, messages: [] });
      const other = await bus.history('c.e', { epoch: 'not-the-epoch', offset: 0 });
      expect(other.recovered).toBe(false);
      expect(other.messages).toHaveLength(0);
      expect(other.position).toEqual(pos);
    });

    it('reports not recovered when the history no longer reaches back', async () => {
      const bus = await world.node();
      const n = world.historySize + 5;
      for (let i = 1; i <= n; i++) await bus.publish(msg('c.trim', i));
      const pos = await bus.position('c.trim');
      expect((await bus.history('c.trim', { epoch: pos.epoch, offset: 2 })).recovered).toBe(false);
      const ok = await bus.history('c.trim', { epoch: pos.epoch, offset: n - world.historySize });
      expect(ok.recovered).toBe(true);
      expect(ok.messages).toHaveLength(world.historySize);
    });

    it('reaches back exactly historySize messages, whatever a backend keeps beyond them', async () => {
      const bus = await world.node();
      const n = world.historySize + 2;
      for (let i = 1; i <= n; i++) await bus.publish(msg('c.reach', i));
      const pos = await bus.position('c.reach');
      expect((await bus.history('c.reach', { epoch: pos.epoch, offset: 1 })).recovered).toBe(false);
      const ok = await bus.history('c.reach', { epoch: pos.epoch, offset: 2 });
      expect(ok.recovered).toBe(true);
      expect(ok.messages.map((m) => m.offset)).toEqual(Array.from({ length: world.historySize }, (_, i) => i + 3));
    });

    it('gives a new epoch when the backend lost the channel, so old positions are not recovered', async () => {
      const bus = await world.node();
      await bus.publish(msg('c.lost', 1));
      const before = await bus.position('c.lost');
      await world.loseData();
      const after = await bus.position('c.lost');
      expect(after.epoch).not.toBe(before.epoch);
      expect(after.offset).toBe(0);
      expect((await bus.history('c.lost', before)).recovered).toBe(false);
    });

    it('position creates a stable epoch for a channel never published to', async () => {
      const bus = await world.node();
      const p1 = await bus.position('c.fresh');
      expect(p1.offset).toBe(0);
      const pub = await bus.publish(msg('c.fresh', 1));
      expect(pub).toEqual({ epoch: p1.epoch, offset: 1 });
      const res = await bus.history('c.fresh', p1);
      expect(res.recovered).toBe(true);
      expect(res.messages.map((e) => e.offset)).toEqual([1]);
    });

    it('loses nothing between subscribe and position: every later message is delivered', async () => {
      const pub = await world.node();
      const sub = await world.node();
      const col = new Collector(sub);
      let publishing = true;
      let sent = 0;
      const loop = (async () => {
        while (publishing) {
          await pub.publish(msg('c.race', ++sent));
          // An in-process bus resolves at once: yield so timers (and the subscriber) get to run.
          if (sent % 5 === 0) await new Promise((r) => setImmediate(r));
        }
      })();
      await sleep(20);
      await sub.subscribe('c.race');
      const pos = await sub.position('c.race');
      await sleep(50);
      publishing = false;
      await loop;
      const top = await pub.position('c.race');
      const expected = top.offset - pos.offset;
      // Messages at or before `pos` may arrive too (the subscription was reading before the position was
      // taken): wait for the ones after it, not for a total.
      const later = () => col.got.filter((e) => e.offset > pos.offset).map((e) => e.offset);
      for (const deadline = Date.now() + 5000; later().length < expected && Date.now() < deadline; ) await sleep(10);
      const after = later();
      expect(after).toEqual(Array.from({ length: expected }, (_, k) => pos.offset + k + 1));
    });

    it('expires a channel after its TTL: new epoch, old position not recovered', async () => {
      const bus = await world.node();
      await bus.publish(msg('c.ttl', 1));
      const before = await bus.position('c.ttl');
      await sleep(world.historyTtlSec * 1000 + 1100);
      const after = await bus.position('c.ttl');
      expect(after.epoch).not.toBe(before.epoch);
      expect((await bus.history('c.ttl', before)).recovered).toBe(false);
    });

    it('keeps a channel at least its TTL after its last publish, also when that publish came right after another', async () => {
      const bus = await world.node();
      const ttlMs = world.historyTtlSec * 1000;
      // The second publish comes within a tenth of the TTL: the Redis bus does not renew the TTLs for it,
      // and must have given them enough to outlive it by the TTL.
      await bus.publish(msg('c.ttl2', 1));
      await sleep(Math.min(50, ttlMs / 20));
      await bus.publish(msg('c.ttl2', 2));
      const before = await bus.position('c.ttl2');
      await sleep(ttlMs - 150);
      const alive = await bus.position('c.ttl2');
      expect(alive).toEqual(before);
      const h = await bus.history('c.ttl2', { epoch: before.epoch, offset: 0 });
      expect(h.recovered).toBe(true);
      expect(h.messages.map((m) => m.attrs.i)).toEqual([1, 2]);
      // Published again later than a tenth of the TTL: renewed, alive past the first TTL.
      await bus.publish(msg('c.ttl2', 3));
      await sleep(ttlMs - 150);
      expect((await bus.position('c.ttl2')).epoch).toBe(before.epoch);
    });

    it('refuses channel names that could not name a key, publishing nothing of a batch that holds one', async () => {
      const bus = await world.node();
      for (const bad of ['a{b}', '{0}', 'a b', '', 'x'.repeat(256)]) {
        const refused = { code: 'invalid_message' };
        await expect(bus.publish(msg(bad, 1))).rejects.toMatchObject(refused);
        await expect(bus.publishBatch([msg('c.good', 1), msg(bad, 2)])).rejects.toMatchObject(refused);
        await expect(bus.subscribe(bad)).rejects.toMatchObject(refused);
        await expect(bus.position(bad)).rejects.toMatchObject(refused);
        await expect(bus.history(bad, { epoch: 'e', offset: 0 })).rejects.toMatchObject(refused);
      }
      expect((await bus.position('c.good')).offset).toBe(0);
      expect((await bus.publish(msg('c.good', 3))).offset).toBe(1);
    });

    it('stops delivering after close', async () => {
      const a = await world.node();
      const b = await world.node();
      const col = new Collector(b);
      await b.subscribe('c.close');
      await b.close();
      await a.publish(msg('c.close', 1));
      await sleep(150);
      expect(col.got).toHaveLength(0);
    });
  });
}
