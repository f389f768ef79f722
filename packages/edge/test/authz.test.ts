/**
 * Authorization within a tenant (issue 11, defect 2): the channel policy by role, checked at subscribe
 * and when a resumed session's subscriptions are restored; a token's `devices` claim; API keys scoped to
 * channel patterns. Denials are the dialect's `forbidden` error and counted by reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { TestClient, nextFf, sendFf } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
const POLICY = { operator: ['valtronics:*'], viewer: ['valtronics:alerts', 'valtronics:system'], dispatcher: ['fleetfreedom:asset*'] };

beforeAll(async () => {
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000, channelPolicy: POLICY },
    { env: { SWITCHBOARD_API_KEYS: 'dev-api-key,*/valtronics:alerts=alerts-only-key,acme/valtronics:*=acme-key' } },
  );
  await node.session.createUser({ name: 'dispatch@acme', password: 'dispatch-pass', tenant: '42', roles: ['dispatcher'] });
  await node.session.createUser({ name: 'clerk@acme', password: 'clerk-pass', tenant: '42' });
});
afterAll(() => node.close());

async function authed(token: string, sessionId?: string): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const c = await node.connect();
  c.send({ type: 'auth', token, ...(sessionId !== undefined ? { session_id: sessionId } : {}) });
  return { c, res: await c.nextOfType('auth_response') };
}

function deviceToken(sub: string, devices: (string | number)[], roles: string[] = ['operator']): Promise<string> {
  return new SignJWT({ roles, devices })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(node.config.jwtIssuer)
    .setAudience(node.config.jwtAudience)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(node.config.jwtSecret));
}

describe('channel policy by role', () => {
  it('a viewer may subscribe to alerts but not telemetry (forbidden, with its id); an operator to both', async () => {
    const before = await node.metric('switchboard_authz_denials_total', { dialect: 'valtronics', reason: 'role' });
    const { c } = await authed(await node.token('vera', { roles: ['viewer'] }));
    c.send({ type: 'subscribe', channel: 'telemetry', id: 's1' });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'forbidden', id: 's1', channel: 'telemetry' });
    c.send({ type: 'subscribe', channel: 'alerts', id: 's2' });
    expect(await c.nextOfType('subscribe_response')).toMatchObject({ id: 's2', channel: 'alerts' });
    const op = await authed(await node.token('otto', { roles: ['operator'] }));
    op.c.send({ type: 'subscribe', channel: 'telemetry', id: 's3' });
    expect(await op.c.nextOfType('subscribe_response')).toMatchObject({ id: 's3' });
    const none = await authed(await node.token('nobody'));
    none.c.send({ type: 'subscribe', channel: 'alerts', id: 's4' });
    expect(await none.c.nextOfType('error')).toMatchObject({ code: 'forbidden', id: 's4' });
    expect(await node.metric('switchboard_authz_denials_total', { dialect: 'valtronics', reason: 'role' })).toBe(before + 2);
  });

  it('a resumed session gets back only what the roles of its new token allow', async () => {
    const op = await authed(await node.token('rita', { roles: ['operator'] }));
    const sessionId = op.res.session_id as string;
    op.c.send({ type: 'subscribe', channel: 'telemetry' });
    op.c.send({ type: 'subscribe', channel: 'alerts' });
    await op.c.nextOfType('subscribe_response');
    await op.c.nextOfType('subscribe_response');
    op.c.ws.close();
    await op.c.closed;
    const resumed = await authed(await node.token('rita', { roles: ['viewer'] }), sessionId);
    expect(resumed.res).toMatchObject({ success: true, resumed: true });
    const frames = [await resumed.c.next((m) => m.type === 'subscribe_response' || m.type === 'error'), await resumed.c.next((m) => m.type === 'subscribe_response' || m.type === 'error')];
    expect(frames.find((f) => f.channel === 'telemetry')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(frames.find((f) => f.channel === 'alerts')).toMatchObject({ type: 'subscribe_response' });
    await node.publishHttp({ channel: 'telemetry', data: { device_id: 1, temperature: 20 } });
    await node.publishHttp({ channel: 'alerts', data: { alert_id: 'after-resume' } });
    expect(await resumed.c.next((m) => m.type === 'alert' || m.type === 'telemetry_update')).toMatchObject({ type: 'alert', alert_id: 'after-resume' });
  });
});

describe('channel policy on fleetfreedom', () => {
  async function ffLogin(username: string, password: string): Promise<TestClient> {
    const c = await node.connect('/fleetfreedom');
    await c.nextFrame();
    sendFf(c, 'login', { reqId: 'L', username, password, userAgent: 'test' });
    expect(await nextFf(c, 'loginResponse')).toMatchObject({ errorCode: 0 });
    return c;
  }

  it('subscription types are checked against the roles of the session', async () => {
    const dispatcher = await ffLogin('dispatch@acme', 'dispatch-pass');
    sendFf(dispatcher, 'subscribe', { reqId: 1, company: 42, subscriptionTypes: ['assetGeneral'] });
    expect(await nextFf(dispatcher, 'subscribeResponse')).toMatchObject({ reqId: 1, errorCode: 0 });
    const clerk = await ffLogin('clerk@acme', 'clerk-pass');
    sendFf(clerk, 'subscribe', { reqId: 2, company: 42, subscriptionTypes: ['assetGeneral'] });
    const refused = await nextFf(clerk, 'subscribeResponse');
    expect(refused.reqId).toBe(2);
    expect(refused.errorCode).not.toBe(0);
    expect(String(refused.message)).toMatch(/may not subscribe to assetGeneral/);
  });
});

describe('tenants are separate on every dialect', () => {
  it('fme: the same stream id in two tenants is two streams', async () => {
    const url = async (sub: string, tenant: string) => `${node.wsUrl}/fme?access_token=${await node.token(sub, { tenant })}`;
    const [a, b, c] = await Promise.all([TestClient.connect(await url('a', 'acme')), TestClient.connect(await url('b', 'globex')), TestClient.connect(await url('c', 'acme'))]);
    for (const x of [a, b, c]) x.send({ ws_op: 'open', ws_stream_ids: ['shared'] });
    await new Promise((r) => setTimeout(r, 300));
    b.send({ ws_op: 'send', ws_msg: 'from-globex' });
    c.send({ ws_op: 'send', ws_msg: 'from-acme' });
    expect((await a.nextFrame()).text).toBe('from-acme');
    await new Promise((r) => setTimeout(r, 200));
    expect(a.frames.map((f) => f.text)).not.toContain('from-globex');
    for (const x of [a, b, c]) x.ws.close();
  });
});

describe('the devices a token may read', () => {
  it('a token limited to devices subscribes only with a device_id filter within them, and receives only those', async () => {
    const before = await node.metric('switchboard_authz_denials_total', { dialect: 'valtronics', reason: 'device' });
    const { c } = await authed(await deviceToken('dev-user', [1, '2']));
    c.send({ type: 'subscribe', channel: 'telemetry', id: 'all' });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'forbidden', id: 'all' });
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: [1, 3], id: 'wide' });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'forbidden', id: 'wide' });
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: [1], id: 'ok' });
    expect(await c.nextOfType('subscribe_response')).toMatchObject({ id: 'ok' });
    // The system channel carries no device data: no filter needed.
    c.send({ type: 'subscribe', channel: 'system', id: 'sys' });
    expect(await c.nextOfType('subscribe_response')).toMatchObject({ id: 'sys' });
    await node.publishHttp({ channel: 'telemetry', data: { device_id: 3, temperature: 1 } });
    await node.publishHttp({ channel: 'telemetry', data: { device_id: 1, temperature: 2 } });
    expect(await c.nextOfType('telemetry_update')).toMatchObject({ device_id: 1 });
    expect(await node.metric('switchboard_authz_denials_total', { dialect: 'valtronics', reason: 'device' })).toBe(before + 2);
  });
});

describe('API keys scoped to channels', () => {
  it('a key limited to alerts publishes there only; a tenant-and-channel key only in its tenant', async () => {
    const before = await node.metric('switchboard_authz_denials_total', { dialect: 'api' });
    const alertsOnly = { authorization: 'Bearer alerts-only-key' };
    expect((await node.publishHttp({ channel: 'alerts', data: { alert_id: 1 } }, alertsOnly)).status).toBe(200);
    expect((await node.publishHttp({ channel: 'alerts', tenant: 'acme', data: { alert_id: 1 } }, alertsOnly)).status).toBe(200);
    const refused = await node.publishHttp({ channel: 'telemetry', data: { device_id: 1 } }, alertsOnly);
    expect(refused).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    const batch = await node.publishHttp({ messages: [{ channel: 'alerts', data: {} }, { channel: 'devices', data: { device_id: 1 } }] }, alertsOnly);
    expect(batch).toMatchObject({ status: 403, body: { error: 'forbidden', index: 1 } });
    const acme = { authorization: 'Bearer acme-key' };
    expect((await node.publishHttp({ channel: 'telemetry', data: { device_id: 1 } }, acme)).status).toBe(200);
    expect((await node.publishHttp({ channel: 'telemetry', tenant: 'globex', data: { device_id: 1 } }, acme)).status).toBe(403);
    expect(await node.metric('switchboard_authz_denials_total', { dialect: 'api', reason: 'channel' })).toBeGreaterThanOrEqual(2);
    expect(await node.metric('switchboard_authz_denials_total', { dialect: 'api' })).toBe(before + 3);
  });
});
