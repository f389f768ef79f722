/**
 * Two hub features relays need, measured on fake uWS apps and sockets: a message naming its sender
 * (`SENDER_ATTR`) reaches every other member of a group — in the sender's app through the sender's own
 * socket (uWS skips the publishing socket), in other apps as usual — still one publish per app; and a
 * renderer returning null gives its groups nothing (live, replayed and conflated).
 */
import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, type Envelope } from '@switchboard/core';
import type { Registry } from 'prom-client';
import { Hub, SENDER_ATTR, type Frame, type GroupSpec, type HubConnection, type HubSocket, type Renderer, type TopicPublisher } from './hub.js';
import { EdgeMetrics } from './metrics.js';

class FakeApp implements TopicPublisher {
  publishes = 0;
  readonly topics = new Map<string, Set<FakeSocket>>();
  publish(topic: string, message: Frame): boolean {
    this.publishes++;
    for (const s of this.topics.get(topic) ?? []) s.received.push(message);
    return true;
  }
}

/** Like uWS: `publish` on a socket reaches every subscriber of the topic in its app but itself. */
class FakeSocket implements HubSocket {
  readonly received: Frame[] = [];
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
    return 1;
  }
  /** What the test says waits in the send buffer. */
  buffered = 0;
  getBufferedAmount(): number {
    return this.buffered;
  }
  cork(cb: () => void): unknown {
    cb();
    return this;
  }
  publish(topic: string, message: Frame): boolean {
    this.app.publishes++;
    for (const s of this.app.topics.get(topic) ?? []) if (s !== this) s.received.push(message);
    return true;
  }
}

type TestConn = HubConnection & { ws: FakeSocket; id: string };

function setup(renderer: (spec: GroupSpec) => Renderer = () => (env) => env.data) {
  const broker = new MemoryBroker({ historySize: 100, historyTtlSec: 60 });
  const bus = broker.node();
  const publisher = broker.node();
  const registry: Registry = createMetricsRegistry({ processMetrics: false });
  const byId = new Map<string, TestConn>();
  const hub = new Hub({
    bus,
    renderer,
    metrics: new EdgeMetrics(registry),
    logger: createLogger({ name: 'test', level: 'silent' }),
    connection: (id) => byId.get(id),
  });
  let n = 0;
  const conn = (app: FakeApp): TestConn => {
    const c: TestConn = { id: `c${++n}`, ws: new FakeSocket(app), app, closed: false, subs: new Map() };
    byId.set(c.id, c);
    return c;
  };
  const spec = (channel: string, key = ''): GroupSpec => ({
    dialect: 't',
    channel,
    filter: {},
    projection: null,
    frequencyMs: 0,
    conflateBy: null,
    render: { key, context: key },
  });
  const deliveries = async () => (await registry.getSingleMetric('switchboard_deliveries_total')!.get()).values[0]?.value ?? 0;
  const tick = () => new Promise((r) => setTimeout(r, 5));
  return { hub, publisher, bus, conn, spec, deliveries, tick };
}

describe('hub: the sender of a message is excluded', () => {
  it('every other member gets it, in every app, with one publish per app; the sender does not', async () => {
    const t = setup();
    const main = new FakeApp();
    const own = new FakeApp();
    const sender = t.conn(main);
    const peers = [t.conn(main), t.conn(main), t.conn(own)];
    for (const c of [sender, ...peers]) await t.hub.subscribe(c, 's', t.spec('ch'), null, () => {});
    main.publishes = own.publishes = 0;
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: sender.id }, data: 'hi' });
    await t.tick();
    expect(sender.ws.received).toEqual([]);
    for (const p of peers) expect(p.ws.received).toEqual(['hi']);
    expect([main.publishes, own.publishes]).toEqual([1, 1]);
    expect(await t.deliveries()).toBe(3);
  });

  it("a group's only member that sent the message gets nothing of it (sent directly, no topic), others' messages yes", async () => {
    const t = setup();
    const app = new FakeApp();
    const only = t.conn(app);
    await t.hub.subscribe(only, 's', t.spec('ch'), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: only.id }, data: 'mine' });
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: 'edge-b:9' }, data: 'theirs' });
    await t.tick();
    expect(only.ws.received).toEqual(['theirs']);
    expect(app.publishes).toBe(0);
    expect(await t.deliveries()).toBe(1);
  });

  it('a sender that is not a member of the group, or not on this node, excludes no one', async () => {
    const t = setup();
    const app = new FakeApp();
    const elsewhere = t.conn(app);
    const member = t.conn(app);
    await t.hub.subscribe(elsewhere, 's', t.spec('other'), null, () => {});
    await t.hub.subscribe(member, 's', t.spec('ch'), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: elsewhere.id }, data: '1' });
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: 'edge-b:9' }, data: '2' });
    await t.tick();
    expect(member.ws.received).toEqual(['1', '2']);
    expect(elsewhere.ws.received).toEqual([]);
  });

  it('the sender still gets messages of others, and its own once it has left and rejoined', async () => {
    const t = setup();
    const app = new FakeApp();
    const a = t.conn(app);
    const b = t.conn(app);
    for (const c of [a, b]) await t.hub.subscribe(c, 's', t.spec('ch'), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: a.id }, data: 'from a' });
    await t.publisher.publish({ channel: 'ch', attrs: { [SENDER_ATTR]: b.id }, data: 'from b' });
    await t.tick();
    expect(a.ws.received).toEqual(['from b']);
    expect(b.ws.received).toEqual(['from a']);
  });
});

describe('hub: a renderer may give a group nothing', () => {
  const skipping = (spec: GroupSpec): Renderer => (env: Envelope) => (spec.render?.key === 'picky' && env.attrs.skip === true ? null : env.data);

  it('live: the picky group gets nothing of what its renderer refuses, the others get everything', async () => {
    const t = setup(skipping);
    const app = new FakeApp();
    const picky = t.conn(app);
    const plain = t.conn(app);
    await t.hub.subscribe(picky, 's', t.spec('ch', 'picky'), null, () => {});
    await t.hub.subscribe(plain, 's', t.spec('ch'), null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { skip: true }, data: 'x' });
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'y' });
    await t.tick();
    expect(picky.ws.received).toEqual(['y']);
    expect(plain.ws.received).toEqual(['x', 'y']);
    expect(await t.deliveries()).toBe(3);
  });

  it('replayed (recovery) and conflated messages are skipped the same way', async () => {
    const t = setup(skipping);
    const app = new FakeApp();
    await t.publisher.publish({ channel: 'ch', attrs: { skip: true }, data: 'old-x' });
    await t.publisher.publish({ channel: 'ch', attrs: {}, data: 'old-y' });
    const epoch = (await t.bus.position('ch')).epoch;
    const recovering = t.conn(app);
    await t.hub.subscribe(recovering, 's', t.spec('ch', 'picky'), { epoch, offset: 0 }, () => {});
    expect(recovering.ws.received).toEqual(['old-y']);
    const conflating = t.conn(app);
    await t.hub.subscribe(conflating, 's', { ...t.spec('ch', 'picky'), frequencyMs: 50 }, null, () => {});
    await t.publisher.publish({ channel: 'ch', attrs: { skip: true }, data: 'late-x' });
    await new Promise((r) => setTimeout(r, 120));
    expect(conflating.ws.received).toEqual([]);
  });
});
