/**
 * A live query's decisions from change events alone: entered / changed / left on indexed fields, what
 * it holds back until its first response, and what of that it sends once the result set is known.
 * The events are the object store's own (a MemoryObjectStore on a MemoryBroker), not hand-made attrs.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '@switchboard/bus';
import type { Envelope } from '@switchboard/core';
import { MemoryObjectStore, type StoredObject } from '@switchboard/store';
import { LiveQuery, MAX_PENDING_EVENTS, type GUConn } from '../src/dialects/gooduncle/live-query.js';

async function setup() {
  const broker = new MemoryBroker({ historySize: 100_000, historyTtlSec: 60 });
  const bus = broker.node();
  const events: Envelope[] = [];
  bus.onDeliver((batch) => events.push(...batch));
  await bus.subscribe('gooduncle:default:orders');
  const store = new MemoryObjectStore(broker, {
    types: { orders: { parts: ['data'], defaultPart: 'data', indexed: ['status', 'customer'] } },
    channel: (t, type) => `gooduncle:${t}:${type}`,
  });
  const conn = { state: { session: '{"id":"s","roles":[]}' } } as unknown as GUConn;
  const query = (q: Record<string, string>) => new LiveQuery(conn, 'k', 'orders', q, 1, '{}', ',{"service":"edge","node":"n"}]}');
  const flush = () => new Promise((r) => setTimeout(r, 5));
  return { store, events, query, flush };
}

const payload = (frame: string) => (JSON.parse(frame) as { response: { payload: { change: string; object: StoredObject } } }).response.payload;

describe('gooduncle live query', () => {
  it('tells entered, changed and left from one event, and ignores objects never in the set', async () => {
    const t = await setup();
    const q = t.query({ status: 'open', customer: 'ann' });
    const a = await t.store.create('default', 'orders', { status: 'open', customer: 'ann' });
    const b = await t.store.create('default', 'orders', { status: 'open', customer: 'bob' });
    if (!a.ok || !b.ok) throw new Error('create failed');
    await t.store.merge('default', 'orders', a.object.id, { note: 'x' });
    await t.store.merge('default', 'orders', b.object.id, { note: 'y' });
    await t.store.merge('default', 'orders', a.object.id, { status: 'closed' });
    await t.store.merge('default', 'orders', a.object.id, { status: 'open' });
    await t.store.remove('default', 'orders', a.object.id);
    await t.flush();
    expect(t.events.map((e) => q.change(e))).toEqual(['entered', null, 'changed', null, 'left', 'entered', 'left']);
    // The empty query follows every object.
    expect(t.events.map((e) => t.query({}).change(e))).toEqual(['entered', 'entered', 'changed', 'changed', 'changed', 'changed', 'left']);
  });

  it('holds events back until armed; an overflowing buffer is reported, not grown', async () => {
    const t = await setup();
    const q = t.query({});
    const o = await t.store.create('default', 'orders', { status: 'open' });
    if (!o.ok) throw new Error('create failed');
    await t.flush();
    expect(q.render(t.events[0]!)).toBeNull();
    const frames = q.arm([]);
    expect(frames.map((f) => payload(f).change)).toEqual(['entered']);
    await t.store.merge('default', 'orders', o.object.id, { n: 1 });
    await t.flush();
    expect(payload(q.render(t.events[1]!)!)).toMatchObject({ change: 'changed', object: { n: 1 } });
    q.end();
    expect(q.render(t.events[1]!)).toBeNull();

    const busy = t.query({});
    for (let i = 0; i <= MAX_PENDING_EVENTS; i++) busy.render(t.events[1]!);
    expect(busy.overflowed).toBe(true);
  });
});
