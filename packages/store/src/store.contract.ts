/**
 * The ObjectStore contract: one suite every implementation passes (memory, Redis standalone, Redis
 * Cluster). Each test gets a fresh backend; change events are read through a Bus node of the same
 * backend, as an edge would.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Envelope } from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import { liveQueryMembership, readChangeEvent } from './events.js';
import type { ObjectStore, ObjectStoreOptions, ObjectTypeSpec, StoreLimits, StoredObject, WriteResult } from './store.js';

/** What an implementation provides to the contract. */
export interface StoreWorld {
  /** A store on the world's backend (empty at the start of each test). */
  store(options: ObjectStoreOptions): Promise<ObjectStore>;
  /** A bus node on the same backend. */
  bus(): Promise<Bus>;
  /** Releases everything the world created. */
  close(): Promise<void>;
}

/** Fleet Freedom-like: strict fields, two parts. */
const ASSET: ObjectTypeSpec = {
  parts: ['general', 'advanced'],
  fields: { general: ['name', 'status', 'labels', 'meta'], advanced: ['odometer', 'notes'] },
  indexed: ['status'],
};
/** Five parts, as a Fleet Freedom company. */
const COMPANY: ObjectTypeSpec = {
  parts: ['general', 'billing', 'directory', 'labels', 'policies'],
  fields: { general: ['name'], billing: ['plan'], directory: ['users'], labels: ['tags'], policies: ['session'] },
};
/** Good Uncle-like: one part holding every field, two indexed fields. */
const ITEM: ObjectTypeSpec = { parts: ['data'], defaultPart: 'data', indexed: ['kind', 'open'] };

const TYPES = { asset: ASSET, company: COMPANY, item: ITEM };
const channel = (tenant: string, type: string) => `test:${tenant}:${type}`;

function options(limits?: Partial<StoreLimits>): ObjectStoreOptions {
  return { types: TYPES, channel, ...(limits ? { limits } : {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects deliveries of one bus node. */
class Events {
  readonly got: Envelope[] = [];
  constructor(bus: Bus) {
    bus.onDeliver((batch) => this.got.push(...batch));
  }
  async waitFor(n: number, timeoutMs = 5000): Promise<Envelope[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.got.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} events, got ${this.got.length}`);
      await sleep(10);
    }
    return this.got;
  }
}

function ok<T extends { ok: boolean }>(res: T): Extract<T, { ok: true }> {
  if (!res.ok) throw new Error(`expected ok, got ${JSON.stringify(res)}`);
  return res as Extract<T, { ok: true }>;
}

/** Runs the ObjectStore contract against worlds made by `makeWorld`. */
export function runStoreContract(name: string, makeWorld: () => Promise<StoreWorld>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let world: StoreWorld;
    let store: ObjectStore;
    beforeEach(async () => {
      world = await makeWorld();
      store = await world.store(options());
    });
    afterEach(async () => {
      await store.close();
      await world.close();
    });

    /** A bus node with interest in a channel, and its collector. */
    async function listen(ch: string): Promise<{ bus: Bus; events: Events }> {
      const bus = await world.bus();
      const events = new Events(bus);
      await bus.subscribe(ch);
      return { bus, events };
    }

    it('creates objects with ids 1, 2… per tenant and type, v all 1, and gets them back', async () => {
      const a = ok(await store.create('t1', 'asset', { name: 'truck', status: 'active' }));
      expect(a.object).toEqual({ id: 1, v: [1, 1], name: 'truck', status: 'active' });
      expect(a.changedParts).toEqual(['general', 'advanced']);
      expect(JSON.parse(a.data)).toEqual(a.object);
      const b = ok(await store.create('t1', 'asset', {}));
      expect(b.object).toEqual({ id: 2, v: [1, 1] });
      expect(ok(await store.create('t1', 'company', { name: 'acme' })).object).toEqual({ id: 1, v: [1, 1, 1, 1, 1], name: 'acme' });
      expect(ok(await store.get('t1', 'asset', 1)).object).toEqual(a.object);
      expect(ok(await store.get('t1', 'asset', 2)).object).toEqual(b.object);
      expect(store.channel('t1', 'asset')).toBe('test:t1:asset');
    });

    it('keeps every JSON value exactly: big and fractional numbers, empty arrays and objects, unicode, nesting', async () => {
      const fields = {
        name: 'Zoë 🚚 "quoted" \\ back\nline \u2028 \u0000',
        labels: [],
        meta: { empty: {}, list: [[], {}, [1, [2, [3]]]], big: Number.MAX_SAFE_INTEGER, tiny: 5e-324, huge: 1e300, frac: 0.1, neg: -0, t: true, n: null },
        notes: 'x'.repeat(300),
        odometer: 123456.789,
      };
      const created = ok(await store.create('t1', 'asset', fields));
      const expected = { id: 1, v: [1, 1], ...JSON.parse(JSON.stringify(fields)) };
      expect(created.object).toEqual(expected);
      expect(ok(await store.get('t1', 'asset', 1)).object).toEqual(expected);
      const merged = ok(await store.merge('t1', 'asset', 1, { labels: [{}], status: null }));
      expect(merged.object).toEqual({ ...expected, v: [2, 1], labels: [{}], status: null });
      expect(ok(await store.get('t1', 'asset', 1)).object).toEqual(merged.object);
    });

    it('publishes each write as a bus message: op, id, changed parts, indexed values, the object as data', async () => {
      const { bus, events } = await listen('test:t1:asset');
      const c = ok(await store.create('t1', 'asset', { name: 'a', status: 'active' }));
      const m = ok(await store.merge('t1', 'asset', 1, { odometer: 5 }, { expectV: [1, 1] }));
      const m2 = ok(await store.merge('t1', 'asset', 1, { status: 'parked' }));
      const r = ok(await store.remove('t1', 'asset', 1));
      const got = await events.waitFor(4);
      expect(got.map((e) => e.attrs)).toEqual([
        { op: 'create', id: 1, 'part.general': true, 'part.advanced': true, 'f.status': '"active"' },
        { op: 'merge', id: 1, 'part.advanced': true, 'was.status': '"active"', 'f.status': '"active"' },
        { op: 'merge', id: 1, 'part.general': true, 'was.status': '"active"', 'f.status': '"parked"' },
        { op: 'remove', id: 1, 'part.general': true, 'part.advanced': true, 'was.status': '"parked"' },
      ]);
      expect(got.map((e) => e.data)).toEqual([c.data, m.data, m2.data, r.data]);
      expect(got.map((e) => e.offset)).toEqual([1, 2, 3, 4]);
      expect(got.map((e) => ({ epoch: e.epoch, offset: e.offset }))).toEqual([c.position, m.position, m2.position, r.position]);
      expect(JSON.parse(got[1]!.data)).toEqual({ id: 1, v: [1, 2], name: 'a', status: 'active', odometer: 5 });
      // The remove carries the object as it was.
      expect(r.object).toEqual({ id: 1, v: [2, 2], name: 'a', status: 'parked', odometer: 5 });
      expect(got.every((e) => e.ts > 0 && e.channel === 'test:t1:asset')).toBe(true);
      // And the events are history: a subscriber recovers them by offset.
      const hist = await bus.history('test:t1:asset', { epoch: c.position.epoch, offset: 1 });
      expect(hist.recovered).toBe(true);
      expect(hist.messages.map((e) => e.data)).toEqual([m.data, m2.data, r.data]);
    });

    it('bumps only the counters of the parts a merge touches', async () => {
      ok(await store.create('t1', 'company', { name: 'acme' }));
      expect(ok(await store.merge('t1', 'company', 1, { plan: 'gold' })).object.v).toEqual([1, 2, 1, 1, 1]);
      const r = ok(await store.merge('t1', 'company', 1, { tags: ['x'], session: { ttl: 5 } }));
      expect(r.object.v).toEqual([1, 2, 1, 2, 2]);
      expect(r.changedParts).toEqual(['labels', 'policies']);
      // An unset touches its part too.
      const u = ok(await store.merge('t1', 'company', 1, {}, { unset: ['plan'] }));
      expect(u.object).toEqual({ id: 1, v: [1, 3, 1, 2, 2], name: 'acme', tags: ['x'], session: { ttl: 5 } });
      expect(ok(await store.get('t1', 'company', 1)).object).toEqual(u.object);
    });

    it('refuses a stale v with version_conflict: the object is unchanged and nothing is published', async () => {
      const { bus, events } = await listen('test:t1:asset');
      ok(await store.create('t1', 'asset', { name: 'a', odometer: 1 }));
      ok(await store.merge('t1', 'asset', 1, { name: 'b' }));
      await events.waitFor(2);
      const before = await bus.position('test:t1:asset');
      const stale = await store.merge('t1', 'asset', 1, { name: 'c', odometer: 2 }, { expectV: [1, 1] });
      expect(stale).toMatchObject({ ok: false, code: 'version_conflict', current: { id: 1, v: [2, 1], name: 'b', odometer: 1 } });
      const missing = await store.merge('t1', 'asset', 1, { name: 'c' }, { expectV: [] });
      expect(missing).toMatchObject({ ok: false, code: 'version_conflict' });
      const staleRemove = await store.remove('t1', 'asset', 1, { expectV: [2, 0] });
      expect(staleRemove).toMatchObject({ ok: false, code: 'version_conflict', current: { v: [2, 1] } });
      expect(ok(await store.get('t1', 'asset', 1)).object).toEqual({ id: 1, v: [2, 1], name: 'b', odometer: 1 });
      await sleep(150);
      expect(events.got).toHaveLength(2);
      expect(await bus.position('test:t1:asset')).toEqual(before);
      // Only the touched parts are compared: a stale advanced counter does not block a general merge.
      expect(ok(await store.merge('t1', 'asset', 1, { name: 'c' }, { expectV: [2, 0] })).object.v).toEqual([3, 1]);
      expect(ok(await store.remove('t1', 'asset', 1, { expectV: [3, 1] })).object.v).toEqual([3, 1]);
    });

    it('answers not_found for unknown, removed and malformed ids, and never reuses an id', async () => {
      ok(await store.create('t1', 'item', { kind: 'a' }));
      ok(await store.remove('t1', 'item', 1));
      for (const id of [1, 2, 0, -1, 1.5, Number.NaN, 2 ** 40]) {
        expect(await store.get('t1', 'item', id)).toMatchObject({ ok: false, code: 'not_found' });
        expect(await store.merge('t1', 'item', id, { kind: 'b' })).toMatchObject({ ok: false, code: 'not_found' });
        expect(await store.remove('t1', 'item', id)).toMatchObject({ ok: false, code: 'not_found' });
      }
      expect(ok(await store.create('t1', 'item', {})).object.id).toBe(2);
    });

    it('scopes objects by tenant: an id of another tenant is not found, and writes never cross', async () => {
      const a = listen('test:A:item');
      const { events: eventsA } = await a;
      ok(await store.create('A', 'item', { owner: 'A', kind: 'k' }));
      expect(await store.get('B', 'item', 1)).toMatchObject({ ok: false, code: 'not_found' });
      expect(await store.merge('B', 'item', 1, { owner: 'B' })).toMatchObject({ ok: false, code: 'not_found' });
      expect(await store.remove('B', 'item', 1)).toMatchObject({ ok: false, code: 'not_found' });
      expect(ok(await store.query('B', 'item')).objects).toEqual([]);
      const b = ok(await store.create('B', 'item', { owner: 'B', kind: 'k' }));
      expect(b.object.id).toBe(1);
      ok(await store.merge('B', 'item', 1, { extra: true }));
      expect(ok(await store.get('A', 'item', 1)).object).toEqual({ id: 1, v: [1], owner: 'A', kind: 'k' });
      expect(ok(await store.query('A', 'item', { where: { kind: 'k' } })).objects.map((o) => o.owner)).toEqual(['A']);
      await sleep(150);
      expect(eventsA.got.map((e) => e.attrs.op)).toEqual(['create']);
      expect(store.channel('A', 'item')).not.toBe(store.channel('B', 'item'));
    });

    it('delivers events to a bus subscriber with contiguous offsets in write order under concurrent writes', async () => {
      const { events } = await listen('test:t1:asset');
      for (let i = 0; i < 5; i++) ok(await store.create('t1', 'asset', { name: `a${i}` }));
      const writes: Promise<WriteResult>[] = [];
      for (let i = 0; i < 100; i++) {
        const id = (i % 5) + 1;
        writes.push(i % 3 === 0 ? store.merge('t1', 'asset', id, { odometer: i }) : store.merge('t1', 'asset', id, { name: `n${i}` }));
      }
      const results = (await Promise.all(writes)).map((r) => ok(r));
      const got = await events.waitFor(105);
      expect(got.map((e) => e.offset)).toEqual(Array.from({ length: 105 }, (_, k) => k + 1));
      // Each write's event is the one at its position, with its data.
      const byOffset = new Map(got.map((e) => [e.offset, e]));
      for (const r of results) expect(byOffset.get(r.position.offset)?.data).toBe(r.data);
      // Per object, v grows by one touched part per event, in offset order.
      const last = new Map<number, readonly number[]>();
      for (const e of got) {
        const o = JSON.parse(e.data) as StoredObject;
        const prev = last.get(o.id);
        if (prev) expect(o.v[0]! + o.v[1]!).toBe(prev[0]! + prev[1]! + 1);
        last.set(o.id, o.v);
      }
      for (const [id, v] of last) expect(ok(await store.get('t1', 'asset', id)).object.v).toEqual(v);
    });

    it('shares the channel with ordinary bus publishes: one offset sequence', async () => {
      const { bus, events } = await listen('test:t1:item');
      ok(await store.create('t1', 'item', { kind: 'a' }));
      const p = await bus.publish({ channel: 'test:t1:item', attrs: { note: 'plain' }, data: '{"plain":true}' });
      const m = ok(await store.merge('t1', 'item', 1, { kind: 'b' }));
      expect(p.offset).toBe(2);
      expect(m.position).toEqual({ epoch: p.epoch, offset: 3 });
      const got = await events.waitFor(3);
      expect(got.map((e) => e.attrs.op ?? e.attrs.note)).toEqual(['create', 'plain', 'merge']);
    });

    it('refuses __proto__, constructor and prototype keys anywhere, publishing nothing', async () => {
      const { events } = await listen('test:t1:item');
      const hostile = [
        JSON.parse('{"__proto__": {"polluted": true}}'),
        JSON.parse('{"kind": "a", "nested": {"constructor": {"prototype": {}}}}'),
        JSON.parse('{"list": [{"__proto__": 1}]}'),
      ] as Record<string, unknown>[];
      for (const h of hostile) {
        expect(await store.create('t1', 'item', h)).toMatchObject({ ok: false, code: 'forbidden_key' });
        expect(await store.merge('t1', 'item', 1, h)).toMatchObject({ ok: false, code: 'forbidden_key' });
      }
      expect(await store.merge('t1', 'item', 1, { a: 1 }, { unset: ['__proto__'] })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.query('t1', 'item', { where: JSON.parse('{"__proto__": 1}') })).toMatchObject({ ok: false, code: 'invalid_query' });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await sleep(100);
      expect(events.got).toHaveLength(0);
      expect(ok(await store.create('t1', 'item', {})).object.id).toBe(1);
    });

    it('refuses reserved, unknown and ill-typed fields, unknown types and empty merges', async () => {
      expect(await store.create('t1', 'asset', { id: 5 })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'asset', { v: [1, 1] })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'asset', { wheels: 4 })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'asset', { status: { nested: true } })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'asset', { status: 's'.repeat(300) })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'asset', [] as unknown as Record<string, unknown>)).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'asset', { name: undefined })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.create('t1', 'nothing', {})).toMatchObject({ ok: false, code: 'unknown_type' });
      expect(await store.query('t1', 'nothing')).toMatchObject({ ok: false, code: 'unknown_type' });
      ok(await store.create('t1', 'asset', { name: 'x' }));
      expect(await store.merge('t1', 'asset', 1, {})).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.merge('t1', 'asset', 1, { name: 'y' }, { unset: ['name'] })).toMatchObject({ ok: false, code: 'invalid_object' });
      expect(await store.merge('t1', 'asset', 1, { name: 'y' }, { expectV: [1.5, 1] })).toMatchObject({ ok: false, code: 'invalid_object' });
      // A default part takes any field.
      expect(ok(await store.create('t1', 'item', { anything: 1, else: [2] })).object).toEqual({ id: 1, v: [1], anything: 1, else: [2] });
      // A tenant that makes no valid channel name is a caller bug: it throws, like the Bus does.
      await expect(async () => store.get('bad tenant', 'asset', 1)).rejects.toMatchObject({ code: 'invalid_message' });
      expect(ok(await store.get('t1', 'asset', 1)).object).toEqual({ id: 1, v: [1, 1], name: 'x' });
    });

    it('enforces size and depth limits on creates, patches and merged objects, changing nothing', async () => {
      await store.close();
      store = await world.store(options({ maxObjectBytes: 200, maxDepth: 4 }));
      const { events } = await listen('test:t1:item');
      expect(await store.create('t1', 'item', { a: { b: { c: { d: { e: 1 } } } } })).toMatchObject({ ok: false, code: 'too_deep' });
      expect(await store.create('t1', 'item', { a: [[[[1]]]] })).toMatchObject({ ok: false, code: 'too_deep' });
      expect(ok(await store.create('t1', 'item', { a: { b: { c: 1 } } })).object.id).toBe(1);
      expect(await store.create('t1', 'item', { big: 'x'.repeat(300) })).toMatchObject({ ok: false, code: 'too_large' });
      expect(await store.merge('t1', 'item', 1, { big: 'x'.repeat(300) })).toMatchObject({ ok: false, code: 'too_large' });
      expect(await store.merge('t1', 'item', 1, { a: { b: { c: { d: { e: 1 } } } } })).toMatchObject({ ok: false, code: 'too_deep' });
      // Four levels (the object and three below it) are fine.
      expect(ok(await store.merge('t1', 'item', 1, { a: { b: { c: { d: 1 } } } })).object.v).toEqual([2]);
      // Each patch fits, but the merged object would not: refused where the object is assembled.
      ok(await store.merge('t1', 'item', 1, { p1: 'y'.repeat(80) }));
      const grown = await store.merge('t1', 'item', 1, { p2: 'z'.repeat(80) });
      expect(grown).toMatchObject({ ok: false, code: 'too_large' });
      // A create right at the limit is accepted; one byte more is not.
      const base = JSON.stringify({ id: 2, v: [1], s: '' }).length;
      expect(ok(await store.create('t1', 'item', { s: 'q'.repeat(200 - base) })).data.length).toBe(200);
      expect(await store.create('t1', 'item', { s: 'q'.repeat(201 - base) })).toMatchObject({ ok: false, code: 'too_large' });
      expect(ok(await store.get('t1', 'item', 1)).object).toEqual({ id: 1, v: [3], a: { b: { c: { d: 1 } } }, p1: 'y'.repeat(80) });
      await sleep(100);
      expect(events.got.map((e) => e.attrs.op)).toEqual(['create', 'merge', 'merge', 'create']);
    });

    it('queries by equality on indexed and other fields, in id order, bounded by limit, with paging', async () => {
      for (let i = 1; i <= 12; i++) ok(await store.create('t1', 'item', { kind: i % 3 === 0 ? 'c' : 'x', open: i % 2 === 0, n: i, s: String(i % 2) }));
      const all = ok(await store.query('t1', 'item'));
      expect(all.objects.map((o) => o.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(all.nextAfterId).toBeNull();
      const c = ok(await store.query('t1', 'item', { where: { kind: 'c' } }));
      expect(c.objects.map((o) => o.id)).toEqual([3, 6, 9, 12]);
      expect(ok(await store.query('t1', 'item', { where: { kind: 'c', open: true } })).objects.map((o) => o.id)).toEqual([6, 12]);
      expect(ok(await store.query('t1', 'item', { where: { n: 7 } })).objects.map((o) => o.id)).toEqual([7]);
      // Typed equality: the number 1 is not the string "1".
      expect(ok(await store.query('t1', 'item', { where: { s: '1' } })).objects.map((o) => o.id)).toEqual([1, 3, 5, 7, 9, 11]);
      expect(ok(await store.query('t1', 'item', { where: { s: 1 } })).objects).toEqual([]);
      expect(ok(await store.query('t1', 'item', { where: { missing: null } })).objects).toEqual([]);
      // Paging: limit, then afterId.
      const p1 = ok(await store.query('t1', 'item', { where: { kind: 'x' }, limit: 3 }));
      expect(p1.objects.map((o) => o.id)).toEqual([1, 2, 4]);
      expect(p1.nextAfterId).toBe(4);
      const p2 = ok(await store.query('t1', 'item', { where: { kind: 'x' }, limit: 5, afterId: 4 }));
      expect(p2.objects.map((o) => o.id)).toEqual([5, 7, 8, 10, 11]);
      expect(p2.nextAfterId).toBeNull();
      // The index follows merges and removes.
      ok(await store.merge('t1', 'item', 3, { kind: 'x' }));
      ok(await store.remove('t1', 'item', 6));
      expect(ok(await store.query('t1', 'item', { where: { kind: 'c' } })).objects.map((o) => o.id)).toEqual([9, 12]);
      expect(ok(await store.query('t1', 'item', { where: { kind: 'x' }, limit: 3 })).objects.map((o) => o.id)).toEqual([1, 2, 3]);
      expect(ok(await store.query('t1', 'item', { where: { kind: 'nothing' } })).objects).toEqual([]);
      expect(ok(await store.query('t1', 'item', { where: { kind: 'k'.repeat(400) } })).objects).toEqual([]);
    });

    it('bounds queries: limit within 1..maxQueryLimit, scalar values only, scan budget with a resume point', async () => {
      await store.close();
      store = await world.store(options({ maxQueryLimit: 5, maxQueryScan: 4 }));
      for (let i = 1; i <= 10; i++) ok(await store.create('t1', 'item', { n: i, even: i % 2 === 0 }));
      for (const limit of [0, 6, 1.5, -1]) expect(await store.query('t1', 'item', { limit })).toMatchObject({ ok: false, code: 'invalid_query' });
      expect(await store.query('t1', 'item', { where: { n: [1] } as never })).toMatchObject({ ok: false, code: 'invalid_query' });
      expect(await store.query('t1', 'item', { where: { id: 1 } })).toMatchObject({ ok: false, code: 'invalid_query' });
      expect(await store.query('t1', 'item', { afterId: -1 })).toMatchObject({ ok: false, code: 'invalid_query' });
      expect(await store.query('t1', 'asset', { where: { wheels: 4 } })).toMatchObject({ ok: false, code: 'invalid_query' });
      // Default limit = max.
      const first = ok(await store.query('t1', 'item'));
      expect(first.objects.map((o) => o.id)).toEqual([1, 2, 3, 4]);
      expect(first.nextAfterId).toBe(4);
      // 4 candidates examined per call: the unindexed condition finds 2, then 2, then 1.
      const pages: number[][] = [];
      let after: number | null = 0;
      while (after !== null) {
        const page: { objects: readonly StoredObject[]; nextAfterId: number | null } = ok(await store.query('t1', 'item', { where: { even: true }, afterId: after }));
        pages.push(page.objects.map((o) => o.id));
        after = page.nextAfterId;
      }
      expect(pages).toEqual([[2, 4], [6, 8], [10]]);
    });

    it('gives subscribers decodable events: changed parts and live-query membership', async () => {
      const { events } = await listen('test:t1:item');
      ok(await store.create('t1', 'item', { kind: 'a', open: true }));
      ok(await store.merge('t1', 'item', 1, { open: false }));
      ok(await store.merge('t1', 'item', 1, { kind: 'b' }));
      ok(await store.remove('t1', 'item', 1));
      const got = (await events.waitFor(4)).map((e) => readChangeEvent(e, ITEM)!);
      expect(got.map((e) => [e.op, e.id, e.changedParts])).toEqual([
        ['create', 1, ['data']],
        ['merge', 1, ['data']],
        ['merge', 1, ['data']],
        ['remove', 1, ['data']],
      ]);
      const where = { kind: 'a' };
      expect(got.map((e) => liveQueryMembership(e, where, ITEM))).toEqual([
        { before: false, after: true },
        { before: true, after: true },
        { before: true, after: false },
        { before: false, after: false },
      ]);
      expect(liveQueryMembership(got[0]!, { other: 1 }, ITEM)).toBeNull();
      expect(got[3]!.object).toEqual({ id: 1, v: [3], kind: 'b', open: false });
    });
  });
}
