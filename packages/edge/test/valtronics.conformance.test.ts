/**
 * Conformance of the `valtronics` dialect with its seed (002): the seed's own client frames are
 * replayed over real WebSockets against a real uWS edge, and the server frames are compared with the
 * seed's "Message Format" examples.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { valtronicsSeed } from '@switchboard/testkit';

const { CLIENT_FRAMES, SERVER_FRAMES } = valtronicsSeed;
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0 });
});
afterAll(async () => {
  await node.close();
});

const stripPos = (m: Record<string, unknown>) => {
  const { offset, epoch, ...rest } = m;
  expect(typeof offset).toBe('number');
  expect(typeof epoch).toBe('string');
  return rest;
};

describe('valtronics conformance (seed 002)', () => {
  it('auth with a JWT answers auth_response success, as the Python client waits for', async () => {
    const c = await node.connect('/ws');
    c.send(CLIENT_FRAMES.auth.replace('your-jwt-token', await node.token('alice')));
    const res = await c.nextOfType('auth_response');
    expect(res).toMatchObject({ type: 'auth_response', success: true, user_id: 'alice' });
  });

  it('the seed placeholder token is refused with invalid_token, and the connection stays usable', async () => {
    const c = await node.connect('/ws');
    c.send(CLIENT_FRAMES.auth);
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'invalid_token' });
    c.send(CLIENT_FRAMES.ping);
    expect(await c.nextOfType('pong')).toMatchObject({ timestamp: '2024-01-01T12:00:00Z' });
  });

  it('JS client: connect, auth and subscribe back to back without waiting — both succeed in order', async () => {
    const c = await node.connect('/ws');
    const token = await node.token('js-user');
    c.send({ type: 'auth', token });
    c.send(CLIENT_FRAMES.jsSubscribeTelemetry);
    c.send(CLIENT_FRAMES.jsSubscribeAlerts);
    const [a, s1, s2] = await c.take(3);
    expect(a).toMatchObject({ type: 'auth_response', success: true });
    expect(s1).toMatchObject({ type: 'subscribe_response', channel: 'telemetry', success: true });
    expect(s2).toMatchObject({ type: 'subscribe_response', channel: 'alerts', success: true });
  });

  it('the done-when scenario: device 1, temperature only — exactly one telemetry_update', async () => {
    const c = await node.authed('alice');
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: 1, metrics: ['temperature'] });
    await c.nextOfType('subscribe_response');
    const data = SERVER_FRAMES.telemetry_update.telemetry;
    expect((await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 1 }, data })).status).toBe(200);
    expect((await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 2 }, data })).status).toBe(200);
    const got = await c.collect(300, (m) => m.type === 'telemetry_update');
    expect(got).toHaveLength(1);
    expect(stripPos(got[0]!)).toEqual({
      type: 'telemetry_update',
      channel: 'telemetry',
      device_id: 1,
      telemetry: { temperature: data.temperature },
    });
  });

  it('telemetry example (metrics + real-time): the seed frame, projected', async () => {
    const c = await node.authed('t');
    c.send(CLIENT_FRAMES.telemetryExample);
    expect(await c.nextOfType('subscribe_response')).toMatchObject({
      channel: 'telemetry',
      filters: { device_id: [1], metrics: ['humidity', 'temperature'], frequency: 'real-time' },
    });
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 1 }, data: { ...SERVER_FRAMES.telemetry_update.telemetry, pressure: { value: 1 } } });
    expect(stripPos(await c.nextOfType('telemetry_update'))).toEqual(SERVER_FRAMES.telemetry_update);
  });

  it('alerts example: the seed alert frame for severity critical on device 1; others filtered out', async () => {
    const c = await node.authed('a');
    c.send(CLIENT_FRAMES.alertsExample);
    await c.nextOfType('subscribe_response');
    const { type, channel, device_id, severity, ...data } = SERVER_FRAMES.alert;
    void type;
    void channel;
    await node.publishHttp({ channel: 'alerts', attrs: { device_id, severity: 'info' }, data });
    await node.publishHttp({ channel: 'alerts', attrs: { device_id: 2, severity }, data });
    await node.publishHttp({ channel: 'alerts', attrs: { device_id, severity }, data });
    const got = await c.collect(300, (m) => m.type === 'alert');
    expect(got.map(stripPos)).toEqual([SERVER_FRAMES.alert]);
  });

  it('JS client alerts subscription (top-level severity) receives critical and warning only', async () => {
    const c = await node.authed('a2');
    c.send(CLIENT_FRAMES.jsSubscribeAlerts);
    await c.nextOfType('subscribe_response');
    for (const severity of ['critical', 'info', 'warning'])
      await node.publishHttp({ channel: 'alerts', data: { alert_id: 1, severity, title: severity } });
    const got = await c.collect(300, (m) => m.type === 'alert');
    expect(got.map((m) => m.severity)).toEqual(['critical', 'warning']);
  });

  it('devices example: device list and status types; the seed device_status_update frame', async () => {
    const c = await node.authed('d');
    c.send(CLIENT_FRAMES.devicesExample);
    await c.nextOfType('subscribe_response');
    const { type, channel, ...data } = SERVER_FRAMES.device_status_update;
    void type;
    void channel;
    await node.publishHttp({ channel: 'devices', data: { ...data, device_id: 9 } });
    await node.publishHttp({ channel: 'devices', data: { ...data, new_status: 'rebooting' } });
    await node.publishHttp({ channel: 'devices', data });
    const got = await c.collect(300, (m) => m.type === 'device_status_update');
    expect(got.map(stripPos)).toEqual([SERVER_FRAMES.device_status_update]);
  });

  it('Python client: subscribe("devices") with no filters receives every device update', async () => {
    const c = await node.authed('py');
    c.send(CLIENT_FRAMES.pySubscribeDevices);
    await c.nextOfType('subscribe_response');
    await node.publishHttp({ channel: 'devices', data: { device_id: 1, new_status: 'online' } });
    await node.publishHttp({ channel: 'devices', data: { device_id: 2, new_status: 'offline' } });
    expect((await c.take(2, (m) => m.type === 'device_status_update')).map((m) => m.device_id)).toEqual([1, 2]);
  });

  it('system channel: this node’s real cpu/memory/disk/connections at the subscription frequency', async () => {
    const c = await node.authed('sys');
    c.send({ ...JSON.parse(CLIENT_FRAMES.systemExample), filters: { metrics: ['cpu_usage', 'memory_usage', 'active_connections'], frequency: '200ms' } });
    expect(await c.nextOfType('subscribe_response')).toMatchObject({ channel: 'system', filters: { frequency: '200ms' } });
    const t0 = Date.now();
    const [u1, u2] = await c.take(2, (m) => m.type === 'system_status_update', 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    const m = u1!.metrics as Record<string, number>;
    expect(Object.keys(m).sort()).toEqual(['active_connections', 'cpu_usage', 'memory_usage']);
    expect(m.active_connections).toBeGreaterThanOrEqual(1);
    expect(m.memory_usage).toBeGreaterThan(0);
    expect(m.memory_usage).toBeLessThanOrEqual(100);
    expect(m.cpu_usage).toBeGreaterThanOrEqual(0);
    expect(typeof u1!.timestamp).toBe('string');
    expect(u2!.offset as number).toBeGreaterThan(u1!.offset as number);
  });

  it('system without metrics reports all four figures, disk included', async () => {
    const c = await node.authed('sys2');
    c.send({ type: 'subscribe', channel: 'system', frequency: '100ms' });
    await c.nextOfType('subscribe_response');
    const u = await c.nextOfType('system_status_update', 2000);
    const m = u.metrics as Record<string, number>;
    expect(Object.keys(m).sort()).toEqual(['active_connections', 'cpu_usage', 'disk_usage', 'memory_usage']);
    expect(m.disk_usage).toBeGreaterThan(0);
  });

  it('ping answers pong echoing the timestamp (seed and Python client forms)', async () => {
    const c = await node.connect('/ws');
    c.send(CLIENT_FRAMES.ping);
    expect(await c.nextOfType('pong')).toMatchObject({ type: 'pong', timestamp: '2024-01-01T12:00:00Z' });
    c.send(CLIENT_FRAMES.pyPing);
    expect(await c.nextOfType('pong')).toMatchObject({ timestamp: '2024-01-01T12:00:00.123456' });
  });

  it('batch (the seed MessageBatcher): each message answered in order', async () => {
    const c = await node.authed('b');
    c.send(CLIENT_FRAMES.batch);
    const [p, s] = await c.take(2);
    expect(p).toMatchObject({ type: 'pong' });
    expect(s).toMatchObject({ type: 'subscribe_response', channel: 'telemetry' });
  });

  it('a batch of auth + subscribe before auth works: requests run in order', async () => {
    const c = await node.connect('/ws');
    c.send({ type: 'batch', messages: [{ type: 'auth', token: await node.token('batcher') }, { type: 'subscribe', channel: 'alerts' }] });
    const [a, s] = await c.take(2);
    expect(a).toMatchObject({ type: 'auth_response', success: true });
    expect(s).toMatchObject({ type: 'subscribe_response', channel: 'alerts', success: true });
  });

  it('unsubscribe (JS client) stops updates; unsubscribe of one device narrows the subscription', async () => {
    const c = await node.authed('u');
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: [1, 2] });
    await c.nextOfType('subscribe_response');
    c.send({ type: 'unsubscribe', channel: 'telemetry', device_id: 1 });
    expect(await c.nextOfType('unsubscribe_response')).toMatchObject({ channel: 'telemetry', success: true, device_id: [2] });
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 1 }, data: { t: 1 } });
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 2 }, data: { t: 2 } });
    expect((await c.take(1, (m) => m.type === 'telemetry_update'))[0]).toMatchObject({ device_id: 2 });
    c.send(CLIENT_FRAMES.jsUnsubscribe);
    expect(await c.nextOfType('unsubscribe_response')).toMatchObject({ channel: 'telemetry', success: true });
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 2 }, data: { t: 3 } });
    expect(await c.collect(200, (m) => m.type === 'telemetry_update')).toHaveLength(0);
    c.send(CLIENT_FRAMES.jsUnsubscribe);
    expect(await c.nextOfType('error')).toMatchObject({ code: 'not_subscribed', channel: 'telemetry' });
  });

  it('re-subscribing to a channel replaces its filters (one subscription per channel, as the seed clients keep)', async () => {
    const c = await node.authed('r');
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: 1 });
    await c.nextOfType('subscribe_response');
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 1 }, data: { t: 1 } });
    await c.nextOfType('telemetry_update');
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: 2 });
    await c.nextOfType('subscribe_response');
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 1 }, data: { t: 2 } });
    await node.publishHttp({ channel: 'telemetry', attrs: { device_id: 2 }, data: { t: 3 } });
    const got = await c.collect(300, (m) => m.type === 'telemetry_update');
    expect(got.map((m) => m.device_id)).toEqual([2]);
  });

  it('specialised endpoints scope the connection to their channel', async () => {
    const c = await node.authed('e', '/ws/alerts');
    c.send({ type: 'subscribe', severity: 'critical' });
    expect(await c.nextOfType('subscribe_response')).toMatchObject({ channel: 'alerts' });
    c.send({ type: 'subscribe', channel: 'telemetry' });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'channel_forbidden', channel: 'telemetry' });
    for (const path of ['/ws/telemetry', '/ws/system', '/ws/devices']) {
      const x = await node.authed('e', path);
      x.send({ type: 'subscribe' });
      expect(await x.nextOfType('subscribe_response')).toMatchObject({ channel: path.slice(4) });
    }
  });

  it('frequency conflates: the latest update per device once per interval', async () => {
    const c = await node.authed('f');
    c.send({ type: 'subscribe', channel: 'telemetry', filters: { frequency: '300ms' } });
    await c.nextOfType('subscribe_response');
    const messages = [];
    for (let i = 1; i <= 5; i++) messages.push({ channel: 'telemetry', attrs: { device_id: 1 }, data: { v: i } });
    for (let i = 1; i <= 3; i++) messages.push({ channel: 'telemetry', attrs: { device_id: 2 }, data: { v: 10 + i } });
    await node.publishHttp({ messages });
    const got = await c.take(2, (m) => m.type === 'telemetry_update', 2000);
    const byDevice = Object.fromEntries(got.map((m) => [m.device_id, (m.telemetry as { v: number }).v]));
    expect(byDevice).toEqual({ 1: 5, 2: 13 });
    expect(await c.collect(400, (m) => m.type === 'telemetry_update')).toHaveLength(0);
  });

  it('every update carries offset and epoch; recover replays what was missed, in order, then live', async () => {
    const c = await node.authed('rec');
    c.send({ type: 'subscribe', channel: 'alerts' });
    const sub = await c.nextOfType('subscribe_response');
    await node.publishHttp({ channel: 'alerts', data: { alert_id: 1 } });
    const first = await c.nextOfType('alert');
    expect(first.epoch).toBe(sub.epoch);
    expect(first.offset).toBe((sub.offset as number) + 1);
    await c.close();
    for (let i = 2; i <= 6; i++) await node.publishHttp({ channel: 'alerts', data: { alert_id: i } });
    const back = await node.authed('rec');
    back.send({ type: 'subscribe', channel: 'alerts', recover: { epoch: first.epoch, offset: first.offset } });
    expect(await back.nextOfType('subscribe_response')).toMatchObject({ recovered: true, replayed: 5 });
    const replayed = await back.take(5, (m) => m.type === 'alert');
    expect(replayed.map((m) => m.alert_id)).toEqual([2, 3, 4, 5, 6]);
    await node.publishHttp({ channel: 'alerts', data: { alert_id: 7 } });
    expect((await back.nextOfType('alert')).alert_id).toBe(7);

    const stale = await node.authed('rec');
    stale.send({ type: 'subscribe', channel: 'alerts', recover: { epoch: 'other-epoch', offset: 1 } });
    expect(await stale.nextOfType('subscribe_response')).toMatchObject({ recovered: false, replayed: 0 });
    expect(await stale.collect(150, (m) => m.type === 'alert')).toHaveLength(0);
  });

  it('subscribers with the same filter share one group; a message is rendered once per group', async () => {
    const own = await startTestNode({ newConnectionsPerUserPerMin: 0 });
    const node = own;
    const before = await node.metric('switchboard_subscriber_groups');
    const cs = await Promise.all(Array.from({ length: 5 }, (_, i) => node.authed(`g${i}`)));
    for (const c of cs) c.send({ type: 'subscribe', channel: 'devices', device_id: 42 });
    for (const c of cs) await c.nextOfType('subscribe_response');
    expect(await node.metric('switchboard_subscriber_groups')).toBe(before + 1);
    const d0 = await node.metric('switchboard_deliveries_total');
    await node.publishHttp({ channel: 'devices', data: { device_id: 42, new_status: 'online' } });
    for (const c of cs) expect(await c.nextOfType('device_status_update')).toMatchObject({ device_id: 42 });
    expect((await node.metric('switchboard_deliveries_total')) - d0).toBe(5);
    await own.close();
  });
});
