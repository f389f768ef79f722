/**
 * The hub's hot-path contract, measured directly: one render and one `app.publish` per matching group
 * per message, whatever the number of subscribers; duplicates dropped; recovery and conflation exact.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBroker, type Bus, type MemoryBus } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, type Envelope } from '@switchboard/core';
import { Hub, type Frame, type GroupSpec, type HubConnection, type HubSocket, type TopicPublisher } from './hub.js';
import { EdgeMetrics } from './metrics.js';

class FakeApp implements TopicPublisher {
  readonly published: { topic: string; message: Frame }[] = [];
  /** Frames sent to single sockets of this app (a group's only member, replays). */
  readonly sent: Frame[] = [];
  readonly topics = new Map<string, Set<FakeSocket>>();
  publish(topic: string, message: Frame): boolean {
    this.published.push({ topic, message });
    for (const s of this.topics.get(topic) ?? []) s.received.push(message);
    return true;
  }
  /** Writes handed to uWS: topic publishes plus single-socket sends (one per group per message either way). */
  get writes(): number {
    return this.published.length + this.sent.length;
  }
  clear(): void {
    this.published.length = 0;
    this.sent.length = 0;
  }
}

class FakeSocket implements HubSocket {
  readonly received: Frame[] = [];
  corks = 0;
  constructor(private readonly app: FakeApp) {}
  subscribe(topic: string): boolean {
    let set = this.app.topics.get(topic);
    if (!set) this.app.topics.set(topic, (set = new Set()));
    set.add(this);
    return true;
  }
  unsubscribe(topic: string): boolean {
    return this.app.topics.get(topic)?.delete(this) ?? false;
  }
  send(message: Frame): number {
    this.received.push(message);
    this.app.sent.push(message);
    return 1;
  }
  /** What the test says waits in the send buffer. */
  buffered = 0;
  getBufferedAmount(): number {
    return this.buffered;
  }
  cork(cb: () => void): unknown {
    this.corks++;
    cb();
    return this;
  }
}

function setup(historySize = 100) {
  const app = new FakeApp();
  const broker = new MemoryBroker({ historySize, historyTtlSec: 60 });
  const bus = broker.node();
  const insufficient: string[] = [];
  // Keep the hub's gap handler so a test can report a gap as the Redis bus would.
  let gapHandler: ((g: { channels: readonly string[]; reason: string }) => void) | null = null;
  bus.onGap = (h) => {
    gapHandler = h;
  };
  const publisher = broker.node();
  let renders = 0;
  const hub = new Hub({
    bus,
    renderer: ({ projection }) => (env: Envelope) => {
      renders++;
      return `${env.offset}:${projection ? projection.join('+') : '*'}:${env.data}`;
    },
    metrics: new EdgeMetrics(createMetricsRegistry({ processMetrics: false })),
    logger: createLogger({ name: 'test', level: 'silent' }),
    // As the edge does: the connection is closed, which removes it from its groups.
    onInsufficientState: (conn, channel) => {
      insufficient.push(channel);
      hub.removeConnection(conn);
    },
  });
  const conn = (onApp: FakeApp = app): HubConnection & { ws: FakeSocket } => ({ ws: new FakeSocket(onApp), app: onApp, closed: false, subs: new Map() });
  const spec = (filter: Record<string, string[]> = {}, projection: string[] | null = null, frequencyMs = 0): GroupSpec => ({
    dialect: 'test',
    channel: 'ch',
    filter,
    projection,
    frequencyMs,
    conflateBy: 'device_id',
  });
  const tick = () => new Promise((r) => setTimeout(r, 5));
  const reportGap = (channels: string[]) => gapHandler?.({ channels, reason: 'test' });
  return { app, hub, bus, publisher, broker, conn, spec, tick, insufficient, reportGap, renders: () => renders };
}

describe('Hub', () => {
  it('publishes once per group and renders once per (projection) slot, whatever the subscriber count', async () => {
    const t = setup();
    const conns = Array.from({ length: 100 }, () => t.conn());
    for (let i = 0; i < conns.length; i++) {
      // 3 groups: all devices, device 1, device 1 projected.
      const s = i % 3 === 0 ? t.spec() : i % 3 === 1 ? t.spec({ device_id: ['1'] }) : t.spec({ device_id: ['1'] }, ['a']);
      await t.hub.subscribe(conns[i]!, 'sub', s, null, () => {});
    }
    t.app.clear();
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: '{"a":1}' });
    await t.tick();
    expect(t.app.writes).toBe(3);
    // Two groups share the unprojected slot: two renders for three groups.
    expect(t.renders()).toBe(2);
    expect(conns.every((c) => c.ws.received.length === 1)).toBe(true);
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 2 }, data: '{"a":2}' });
    await t.tick();
    expect(t.app.writes).toBe(4);
    expect(conns.filter((c) => c.ws.received.length === 2)).toHaveLength(34);
  });

  it('lists the channels whose position moved since it was last asked, and only those (checkpoints)', async () => {
    const t = setup();
    const quiet = t.spec();
    const busy = { ...t.spec(), channel: 'busy' };
    await t.hub.subscribe(t.conn(), 'q', { ...quiet, channel: 'quiet' }, null, () => {});
    await t.hub.subscribe(t.conn(), 'b', busy, null, () => {});
    t.hub.takeMoved();
    for (let i = 0; i < 3; i++) await t.publisher.publish({ channel: 'busy', attrs: {}, data: String(i) });
    await t.tick();
    const moved = t.hub.takeMoved();
    expect([...moved.keys()]).toEqual(['busy']);
    expect(moved.get('busy')?.offset).toBe(3);
    // Nothing moved since.
    expect(t.hub.takeMoved().size).toBe(0);
  });

  it('drops a redelivered message (offset not above the last dispatched)', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: '1' });
    await t.tick();
    const env = { channel: 'ch', offset: 1, epoch: (await t.bus.position('ch')).epoch, ts: Date.now(), attrs: {}, data: 'dup' };
    t.hub.dispatch([env]);
    expect(c.ws.received).toEqual(['1:*:1']);
  });

  it('recovery sends the response first, then history, then what arrived meanwhile, with no gap or duplicate', async () => {
    const t = setup();
    for (let i = 1; i <= 5; i++) await t.publisher.publish({ channel: 'ch', attrs: {}, data: String(i) });
    const epoch = (await t.bus.position('ch')).epoch;
    const c = t.conn();
    const order: string[] = [];
    const pending = t.hub.subscribe(c, 'sub', t.spec(), { epoch, offset: 2 }, (o) => {
      order.push(`response recovered=${o.recovered} replayed=${o.replayed}`);
    });
    // Published while the history is being fetched: must come after it, once.
    void t.publisher.publish({ channel: 'ch', attrs: {}, data: '6' });
    await pending;
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: '7' });
    await t.tick();
    order.push(...(c.ws.received as string[]));
    expect(order).toEqual(['response recovered=true replayed=4', '3:*:3', '4:*:4', '5:*:5', '6:*:6', '7:*:7']);
  });

  it('conflates per device on the group interval', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec({}, null, 100), null, () => {});
    for (let i = 1; i <= 4; i++) await t.publisher.publish({ channel: 'ch', attrs: { device_id: i % 2 }, data: String(i) });
    await new Promise((r) => setTimeout(r, 160));
    expect(c.ws.received.sort()).toEqual(['3:*:3', '4:*:4']);
    t.hub.close();
  });

  it('drops bus interest when the last subscriber leaves and takes it again on the next', async () => {
    const t = setup();
    const a = t.conn();
    const b = t.conn();
    await t.hub.subscribe(a, 'sub', t.spec(), null, () => {});
    await t.hub.subscribe(b, 'sub', t.spec({ device_id: ['1'] }), null, () => {});
    expect(t.hub.channelStats().get('ch')).toBe(2);
    t.hub.unsubscribe(a, 'sub');
    t.hub.removeConnection(b);
    expect(t.hub.channelStats().size).toBe(0);
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'x' });
    await t.tick();
    expect(t.app.writes).toBe(0);
    await t.hub.subscribe(a, 'sub', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'y' });
    await t.tick();
    expect(a.ws.received).toEqual(['2:*:y']);
  });
});

describe('Hub: groups indexed by filter attribute', () => {
  it('a message visits only the groups its attributes name: 2,000 per-device groups, one render, one publish', async () => {
    const t = setup();
    const conns = Array.from({ length: 2000 }, () => t.conn());
    for (let i = 0; i < conns.length; i++) await t.hub.subscribe(conns[i]!, 'sub', t.spec({ device_id: [String(i)] }), null, () => {});
    const all = t.conn();
    await t.hub.subscribe(all, 'sub', t.spec(), null, () => {});
    const pair = t.conn();
    await t.hub.subscribe(pair, 'sub', t.spec({ device_id: ['5', '6'], severity: ['critical'] }), null, () => {});
    t.app.clear();
    const before = t.renders();
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 5, severity: 'info' }, data: 'x' });
    await t.tick();
    // The device-5 group and the unfiltered one; the pair group filters on severity too and declines.
    expect(t.app.writes).toBe(2);
    expect(t.renders() - before).toBe(1);
    expect(conns[5]!.ws.received).toEqual(['1:*:x']);
    expect(conns[6]!.ws.received).toEqual([]);
    expect(pair.ws.received).toEqual([]);
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 6, severity: 'critical' }, data: 'y' });
    await t.tick();
    expect(conns[6]!.ws.received).toEqual(['2:*:y']);
    expect(pair.ws.received).toEqual(['2:*:y']);
    expect(all.ws.received).toEqual(['1:*:x', '2:*:y']);
    // A message without the attribute reaches only the unfiltered group.
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'z' });
    await t.tick();
    expect(all.ws.received).toHaveLength(3);
    expect(conns.every((c, i) => c.ws.received.length === (i === 5 || i === 6 ? 1 : 0))).toBe(true);
  });

  it('a group leaves the index with its last subscriber; a filter change moves it', async () => {
    const t = setup();
    const a = t.conn();
    await t.hub.subscribe(a, 'sub', t.spec({ device_id: ['1'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'prime' });
    await t.tick();
    await t.hub.subscribe(a, 'sub', t.spec({ device_id: ['2'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'one' });
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: '2' }, data: 'two' });
    await t.tick();
    expect(a.ws.received).toEqual(['3:*:two']);
    t.hub.unsubscribe(a, 'sub');
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 2 }, data: 'gone' });
    await t.tick();
    expect(a.ws.received).toEqual(['3:*:two']);
  });
});

describe('Hub: subscriptions by id, several apps, render context, binary frames', () => {
  it('a connection holds several subscriptions of one channel under different ids, each its own group', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'one', t.spec({ device_id: ['1'] }), null, () => {});
    await t.hub.subscribe(c, 'two', t.spec({ device_id: ['2'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'a' });
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 2 }, data: 'b' });
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:a', '2:*:b']);
    expect(t.hub.unsubscribe(c, 'one')).toBe(true);
    expect(t.hub.unsubscribe(c, 'one')).toBe(false);
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'c' });
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 2 }, data: 'd' });
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:a', '2:*:b', '4:*:d']);
  });

  it('an id moved to another channel leaves the first channel', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'x', t.spec(), null, () => {});
    await t.hub.subscribe(c, 'x', { ...t.spec(), channel: 'other' }, null, () => {});
    expect(t.hub.channelStats().has('ch')).toBe(false);
    expect(t.hub.channelStats().get('other')).toBe(1);
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.publisher.publish({ channel: 'other', attrs: {}, data: 'b' });
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:b']);
  });

  it("publishes a group's frame once to every app it has members in, and stops when an app has none left", async () => {
    const t = setup();
    const other = new FakeApp();
    const a = t.conn();
    const b = t.conn(other);
    await t.hub.subscribe(a, 's', t.spec(), null, () => {});
    await t.hub.subscribe(b, 's', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.tick();
    expect(t.app.writes).toBe(1);
    expect(other.published).toHaveLength(1);
    expect(b.ws.received).toEqual(['1:*:a']);
    t.hub.removeConnection(b);
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'b' });
    await t.tick();
    expect(other.published).toHaveLength(1);
    expect(a.ws.received).toEqual(['1:*:a', '2:*:b']);
  });

  it("a group's first app losing its members hands the place to the next; each app is published to while it has members", async () => {
    const t = setup();
    const [second, third] = [new FakeApp(), new FakeApp()];
    const a = t.conn();
    const b = t.conn(second);
    const b2 = t.conn(second);
    const c = t.conn(third);
    for (const conn of [a, b, b2, c]) await t.hub.subscribe(conn, 's', t.spec(), null, () => {});
    const sent = () => [t.app.published.length, second.published.length, third.published.length];
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.tick();
    expect(sent()).toEqual([1, 1, 1]);
    t.hub.removeConnection(a);
    t.hub.removeConnection(b);
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'b' });
    await t.tick();
    expect(sent()).toEqual([1, 2, 2]);
    t.hub.removeConnection(c);
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'c' });
    await t.tick();
    expect(sent()).toEqual([1, 3, 2]);
    // The first app comes back after the others: published to again, once per message.
    const a2 = t.conn();
    await t.hub.subscribe(a2, 's', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'd' });
    await t.tick();
    expect(sent()).toEqual([2, 4, 2]);
    expect(b2.ws.received).toEqual(['1:*:a', '2:*:b', '3:*:c', '4:*:d']);
    expect(a2.ws.received).toEqual(['4:*:d']);
    expect(c.ws.received).toEqual(['1:*:a', '2:*:b']);
  });

  it("a channel's groups come and go in any order: each is found again, slots stay shared, every open group is delivered to", async () => {
    const t = setup();
    const [a, b, c, d] = [t.conn(), t.conn(), t.conn(), t.conn()];
    // Two open groups (one projected), one filtered group sharing the unprojected slot.
    await t.hub.subscribe(a, 's', t.spec(), null, () => {});
    await t.hub.subscribe(b, 's', t.spec({}, ['x']), null, () => {});
    await t.hub.subscribe(c, 's', t.spec({ device_id: ['1'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'm1' });
    await t.tick();
    expect(t.app.writes).toBe(3);
    expect(t.renders()).toBe(2);
    // The first open group goes: the projected one still gets every message.
    t.hub.removeConnection(a);
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'm2' });
    await t.tick();
    expect(b.ws.received).toEqual(['1:x:m1', '2:x:m2']);
    expect(c.ws.received).toEqual(['1:*:m1', '2:*:m2']);
    // Back to one group, then a second again: the new member joins the existing group, not a new one.
    t.hub.removeConnection(c);
    await t.hub.subscribe(d, 's', t.spec({}, ['x']), null, () => {});
    const writes = t.app.writes;
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'm3' });
    await t.tick();
    expect(t.app.writes - writes).toBe(1);
    expect(d.ws.received).toEqual(['3:x:m3']);
    expect(t.hub.channelStats().get('ch')).toBe(2);
    // An unprojected group next to it gets a slot of its own; a filtered one shares that slot.
    await t.hub.subscribe(a, 's2', t.spec(), null, () => {});
    await t.hub.subscribe(c, 's2', t.spec({ device_id: ['1'] }), null, () => {});
    const renders = t.renders();
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'm4' });
    await t.tick();
    expect(t.renders() - renders).toBe(2);
    expect(a.ws.received).toEqual(['1:*:m1', '4:*:m4']);
    expect(c.ws.received).toEqual(['1:*:m1', '2:*:m2', '4:*:m4']);
    expect(b.ws.received).toEqual(['1:x:m1', '2:x:m2', '3:x:m3', '4:x:m4']);
    for (const conn of [a, b, c, d]) t.hub.removeConnection(conn);
    expect(t.hub.channelStats().has('ch')).toBe(false);
  });

  it('groups with different render keys never share a frame; the renderer gets the group context', async () => {
    const app = new FakeApp();
    const broker = new MemoryBroker({ historySize: 10, historyTtlSec: 60 });
    const hub = new Hub({
      bus: broker.node(),
      renderer: (spec) => {
        const ctx = spec.render?.context as string;
        return (env) => (ctx === 'bin' ? new Uint8Array([env.offset]) : `${ctx}:${env.data}`);
      },
      metrics: new EdgeMetrics(createMetricsRegistry({ processMetrics: false })),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    const publisher = broker.node();
    const base: GroupSpec = { dialect: 'test', channel: 'ch', filter: {}, projection: null, frequencyMs: 0, conflateBy: null };
    const mk = (): HubConnection & { ws: FakeSocket } => ({ ws: new FakeSocket(app), app, closed: false, subs: new Map() });
    const merged = mk();
    const deleted = mk();
    const binary = mk();
    await hub.subscribe(merged, 's', { ...base, render: { key: 'm', context: 'assetMerged' } }, null, () => {});
    await hub.subscribe(deleted, 's', { ...base, render: { key: 'd', context: 'assetDeleted' } }, null, () => {});
    await hub.subscribe(binary, 's', { ...base, render: { key: 'b', context: 'bin' } }, null, () => {});
    await publisher.publish({ channel: 'ch', attrs: {}, data: 'x' });
    await new Promise((r) => setTimeout(r, 5));
    expect(merged.ws.received).toEqual(['assetMerged:x']);
    expect(deleted.ws.received).toEqual(['assetDeleted:x']);
    expect(binary.ws.received).toEqual([new Uint8Array([1])]);
    expect(app.writes).toBe(3);
  });

  it('a renderer may decline a message: nothing is sent for it, live or replayed, and replayed counts what was sent', async () => {
    const app = new FakeApp();
    const broker = new MemoryBroker({ historySize: 10, historyTtlSec: 60 });
    const metrics = new EdgeMetrics(createMetricsRegistry({ processMetrics: false }));
    const hub = new Hub({
      bus: broker.node(),
      // Declines odd payloads, as a live query declines events about objects outside its result set.
      renderer: () => (env) => (Number(env.data) % 2 === 1 ? null : `even:${env.data}`),
      metrics,
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    const publisher = broker.node();
    const spec: GroupSpec = { dialect: 'test', channel: 'ch', filter: {}, projection: null, frequencyMs: 0, conflateBy: null };
    const live: HubConnection & { ws: FakeSocket } = { ws: new FakeSocket(app), app, closed: false, subs: new Map() };
    let start = { epoch: '', offset: 0 };
    await hub.subscribe(live, 's', spec, null, (o) => (start = o.position!));
    for (const n of [1, 2, 3, 4]) await publisher.publish({ channel: 'ch', attrs: {}, data: String(n) });
    await new Promise((r) => setTimeout(r, 5));
    expect(live.ws.received).toEqual(['even:2', 'even:4']);
    expect(app.writes).toBe(2);
    const late: HubConnection & { ws: FakeSocket } = { ws: new FakeSocket(app), app, closed: false, subs: new Map() };
    let replayed = -1;
    await hub.subscribe(late, 's', { ...spec, render: { key: 'late', context: null } }, start, (o) => (replayed = o.replayed));
    expect(replayed).toBe(2);
    expect(late.ws.received).toEqual(['even:2', 'even:4']);
  });
});

describe('Hub resubscribe with recovery', () => {
  it('the only subscription of a channel, replaced with recovery, keeps receiving live messages', async () => {
    const t = setup();
    const c = t.conn();
    let pos = { epoch: '', offset: 0 };
    await t.hub.subscribe(c, 'sub', t.spec(), null, (o) => (pos = o.position!));
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.tick();
    await t.hub.subscribe(c, 'sub', t.spec(), pos, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'b' });
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:a', '1:*:a', '2:*:b']);
  });

  it('the only subscription of a live channel, replaced with another filter, keeps receiving live messages', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec({ device_id: ['1', '2'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'a' });
    await t.tick();
    await t.hub.subscribe(c, 'sub', t.spec({ device_id: ['1'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'b' });
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 2 }, data: 'c' });
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:a', '2:*:b']);
  });
});

/** A bus whose deliveries to this node can be held back: a reader that lags the history. */
class LaggingBus {
  lagging = false;
  private held: (readonly Envelope[])[] = [];
  private handler: ((batch: readonly Envelope[]) => void) | null = null;
  constructor(readonly inner: MemoryBus) {
    inner.onDeliver((batch) => (this.lagging ? this.held.push(batch) : this.handler?.(batch)));
  }
  release(): void {
    this.lagging = false;
    for (const b of this.held.splice(0)) this.handler?.(b);
  }
  asBus(): Bus {
    return new Proxy(this.inner, {
      get: (target, prop, receiver) => (prop === 'onDeliver' ? (h: (batch: readonly Envelope[]) => void) => (this.handler = h) : Reflect.get(target, prop, receiver) as unknown),
    });
  }
}

describe('Hub: a subscriber joins live delivery where its replay ended', () => {
  function laggingSetup() {
    const app = new FakeApp();
    const broker = new MemoryBroker({ historySize: 100, historyTtlSec: 60 });
    const lag = new LaggingBus(broker.node());
    const hub = new Hub({
      bus: lag.asBus(),
      renderer: () => (env) => `${env.offset}`,
      metrics: new EdgeMetrics(createMetricsRegistry({ processMetrics: false })),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    const publisher = broker.node();
    const spec: GroupSpec = { dialect: 'test', channel: 'ch', filter: {}, projection: null, frequencyMs: 0, conflateBy: null };
    const conn = (): HubConnection & { ws: FakeSocket } => ({ ws: new FakeSocket(app), app, closed: false, subs: new Map() });
    return { app, hub, lag, publisher, spec, conn, tick: () => new Promise((r) => setTimeout(r, 5)) };
  }

  /**
   * A live subscriber `a` (spec `aSpec`), five messages while this node's reader lags, and `b` recovering
   * them from history: b gets them replayed once, then live, no duplicate; a gets everything live.
   */
  async function recoverWhileLagging(t: ReturnType<typeof laggingSetup>, aSpec: GroupSpec): Promise<void> {
    const a = t.conn();
    await t.hub.subscribe(a, 's', aSpec, null, () => {});
    const epoch = (await t.publisher.position('ch')).epoch;
    t.lag.lagging = true;
    for (let i = 1; i <= 5; i++) await t.publisher.publish({ channel: 'ch', attrs: {}, data: String(i) });
    const b = t.conn();
    await t.hub.subscribe(b, 's', t.spec, { epoch, offset: 0 }, (o) => expect(o).toMatchObject({ recovered: true, replayed: 5 }));
    expect(b.ws.received).toEqual(['1', '2', '3', '4', '5']);
    t.lag.release();
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: '6' });
    await t.tick();
    expect(b.ws.received).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(a.ws.received).toEqual(['1', '2', '3', '4', '5', '6']);
  }

  it("recovering from history while this node's reader lags: replayed once, then live, no duplicate", async () => {
    const t = laggingSetup();
    await recoverWhileLagging(t, t.spec);
  });

  it("subscribing at the channel top while this node's reader lags: nothing from before the top arrives", async () => {
    const t = laggingSetup();
    const a = t.conn();
    await t.hub.subscribe(a, 's', t.spec, null, () => {});
    t.lag.lagging = true;
    for (let i = 1; i <= 3; i++) await t.publisher.publish({ channel: 'ch', attrs: {}, data: String(i) });
    const c = t.conn();
    let at = -1;
    await t.hub.subscribe(c, 's', t.spec, null, (o) => (at = o.position!.offset));
    expect(at).toBe(3);
    t.lag.release();
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: '4' });
    await t.tick();
    expect(c.ws.received).toEqual(['4']);
    // A subscriber that leaves before its join is simply forgotten.
    t.lag.lagging = true;
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: '5' });
    const d = t.conn();
    await t.hub.subscribe(d, 's', t.spec, null, () => {});
    t.hub.removeConnection(d);
    t.lag.release();
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: '6' });
    await t.tick();
    expect(d.ws.received).toEqual([]);
    expect(a.ws.received).toEqual(['1', '2', '3', '4', '5', '6']);
  });

  it("a group's only member whose replay is ahead of this node's reader gets direct frames only after it", async () => {
    const t = laggingSetup();
    // a in a group of its own (another render key), so b is its group's only member too.
    await recoverWhileLagging(t, { ...t.spec, render: { key: 'a', context: null } });
    // Both groups have one member each: no topic was published to.
    expect(t.app.published).toHaveLength(0);
  });
});

describe('Hub: an offset reused within an epoch (the backend lost acknowledged writes)', () => {
  const env = (epoch: string, offset: number, writeId: string, data = String(offset)): Envelope => ({ channel: 'ch', offset, epoch, ts: Date.now(), attrs: {}, data, writeId });

  it('a redelivery (same write id) is dropped silently; a reused offset (newer write id) abandons the epoch, closes subscribers, and is never delivered', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec(), null, () => {});
    const { epoch } = await t.bus.position('ch');
    t.hub.dispatch([env(epoch, 1, '100-0'), env(epoch, 2, '100-1')]);
    t.hub.dispatch([env(epoch, 2, '100-1')]);
    expect(c.ws.received).toEqual(['1:*:1', '2:*:2']);
    expect(t.insufficient).toEqual([]);
    // After a failover that lost offset 2 and more, offset 2 names another message.
    t.hub.dispatch([env(epoch, 2, '250-0', 'other'), env(epoch, 3, '250-1', 'other3')]);
    expect(t.insufficient).toEqual(['ch']);
    expect(c.ws.received).toEqual(['1:*:1', '2:*:2']);
    await t.tick();
    const now = await t.bus.position('ch');
    expect(now.epoch).not.toBe(epoch);
    // A newcomer gets the new epoch; recovering into the old one says so.
    const d = t.conn();
    let recovered: boolean | undefined;
    await t.hub.subscribe(d, 'sub', t.spec(), { epoch, offset: 2 }, (o) => (recovered = o.recovered));
    expect(recovered).toBe(false);
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'fresh' });
    await t.tick();
    expect(d.ws.received).toEqual(['1:*:fresh']);
  });

  it("a repair that finds the top behind this node's last offset abandons the epoch instead of waiting for the top to pass it", async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.tick();
    const { epoch } = await t.bus.position('ch');
    // This node saw offset 3 (its messages were lost afterwards): a gap report makes it look at history.
    t.hub.dispatch([env(epoch, 2, '1-0'), env(epoch, 3, '1-1')]);
    t.reportGap(['ch']);
    await t.tick();
    expect(t.insufficient).toEqual(['ch']);
    expect((await t.bus.position('ch')).epoch).not.toBe(epoch);
  });
});

describe('Hub taps (node-internal readers)', () => {
  it('a tap gets every message after it started, in order, with gap repair, and stops holding the channel when removed', async () => {
    const t = setup();
    await t.publisher.publish({ channel: 'ctl', attrs: {}, data: 'before' });
    const got: string[] = [];
    const untap = await t.hub.tap('ctl', (env) => got.push(`${env.offset}:${env.data}`));
    await t.publisher.publish({ channel: 'ctl', attrs: {}, data: 'a' });
    await t.bus.unsubscribe('ctl');
    await t.publisher.publish({ channel: 'ctl', attrs: {}, data: 'lost' });
    await t.bus.subscribe('ctl');
    await t.publisher.publish({ channel: 'ctl', attrs: {}, data: 'b' });
    await t.tick();
    await t.tick();
    expect(got).toEqual(['2:a', '3:lost', '4:b']);
    expect(t.app.writes).toBe(0);
    untap();
    await t.publisher.publish({ channel: 'ctl', attrs: {}, data: 'after' });
    await t.tick();
    expect(got).toHaveLength(3);
  });

  it('a failing tap is logged and does not stop the others', async () => {
    const t = setup();
    const got: number[] = [];
    await t.hub.tap('ctl', () => {
      throw new Error('boom');
    });
    await t.hub.tap('ctl', (env) => got.push(env.offset));
    await t.publisher.publish({ channel: 'ctl', attrs: {}, data: 'x' });
    await t.tick();
    expect(got).toEqual([1]);
  });
});

describe('Hub gap handling', () => {
  /** Publishes to the broker's history without letting the hub's node see it (a lost delivery). */
  async function publishUnseen(t: ReturnType<typeof setup>, data: string) {
    await t.bus.unsubscribe('ch');
    await t.publisher.publish({ channel: 'ch', attrs: {}, data });
    await t.bus.subscribe('ch');
  }

  it('an offset jump is repaired from history: the missing messages first, in order, no duplicate', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.tick();
    await publishUnseen(t, 'b');
    await publishUnseen(t, 'c');
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'd' });
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'e' });
    await t.tick();
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:a', '2:*:b', '3:*:c', '4:*:d', '5:*:e']);
    expect(t.insufficient).toEqual([]);
  });

  it('a bus gap report makes the hub check history and deliver what it missed', async () => {
    const t = setup();
    const c = t.conn();
    await t.hub.subscribe(c, 'sub', t.spec(), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'a' });
    await t.tick();
    await publishUnseen(t, 'b');
    t.reportGap(['ch']);
    await t.tick();
    expect(c.ws.received).toEqual(['1:*:a', '2:*:b']);
  });

  it('a gap older than the history hands every subscriber of the channel to onInsufficientState', async () => {
    const t = setup(2);
    const a = t.conn();
    const b = t.conn();
    await t.hub.subscribe(a, 'sub', t.spec(), null, () => {});
    await t.hub.subscribe(b, 'sub', t.spec({ device_id: ['1'] }), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'a' });
    await t.tick();
    for (let i = 0; i < 5; i++) await publishUnseen(t, `lost${i}`);
    await t.publisher.publish({ channel: 'ch', attrs: { device_id: 1 }, data: 'z' });
    await t.tick();
    await t.tick();
    expect(t.insufficient).toEqual(['ch', 'ch']);
    // Nothing after the gap was delivered as if it were contiguous.
    expect(a.ws.received).toEqual(['1:*:a']);
  });
});

describe("Hub: a group's only member gets frames by ws.send, and the group moves to its topic for good with a second", () => {
  it('no message is missed or doubled, and order holds, when the second member joins while messages flow', async () => {
    const t = setup();
    const a = t.conn();
    await t.hub.subscribe(a, 's', t.spec(), null, () => {});
    for (let i = 1; i <= 3; i++) await t.publisher.publish({ channel: 'ch', attrs: {}, data: `m${i}` });
    await t.tick();
    expect(a.ws.received).toEqual(['1:*:m1', '2:*:m2', '3:*:m3']);
    expect(t.app.published).toHaveLength(0);
    const b = t.conn();
    let from = -1;
    const joining = t.hub.subscribe(b, 's', t.spec(), null, (o) => (from = o.position!.offset));
    for (let i = 4; i <= 6; i++) await t.publisher.publish({ channel: 'ch', attrs: {}, data: `m${i}` });
    await joining;
    for (let i = 7; i <= 9; i++) await t.publisher.publish({ channel: 'ch', attrs: {}, data: `m${i}` });
    await t.tick();
    const frames = (first: number) => Array.from({ length: 9 - first + 1 }, (_, k) => `${first + k}:*:m${first + k}`);
    expect(a.ws.received).toEqual(frames(1));
    expect(from).toBeGreaterThanOrEqual(3);
    expect(b.ws.received).toEqual(frames(from + 1));
    // On the topic now: one publish per message, and it stays there when it is down to one member again.
    expect(t.hub.unsubscribe(a, 's')).toBe(true);
    t.app.clear();
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'm10' });
    await t.tick();
    expect([t.app.published.length, t.app.sent.length]).toEqual([1, 0]);
    expect(b.ws.received.at(-1)).toBe('10:*:m10');
    expect(a.ws.received).toHaveLength(9);
  });

  it("one socket's frames of a batch keep their order across direct and topic groups; a run of direct frames is one cork", async () => {
    const t = setup();
    const a = t.conn();
    const other = t.conn();
    await t.hub.subscribe(a, 'one', { ...t.spec(), channel: 'c1' }, null, () => {});
    await t.hub.subscribe(a, 'two', { ...t.spec(), channel: 'c2' }, null, () => {});
    await t.hub.subscribe(other, 'two', { ...t.spec(), channel: 'c2' }, null, () => {});
    const [p1, p2] = [await t.publisher.position('c1'), await t.publisher.position('c2')];
    const env = (channel: string, p: { epoch: string; offset: number }, n: number): Envelope => ({ channel, epoch: p.epoch, offset: p.offset + n, ts: Date.now(), attrs: {}, data: `${channel}.${n}` });
    const corks = a.ws.corks;
    t.hub.dispatch([env('c1', p1, 1), env('c1', p1, 2), env('c2', p2, 1), env('c1', p1, 3), env('c2', p2, 2), env('c1', p1, 4)]);
    expect(a.ws.received).toEqual([`${p1.offset + 1}:*:c1.1`, `${p1.offset + 2}:*:c1.2`, `${p2.offset + 1}:*:c2.1`, `${p1.offset + 3}:*:c1.3`, `${p2.offset + 2}:*:c2.2`, `${p1.offset + 4}:*:c1.4`]);
    expect(other.ws.received).toEqual([`${p2.offset + 1}:*:c2.1`, `${p2.offset + 2}:*:c2.2`]);
    // One cork per run of direct frames: c1.1 and c1.2 together, then c1.3, then c1.4.
    expect(a.ws.corks - corks).toBe(3);
  });

  it('lists the sockets its direct frames left backlogged, and flags a topic publish, for the slow-consumer sweep', async () => {
    const t = setup();
    const [a, b, c, d] = [t.conn(), t.conn(), t.conn(), t.conn()];
    await t.hub.subscribe(a, 's', { ...t.spec(), channel: 'c1' }, null, () => {});
    await t.hub.subscribe(b, 's', { ...t.spec(), channel: 'c2' }, null, () => {});
    const p1 = await t.publisher.position('c1');
    const p2 = await t.publisher.position('c2');
    const env = (channel: string, p: { epoch: string; offset: number }, n: number): Envelope => ({ channel, epoch: p.epoch, offset: p.offset + n, ts: Date.now(), attrs: {}, data: `${channel}.${n}` });
    t.hub.topicSentSinceSweep = false;
    a.ws.buffered = 1000;
    t.hub.dispatch([env('c1', p1, 1), env('c2', p2, 1)]);
    expect([...t.hub.backlogged]).toEqual([a]);
    expect(t.hub.topicSentSinceSweep).toBe(false);
    // A second member moves c3's group to its topic: a publish there may reach any socket.
    await t.hub.subscribe(c, 's', { ...t.spec(), channel: 'c3' }, null, () => {});
    await t.hub.subscribe(d, 's', { ...t.spec(), channel: 'c3' }, null, () => {});
    const p3 = await t.publisher.position('c3');
    t.hub.dispatch([env('c3', p3, 1)]);
    expect(t.hub.topicSentSinceSweep).toBe(true);
  });

  it('checkpoints: lists the subscriptions to a channel, as connection and subscription id, across its groups', async () => {
    const t = setup();
    const [a, b] = [t.conn(), t.conn()];
    await t.hub.subscribe(a, 'all', t.spec(), null, () => {});
    await t.hub.subscribe(a, 'one', t.spec({ device_id: ['1'] }), null, () => {});
    await t.hub.subscribe(b, 'x', t.spec({ device_id: ['1'] }), null, () => {});
    await t.hub.subscribe(b, 'other', { ...t.spec(), channel: 'elsewhere' }, null, () => {});
    const out: { conn: HubConnection; subId: string }[] = [];
    t.hub.subscriptionsOf('ch', out);
    const named = out.map((e) => `${e.conn === a ? 'a' : 'b'}:${e.subId}`).sort();
    expect(named).toEqual(['a:all', 'a:one', 'b:x']);
    out.length = 0;
    t.hub.subscriptionsOf('nowhere', out);
    expect(out).toEqual([]);
  });

  it('a closed only member gets nothing, and a group whose only member left is gone', async () => {
    const t = setup();
    const a = t.conn();
    await t.hub.subscribe(a, 's', t.spec(), null, () => {});
    a.closed = true;
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'x' });
    await t.tick();
    expect(a.ws.received).toEqual([]);
    t.hub.removeConnection(a);
    expect(t.hub.channelStats().has('ch')).toBe(false);
  });
});
