/**
 * The persistent publish channel (`/api/publish/ws`): the API key checked at the upgrade, one publish or a
 * batch per frame, acknowledged with positions (or the error form of the publish API) carrying the
 * frame's `id`, many frames in flight, order kept per channel, idempotency keys per message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
