/**
 * The persistent publish channel (`/api/publish/ws`): the API key checked at the upgrade, one publish or a
 * batch per frame, acknowledged with positions (or the error form of the publish API) carrying the
 * frame's `id`, many frames in flight, order kept per channel, idempotency keys per message; flow control
 * (frames past the in-flight limit refused whole, a publisher that does not read its acknowledgements
 * closed with 4008 instead of losing any).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '@switchboard/bus';
import { TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0, apiKeys: ['all-key-0123456789', 'acme=acme-key-0123456789'] });
});
afterAll(async () => {
  await node.close();
});

const publisher = (key = 'all-key-0123456789') => TestClient.connect(`${node.wsUrl}/api/publish/ws`, { headers: { authorization: `Bearer ${key}` } });

describe('persistent publish channel', () => {
  it('refuses an upgrade without a valid API key', async () => {
    await expect(TestClient.connect(`${node.wsUrl}/api/publish/ws`)).rejects.toThrow(/401/);
    await expect(publisher('nope')).rejects.toThrow(/401/);
  });

  it('acknowledges each frame with its position and id; subscribers get the messages', async () => {
    const sub = await node.authed('s');
    sub.send({ type: 'subscribe', channel: 'alerts' });
    await sub.nextOfType('subscribe_response');
    const p = await publisher();
    p.send({ id: 7, channel: 'alerts', data: { alert_id: 'a' } });
    expect(await p.next()).toMatchObject({ id: 7, channel: 'alerts', offset: 1 });
    p.send({ id: 'b', messages: [{ channel: 'alerts', data: { alert_id: 'b1' } }, { channel: 'alerts', data: { alert_id: 'b2' } }] });
    expect(await p.next()).toMatchObject({ id: 'b', results: [{ offset: 2 }, { offset: 3 }] });
    expect((await sub.take(3, (m) => m.type === 'alert')).map((m) => m.alert_id)).toEqual(['a', 'b1', 'b2']);
  });

  it('many frames in flight: every one acknowledged, offsets in the order they were sent', async () => {
    const p = await publisher();
    const N = 500;
    for (let i = 0; i < N; i++) p.send({ id: i, channel: 'telemetry', attrs: { device_id: 1 }, data: { n: { value: i } } });
    const acks = await p.take(N, () => true, 10_000);
    const byId = new Map(acks.map((a) => [a.id as number, a.offset as number]));
    const offsets = Array.from({ length: N }, (_, i) => byId.get(i)!);
    expect(offsets).toEqual(offsets.slice().sort((a, b) => a - b));
    expect(new Set(offsets).size).toBe(N);
  });

  it('counts every acknowledged message in switchboard_published_total{source="socket"}', async () => {
    const counted = async () => (await node.registry.getSingleMetric('switchboard_published_total')!.get()).values.find((v) => v.labels.source === 'socket')?.value ?? 0;
    const before = await counted();
    const p = await publisher();
    for (let i = 0; i < 20; i++) p.send({ id: i, channel: 'alerts', data: { n: i } });
    p.send({ id: 'batch', messages: [{ channel: 'alerts', data: { n: 'a' } }, { channel: 'alerts', data: { n: 'b' } }] });
    p.send({ id: 'bad', channel: 'system', data: {} });
    expect(await p.take(22, () => true)).toHaveLength(22);
    expect((await counted()) - before).toBe(22);
  });

  it('answers errors in the publish API form and keeps the socket open; idempotency keys and tenant scopes hold', async () => {
    const p = await publisher('acme-key-0123456789');
    p.send('not json');
    expect(await p.next()).toMatchObject({ error: 'invalid_json' });
    p.send({ id: 1, tenant: 'globex', channel: 'alerts', data: {} });
    expect(await p.next()).toMatchObject({ id: 1, error: 'forbidden' });
    p.send({ id: 2, channel: 'nope', data: {} });
    expect(await p.next()).toMatchObject({ id: 2, error: 'unknown_channel' });
    p.send({ id: 3, channel: 'alerts', data: { alert_id: 'x' }, idempotency_key: 'k1' });
    const first = await p.next();
    p.send({ id: 4, channel: 'alerts', data: { alert_id: 'x' }, idempotency_key: 'k1' });
    expect(await p.next()).toEqual({ id: 4, channel: 'alerts', offset: first.offset, epoch: first.epoch, duplicate: true });
    expect(p.open).toBe(true);
  });
});

/** A bus whose publishes wait between `hold()` and `release()`: acknowledgements wait, as when Redis is slow. */
function holdingBus(bus: Bus): { bus: Bus; hold(): void; release(): void; held(): number } {
  let gate: Promise<void> | null = null;
  let open = () => {};
  let held = 0;
  const wait = async <T>(publish: () => Promise<T>): Promise<T> => {
    if (gate) {
      held++;
      await gate;
    }
    return publish();
  };
  const wrapped = new Proxy(bus, {
    get(target, key) {
      if (key === 'publish') return (req: Parameters<Bus['publish']>[0]) => wait(() => target.publish(req));
      if (key === 'publishBatch') return (reqs: Parameters<Bus['publishBatch']>[0]) => wait(() => target.publishBatch(reqs));
      const v: unknown = Reflect.get(target, key);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    bus: wrapped,
    hold: () => {
      gate = new Promise<void>((r) => (open = r));
    },
    release: () => {
      gate = null;
      held = 0;
      open();
    },
    held: () => held,
  };
}

describe('publish socket flow control', () => {
  it('refuses a frame whole when it would pass the in-flight limit, publishes nothing of it, and takes frames again once acknowledged', async () => {
    let hold!: ReturnType<typeof holdingBus>;
    const limited = await startTestNode({ apiKeys: ['all-key-0123456789'], publishSocketMaxInFlight: 5 }, { wrapBus: (b) => (hold = holdingBus(b)).bus });
    try {
      const sub = await limited.authed('s');
      sub.send({ type: 'subscribe', channel: 'alerts' });
      await sub.nextOfType('subscribe_response');
      const p = await TestClient.connect(`${limited.wsUrl}/api/publish/ws`, { headers: { authorization: 'Bearer all-key-0123456789' } });
      hold.hold();
      const batch = (id: string, ...names: string[]) => ({ id, messages: names.map((n) => ({ channel: 'alerts', data: { alert_id: n } })) });
      p.send(batch('a', 'a1', 'a2', 'a3'));
      p.send({ id: 'b', channel: 'alerts', data: { alert_id: 'b' } });
      // 4 in flight: 2 more would make 6.
      p.send(batch('c', 'c1', 'c2'));
      expect(await p.next()).toMatchObject({ id: 'c', error: 'too_many_in_flight' });
      p.send({ id: 'd', channel: 'alerts', data: { alert_id: 'd' } });
      p.send({ id: 'e', channel: 'alerts', data: { alert_id: 'e' } });
      expect(await p.next()).toMatchObject({ id: 'e', error: 'too_many_in_flight' });
      expect(hold.held()).toBe(3);
      hold.release();
      const acks = await p.take(3, () => true);
      expect(acks.map((a) => a.id)).toEqual(['a', 'b', 'd']);
      expect((await sub.take(5, (m) => m.type === 'alert')).map((m) => m.alert_id)).toEqual(['a1', 'a2', 'a3', 'b', 'd']);
      // Nothing in flight now: a frame of the limit's size goes through.
      p.send(batch('f', 'f1', 'f2', 'f3', 'f4', 'f5'));
      expect(await p.next()).toMatchObject({ id: 'f', results: [{ offset: 6 }, { offset: 7 }, { offset: 8 }, { offset: 9 }, { offset: 10 }] });
      expect(await limited.metric('switchboard_client_errors_total', { dialect: 'api', code: 'too_many_in_flight' })).toBe(2);
      expect(p.open).toBe(true);
    } finally {
      await limited.close();
    }
  });

  it('closes a publisher that stopped reading its acknowledgements with 4008 once they pass four times the backpressure limit, and keeps serving others', async () => {
    const small = await startTestNode({ apiKeys: ['all-key-0123456789'], maxBackpressureBytes: 4096 });
    try {
      const p = await TestClient.connect(`${small.wsUrl}/api/publish/ws`, { headers: { authorization: 'Bearer all-key-0123456789' } });
      const socket = (p.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      // Acknowledgements of 1,000 messages each (~60 KB): past what the kernel's loopback buffers hold.
      const messages = Array.from({ length: 1000 }, (_, i) => ({ channel: 'telemetry', attrs: { device_id: 1 }, data: { v: i } }));
      const frames = 400;
      for (let i = 0; i < frames; i++) p.send({ id: i, messages });
      const other = await TestClient.connect(`${small.wsUrl}/api/publish/ws`, { headers: { authorization: 'Bearer all-key-0123456789' } });
      await new Promise((r) => setTimeout(r, 1500));
      other.send({ id: 'x', channel: 'alerts', data: {} });
      expect(await other.next()).toMatchObject({ id: 'x', offset: 1 });
      socket.resume();
      const closed = await p.closed;
      expect(closed.code).toBe(4008);
      expect(await small.metric('switchboard_slow_consumer_disconnects_total', { dialect: 'api', reader: 'slow' })).toBe(1);
      // Every acknowledgement it did get is whole; the ones after the close never came.
      const acks = p.frames.filter((f) => typeof f.json === 'object' && f.json !== null);
      expect(acks.length).toBeGreaterThan(0);
      expect(acks.length).toBeLessThan(frames);
      for (const a of acks) expect((a.json as { results: unknown[] }).results).toHaveLength(1000);
    } finally {
      await small.close();
    }
  }, 30_000);
});
