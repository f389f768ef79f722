/**
 * Hostile and malformed input on the `valtronics` dialect: each case gets the dialect's error, the
 * connection keeps working (or closes with its documented code), the node never crashes, and a
 * bystander subscriber loses nothing meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { CLOSE_CODES } from '@switchboard/core';
import type { TestClient } from '@switchboard/testkit';
import { valtronicsConfig } from '../src/dialects/valtronics/config.js';
import { eventually, startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
let bystander: TestClient;
let published = 0;

async function publishTick(): Promise<void> {
  published++;
  await node.publishHttp({ channel: 'alerts', data: { alert_id: published } });
}

let probe = 0;
async function stillWorks(c: TestClient): Promise<void> {
  const timestamp = `alive-${++probe}`;
  c.send({ type: 'ping', timestamp });
  expect(await c.next((m) => m.type === 'pong' && m.timestamp === timestamp)).toMatchObject({ timestamp });
}

beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000 });
  bystander = await node.authed('bystander');
  bystander.send({ type: 'subscribe', channel: 'alerts' });
  await bystander.nextOfType('subscribe_response');
});

afterAll(async () => {
  // Nothing the bystander subscribed to was lost while the others misbehaved.
  const got = await bystander.take(published, (m) => m.type === 'alert', 5000);
  expect(got.map((m) => m.alert_id)).toEqual(Array.from({ length: published }, (_, i) => i + 1));
  await node.close();
});

describe('valtronics bad input: error reply, connection keeps working', () => {
  const cases: [string, unknown, string][] = [
    ['invalid JSON', '{"type": "subscribe", "channel": ', 'invalid_json'],
    ['plain text', 'hello', 'invalid_json'],
    ['unknown type', { type: 'teleport' }, 'unknown_type'],
    ['missing type', { channel: 'telemetry' }, 'invalid_message'],
    ['wrong type of type', { type: ['auth'] }, 'invalid_message'],
    ['JSON array', [1, 2], 'invalid_message'],
    ['JSON null', 'null', 'invalid_message'],
    ['channel of the wrong type', { type: 'subscribe', channel: 5 }, 'invalid_message'],
    ['unknown channel', { type: 'subscribe', channel: 'payroll' }, 'unknown_channel'],
    ['unknown filter', { type: 'subscribe', channel: 'telemetry', filters: { colour: 'red' } }, 'invalid_filter'],
    ['bad frequency', { type: 'subscribe', channel: 'telemetry', frequency: 'sometimes' }, 'invalid_filter'],
    ['__proto__ key', '{"type":"subscribe","channel":"alerts","filters":{"__proto__":{"polluted":true}}}', 'forbidden_key'],
    ['constructor key', '{"type":"subscribe","channel":"alerts","constructor":{"prototype":{"x":1}}}', 'forbidden_key'],
    ['deep nesting', `{"type":"subscribe","channel":"alerts","x":${'{"a":'.repeat(30)}1${'}'.repeat(30)}}`, 'too_deep'],
    ['batch too large', { type: 'batch', messages: Array.from({ length: 51 }, () => ({ type: 'ping' })) }, 'batch_too_large'],
    ['batch not an array', { type: 'batch', messages: 'ping' }, 'invalid_message'],
    ['unsubscribe of nothing', { type: 'unsubscribe', channel: 'devices' }, 'not_subscribed'],
  ];
  for (const [name, frame, code] of cases) {
    it(name, async () => {
      const c = await node.authed('bad');
      c.send(frame);
      const err = await c.nextOfType('error');
      expect(err).toMatchObject({ type: 'error', code });
      expect(typeof err.message).toBe('string');
      await publishTick();
      await stillWorks(c);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  }

  it('a frame refused for a forbidden key or its depth keeps its request id in the error', async () => {
    const c = await node.authed('bad');
    c.send('{"type":"subscribe","id":"req-7","channel":"alerts","filters":{"__proto__":{"polluted":true}}}');
    expect(await c.nextOfType('error')).toMatchObject({ code: 'forbidden_key', id: 'req-7' });
    c.send(`{"id":42,"type":"ping","x":${'['.repeat(40)}${']'.repeat(40)}}`);
    expect(await c.nextOfType('error')).toMatchObject({ code: 'too_deep', id: 42 });
    await stillWorks(c);
  });

  it('subscribe before auth gets not_authenticated, then auth and subscribe work', async () => {
    const c = await node.connect();
    c.send({ type: 'subscribe', channel: 'telemetry', id: 'early' });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'not_authenticated', id: 'early', channel: 'telemetry' });
    c.send({ type: 'unsubscribe', channel: 'telemetry' });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'not_authenticated' });
    c.send({ type: 'auth', token: await node.token('late') });
    await c.nextOfType('auth_response');
    c.send({ type: 'subscribe', channel: 'telemetry' });
    expect(await c.nextOfType('subscribe_response')).toMatchObject({ success: true });
  });

  it('a frame over 1 KB gets message_too_large; the connection stays open', async () => {
    const c = await node.authed('big');
    c.send({ type: 'ping', timestamp: 'x'.repeat(1100) });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'message_too_large' });
    await publishTick();
    await stillWorks(c);
  });

  it('a frame over the hard frame limit is dropped by uWS (the client sees 1006); the node carries on', async () => {
    const c = await node.authed('huge');
    c.send('x'.repeat(node.config.maxPayloadBytes + 10));
    expect((await c.closed).code).toBe(CLOSE_CODES.frame_too_large_abort.code);
    await publishTick();
  });

  it('binary frames get invalid_message', async () => {
    const c = await node.authed('bin');
    c.send(Buffer.from([0x82, 0xa4, 0x74, 0x79]));
    expect(await c.nextOfType('error')).toMatchObject({ code: 'invalid_message' });
    await stillWorks(c);
  });

  it('bad messages inside a batch get their own errors; the good ones are served', async () => {
    const c = await node.authed('mixed');
    c.send({ type: 'batch', messages: [{ type: 'ping', timestamp: 1 }, { type: 'nope' }, 7, { type: 'batch', messages: [] }, { type: 'ping', timestamp: 2 }] });
    const got = await c.take(5);
    expect(got.map((m) => m.type === 'error' ? m.code : m.type)).toEqual(['pong', 'unknown_type', 'invalid_message', 'invalid_message', 'pong']);
  });
});

describe('valtronics auth failures', () => {
  it('an expired token gets expired_token, a forged one invalid_token', async () => {
    const c = await node.connect();
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setIssuer(node.config.jwtIssuer)
      .setAudience(node.config.jwtAudience)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(node.config.jwtSecret));
    c.send({ type: 'auth', token: expired });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'expired_token' });
    c.send({ type: 'auth', token: expired.slice(0, -4) + 'AAAA' });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'invalid_token' });
    await stillWorks(c);
  });

  it('too many failed auths close the connection with 4003', async () => {
    const c = await node.connect();
    for (let i = 0; i < valtronicsConfig.of(node.config).maxAuthFailures; i++) c.send({ type: 'auth', token: 'nope' });
    expect((await c.closed).code).toBe(CLOSE_CODES.auth_failed.code);
  });

  it('a refreshed token for the same user is accepted; another user is refused', async () => {
    const c = await node.authed('refresh');
    c.send({ type: 'auth', token: await node.token('refresh') });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: true });
    c.send({ type: 'auth', token: await node.token('mallory') });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'user_mismatch' });
    await stillWorks(c);
  });
});

describe('valtronics limits', () => {
  it('more than 100 messages per second get rate_limited, counted by rule', async () => {
    const c = await node.authed('flood');
    for (let i = 0; i < 150; i++) c.send({ type: 'ping', timestamp: i });
    const errors = await c.collect(500, (m) => m.type === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(40);
    expect(errors.every((e) => e.code === 'rate_limited')).toBe(true);
    expect(await node.metric('switchboard_rate_limit_rejections_total', { rule: 'messages_per_sec' })).toBeGreaterThanOrEqual(40);
    await new Promise((r) => setTimeout(r, 1100));
    await stillWorks(c);
  });

  it('a batch pays one token per message', async () => {
    const c = await node.authed('batchflood');
    // The bucket holds 100; auth took one. Two batches of 49 fit, a third does not.
    const batch = { type: 'batch', messages: Array.from({ length: 49 }, () => ({ type: 'ping' })) };
    c.send(batch);
    c.send(batch);
    c.send(batch);
    const got = await c.collect(400);
    expect(got.filter((m) => m.type === 'pong')).toHaveLength(98);
    expect(got.filter((m) => m.code === 'rate_limited')).toHaveLength(1);
  });

  it('an origin outside the allow-list is refused before the upgrade', async () => {
    const strict = await startTestNode({ allowedOrigins: ['https://app.example'] });
    await expect(strict.connect('/ws', { origin: 'https://evil.example' })).rejects.toThrow(/403/);
    const ok = await strict.connect('/ws', { origin: 'https://app.example' });
    await stillWorks(ok);
    const noOrigin = await strict.connect('/ws');
    await stillWorks(noOrigin);
    expect(await strict.metric('switchboard_upgrade_rejections_total', { reason: 'origin' })).toBe(1);
    await strict.close();
  });
});

describe('valtronics connection rules (own nodes)', () => {
  it('sustained flooding closes with 4029', async () => {
    const n = await startTestNode({ rateLimitCloseAfter: 20 });
    const c = await n.authed('abuser');
    for (let i = 0; i < 200; i++) c.send({ type: 'ping' });
    expect((await c.closed).code).toBe(CLOSE_CODES.rate_limit_abuse.code);
    await n.close();
  });

  it('no auth within the timeout closes with 4001', async () => {
    const n = await startTestNode({ authTimeoutMs: 300 });
    const c = await n.connect();
    const authedOne = await n.authed('ok');
    expect((await c.closed).code).toBe(CLOSE_CODES.auth_timeout.code);
    await new Promise((r) => setTimeout(r, 1200));
    await stillWorks(authedOne);
    await n.close();
  });

  it('concurrent connections per user and in total are capped; a close frees a place', async () => {
    const n = await startTestNode({ maxConnectionsPerUser: 2, maxConnectionsTotal: 3, newConnectionsPerUserPerMin: 0 });
    const a1 = await n.authed('u');
    await n.authed('u');
    const a3 = await n.connect();
    a3.send({ type: 'auth', token: await n.token('u') });
    expect(await a3.nextOfType('auth_response')).toMatchObject({ success: false, error: 'connection_limit' });
    expect((await a3.closed).code).toBe(CLOSE_CODES.admission_refused.code);
    await n.authed('v');
    const v2 = await n.connect();
    v2.send({ type: 'auth', token: await n.token('v') });
    expect(await v2.nextOfType('auth_response')).toMatchObject({ success: false, error: 'connection_limit' });
    await a1.close();
    await eventually(async () => (await n.metric('switchboard_connections')) === 2, 2000, 'close');
    await n.authed('u');
    expect(await n.metric('switchboard_rate_limit_rejections_total', { rule: 'user_concurrent' })).toBe(1);
    expect(await n.metric('switchboard_rate_limit_rejections_total', { rule: 'total_concurrent' })).toBe(1);
    await n.close();
  });

  it('new connections per user per minute are limited (seed: 10)', async () => {
    const n = await startTestNode();
    for (let i = 0; i < 10; i++) await (await n.authed('minute')).close();
    const c = await n.connect();
    c.send({ type: 'auth', token: await n.token('minute') });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'rate_limited' });
    await n.authed('someone-else');
    await n.close();
  });

  it('too many subscriptions on one connection get too_many_subscriptions', async () => {
    const n = await startTestNode({ maxSubscriptionsPerConnection: 2 });
    const c = await n.authed('subs');
    for (const channel of ['telemetry', 'alerts', 'devices']) c.send({ type: 'subscribe', channel });
    const got = await c.take(3);
    expect(got.map((m) => m.type === 'error' ? m.code : m.type)).toEqual(['subscribe_response', 'subscribe_response', 'too_many_subscriptions']);
    await n.close();
  });

  it('a client that stops reading is dropped without a close frame, which it could not read (its buffer is freed at once); others keep receiving', async () => {
    const n = await startTestNode({ maxBackpressureBytes: 64 * 1024, slowConsumerCheckMs: 20 });
    const slow = await n.authed('slow');
    const fast = await n.authed('fast');
    for (const c of [slow, fast]) {
      c.send({ type: 'subscribe', channel: 'alerts' });
      await c.nextOfType('subscribe_response');
    }
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const text = 'x'.repeat(900);
    const batch = Array.from({ length: 20 }, (_, i) => ({ channel: 'valtronics:default:alerts', attrs: {}, data: JSON.stringify({ alert_id: i, text }) }));
    let sent = 0;
    while (sent < 40_000 && (await n.metric('switchboard_slow_consumer_disconnects_total')) === 0) {
      await n.publisher.publishBatch(batch);
      sent += batch.length;
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await n.metric('switchboard_slow_consumer_disconnects_total')).toBe(1);
    expect(await n.metric('switchboard_slow_consumer_disconnects_total', { reader: 'stalled' })).toBe(1);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.closed).code).toBe(1006);
    expect(fast.open).toBe(true);
    await stillWorks(fast);
    await n.close();
  });
});
