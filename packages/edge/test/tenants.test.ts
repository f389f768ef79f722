/**
 * The channel namespace `<dialect>:<tenant>:<name>` on one node: a tenant's clients never receive
 * another tenant's messages, whatever channel names they use; API keys scoped to tenants publish only
 * there; a session of one tenant cannot be resumed by the same user name in another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode({
    newConnectionsPerUserPerMin: 0,
    apiKeys: ['all-tenants-key-0123', 'acme=acme-only-key-0123', 'acme+globex=two-tenants-key-0123'],
  });
});
afterAll(async () => {
  await node.close();
});

const publish = (body: unknown, key: string) => node.publishHttp(body, { authorization: `Bearer ${key}` });

describe('tenant isolation (one node)', () => {
  it('a tenant-A token never receives tenant-B data, nor the default tenant\'s', async () => {
    const acme = await node.authed('alice', '/ws', { tenant: 'acme' });
    const globex = await node.authed('alice', '/ws', { tenant: 'globex' });
    const plain = await node.authed('alice');
    for (const c of [acme, globex, plain]) {
      c.send({ type: 'subscribe', channel: 'alerts' });
      await c.nextOfType('subscribe_response');
    }
    const key = 'all-tenants-key-0123';
    expect((await publish({ tenant: 'acme', channel: 'alerts', data: { alert_id: 'a1' } }, key)).status).toBe(200);
    expect((await publish({ tenant: 'globex', channel: 'alerts', data: { alert_id: 'g1' } }, key)).status).toBe(200);
    expect((await publish({ channel: 'alerts', data: { alert_id: 'd1' } }, key)).status).toBe(200);
    expect((await acme.nextOfType('alert')).alert_id).toBe('a1');
    expect((await globex.nextOfType('alert')).alert_id).toBe('g1');
    expect((await plain.nextOfType('alert')).alert_id).toBe('d1');
    for (const c of [acme, globex, plain]) expect(await c.collect(150, (m) => m.type === 'alert')).toHaveLength(0);
    // Each tenant's channel has its own offsets: nothing about another tenant's traffic leaks.
    const res = await publish({ tenant: 'acme', channel: 'alerts', data: { alert_id: 'a2' } }, key);
    expect(res.body).toMatchObject({ channel: 'alerts', offset: 2 });
  });

  it('an API key scoped to tenants publishes only there; one tenant may be implied', async () => {
    const acme = await node.authed('bob', '/ws', { tenant: 'acme' });
    acme.send({ type: 'subscribe', channel: 'devices' });
    await acme.nextOfType('subscribe_response');
    // Scoped to acme only: the tenant may be omitted.
    expect((await publish({ channel: 'devices', attrs: { device_id: 7 }, data: { new_status: 'online' } }, 'acme-only-key-0123')).status).toBe(200);
    expect(await acme.nextOfType('device_status_update')).toMatchObject({ device_id: 7, new_status: 'online' });
    const refused = await publish({ tenant: 'globex', channel: 'devices', attrs: { device_id: 7 }, data: {} }, 'acme-only-key-0123');
    expect(refused).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    // A batch with one message outside the key's tenants publishes nothing.
    const batch = await publish(
      { messages: [{ tenant: 'acme', channel: 'devices', attrs: { device_id: 8 }, data: {} }, { tenant: 'initech', channel: 'devices', attrs: { device_id: 8 }, data: {} }] },
      'two-tenants-key-0123',
    );
    expect(batch).toMatchObject({ status: 403, body: { error: 'forbidden', index: 1 } });
    expect(await acme.collect(150, (m) => m.type === 'device_status_update')).toHaveLength(0);
    // Two tenants: the tenant must be named.
    expect(await publish({ channel: 'devices', attrs: { device_id: 8 }, data: {} }, 'two-tenants-key-0123')).toMatchObject({ status: 400 });
    expect(await publish({ tenant: 'a:b', channel: 'devices', attrs: { device_id: 8 }, data: {} }, 'all-tenants-key-0123')).toMatchObject({ status: 400 });
    expect(await publish({ channel: 'devices', data: {} }, 'nope')).toMatchObject({ status: 401, body: { error: 'unauthorized', message: 'the API key was refused' } });
  });

  it('a token whose tenant is not a tenant name is refused', async () => {
    const c = await node.connect('/ws');
    c.send({ type: 'auth', token: await node.token('mallory', { tenant: 'acme:alerts' }) });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'invalid_token' });
  });

  it('a session is resumed only by the same user in the same tenant', async () => {
    const first = await node.connect('/ws');
    first.send({ type: 'auth', token: await node.token('carol', { tenant: 'acme' }) });
    const res = await first.nextOfType('auth_response');
    const sessionId = res.session_id as string;
    // Something to resume: "resumed" means an earlier connection's subscriptions come back.
    first.send({ type: 'subscribe', channel: 'alerts' });
    await first.nextOfType('subscribe_response');
    await first.close();
    const other = await node.connect('/ws');
    other.send({ type: 'auth', token: await node.token('carol', { tenant: 'globex' }), session_id: sessionId });
    const answer = await other.nextOfType('auth_response');
    expect(answer.resumed).toBe(false);
    expect(answer.session_id).not.toBe(sessionId);
    const same = await node.connect('/ws');
    same.send({ type: 'auth', token: await node.token('carol', { tenant: 'acme' }), session_id: sessionId });
    expect(await same.nextOfType('auth_response')).toMatchObject({ resumed: true, session_id: sessionId });
    expect(await same.nextOfType('subscribe_response')).toMatchObject({ channel: 'alerts' });
  });
});
