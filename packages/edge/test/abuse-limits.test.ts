/**
 * Abuse limits (issue 11, defect 5): connections that never authenticate are capped per node and per
 * address and refused before the handshake (the address coming from a trusted proxy's X-Forwarded-For
 * only); readers that stop reading are closed once the node's send buffers together pass a budget, even
 * when each is under its own backpressure limit.
 */
import { describe, expect, it } from 'vitest';
import { TestClient, nextFf, sendFf } from '@switchboard/testkit';
import { eventually, startTestNode } from './helpers.js';

const from = (addr: string) => ({ headers: { 'x-forwarded-for': addr } });

async function refusedStatus(url: string, addr: string): Promise<string> {
  try {
    const c = await TestClient.connect(url, from(addr));
    c.ws.terminate();
    return 'accepted';
  } catch (err) {
    return String((err as Error).message);
  }
}

describe('unauthenticated connections', () => {
  it('are capped per address and per node before the upgrade; authenticating frees a place', async () => {
    const node = await startTestNode({ maxUnauthenticatedPerAddress: 3, maxUnauthenticatedConnections: 5, trustedProxies: ['127.0.0.1'] });
    try {
      const url = `${node.wsUrl}/ws`;
      const a = await Promise.all([1, 2, 3].map(() => TestClient.connect(url, from('198.51.100.1'))));
      expect(await refusedStatus(url, '198.51.100.1')).toMatch(/429/);
      const b = await Promise.all([1, 2].map(() => TestClient.connect(url, from('198.51.100.2'))));
      expect(await refusedStatus(url, '198.51.100.3')).toMatch(/503/);
      expect(await node.metric('switchboard_upgrade_rejections_total', { reason: 'unauthenticated_cap' })).toBe(2);
      // One of the first address's sockets authenticates: it no longer counts, so one more may wait.
      a[0]!.send({ type: 'auth', token: await node.token('late') });
      expect(await a[0]!.nextOfType('auth_response')).toMatchObject({ success: true });
      const again = await TestClient.connect(url, from('198.51.100.1'));
      expect(again.open).toBe(true);
      // Closing frees places too.
      for (const c of b) c.ws.close();
      await eventually(async () => (await refusedStatus(url, '198.51.100.4')) === 'accepted', 3000, 'a place after closes');
      for (const c of [...a, again]) c.ws.terminate();
    } finally {
      await node.close();
    }
  });
});

describe('subscriptions per user', () => {
  it('the connections of one user share a subscription cap; other users are not affected', async () => {
    const n = await startTestNode({ maxSubscriptionsPerUser: 3, maxConnectionsPerUser: 100, newConnectionsPerUserPerMin: 0 });
    try {
      const [a, b, other] = [await n.authed('hoarder'), await n.authed('hoarder'), await n.authed('neighbour')];
      for (const [c, channel] of [[a, 'alerts'], [a, 'telemetry'], [b, 'devices']] as const) {
        c.send({ type: 'subscribe', channel });
        await c.nextOfType('subscribe_response');
      }
      b.send({ type: 'subscribe', channel: 'system', id: 'fourth' });
      expect(await b.nextOfType('error')).toMatchObject({ code: 'too_many_subscriptions', id: 'fourth' });
      other.send({ type: 'subscribe', channel: 'system', id: 'free' });
      expect(await other.nextOfType('subscribe_response')).toMatchObject({ id: 'free' });
      // Unsubscribing (or closing) makes room again.
      a.send({ type: 'unsubscribe', channel: 'alerts' });
      await a.nextOfType('unsubscribe_response');
      b.send({ type: 'subscribe', channel: 'system', id: 'now' });
      expect(await b.nextOfType('subscribe_response')).toMatchObject({ id: 'now' });
    } finally {
      await n.close();
    }
  });

  it('a namesake in another tenant is another user: its own connections and subscriptions, not the first one\'s', async () => {
    const n = await startTestNode({ maxSubscriptionsPerUser: 1, maxConnectionsPerUser: 1, newConnectionsPerUserPerMin: 0 });
    try {
      const acme = await n.authed('alice', '/ws', { tenant: 'acme' });
      acme.send({ type: 'subscribe', channel: 'alerts' });
      await acme.nextOfType('subscribe_response');
      // Same name, other tenant: admitted, and with a subscription of its own.
      const globex = await n.authed('alice', '/ws', { tenant: 'globex' });
      globex.send({ type: 'subscribe', channel: 'alerts', id: 'mine' });
      expect(await globex.nextOfType('subscribe_response')).toMatchObject({ id: 'mine' });
      // Within one tenant the limits still hold: a second connection of acme's alice is refused.
      const again = await n.connect('/ws');
      again.send({ type: 'auth', token: await n.token('alice', { tenant: 'acme' }) });
      expect(await again.nextOfType('auth_response')).toMatchObject({ success: false, error: 'connection_limit' });
    } finally {
      await n.close();
    }
  });
});

describe('subscriptions per user across the cluster (resume, unavailable, Fleet Freedom)', () => {
  const limits = { maxSubscriptionsPerUser: 2, maxConnectionsPerUser: 100, newConnectionsPerUserPerMin: 0 };

  it('a resumed session gets its subscriptions back even past the cap; they count until the user is under it again', async () => {
    const n = await startTestNode(limits);
    try {
      const token = await n.token('resumer');
      const first = await n.connect();
      first.send({ type: 'auth', token });
      const sessionId = (await first.nextOfType('auth_response')).session_id as string;
      for (const channel of ['alerts', 'telemetry']) {
        first.send({ type: 'subscribe', channel });
        await first.nextOfType('subscribe_response');
      }
      first.ws.close();
      await first.closed;
      // Its count was dropped with its admission: another connection fills the cap meanwhile.
      const other = await n.authed('resumer');
      await eventually(async () => {
        other.send({ type: 'subscribe', channel: 'alerts', id: 'try' });
        const m = await other.next();
        return m.type === 'subscribe_response';
      }, 3000, 'the closed connection\'s subscriptions released');
      other.send({ type: 'subscribe', channel: 'devices' });
      await other.nextOfType('subscribe_response');
      const resumed = await n.connect();
      resumed.send({ type: 'auth', token, session_id: sessionId });
      expect(await resumed.nextOfType('auth_response')).toMatchObject({ success: true, resumed: true });
      const restored = [await resumed.nextOfType('subscribe_response'), await resumed.nextOfType('subscribe_response')];
      expect(restored.map((r) => r.channel).sort()).toEqual(['alerts', 'telemetry']);
      // 4 held against a cap of 2: nothing new until the user is under it.
      resumed.send({ type: 'subscribe', channel: 'devices', id: 'over' });
      expect(await resumed.nextOfType('error')).toMatchObject({ code: 'too_many_subscriptions', id: 'over', message: 'at most 2 subscriptions per user across the cluster' });
      for (const channel of ['alerts', 'devices']) {
        other.send({ type: 'unsubscribe', channel });
        await other.nextOfType('unsubscribe_response');
      }
      resumed.send({ type: 'subscribe', channel: 'devices', id: 'still' });
      expect(await resumed.nextOfType('error')).toMatchObject({ code: 'too_many_subscriptions', id: 'still' });
      resumed.send({ type: 'unsubscribe', channel: 'alerts' });
      await resumed.nextOfType('unsubscribe_response');
      resumed.send({ type: 'subscribe', channel: 'devices', id: 'fits' });
      expect(await resumed.nextOfType('subscribe_response')).toMatchObject({ id: 'fits' });
      expect(await n.metric('switchboard_rate_limit_rejections_total', { rule: 'user_subscriptions' })).toBeGreaterThanOrEqual(2);
    } finally {
      await n.close();
    }
  });

  it('a valtronics batch of subscribes is reserved in one call; past the cap it falls back to one by one', async () => {
    const n = await startTestNode({ ...limits, maxSubscriptionsPerUser: 3 });
    try {
      const real = n.session.reserveSubscriptions.bind(n.session);
      const calls: number[] = [];
      n.session.reserveSubscriptions = (req) => {
        calls.push(req.deltas.length);
        return real(req);
      };
      const c = await n.authed('batcher');
      const batch = (id: string, channels: string[]) => ({ type: 'batch', id, messages: channels.map((channel) => ({ type: 'subscribe', channel, id: `${id}-${channel}` })) });
      c.send(batch('one', ['alerts', 'telemetry']));
      for (let i = 0; i < 2; i++) expect(await c.nextOfType('subscribe_response')).toMatchObject({ id: expect.stringMatching(/^one-/) as string });
      expect(calls).toEqual([1]);
      // 2 held, 2 asked, cap 3: the batch's reservation is refused whole, then each is asked alone.
      c.send(batch('two', ['devices', 'system']));
      const answers = [await c.next((m) => m.id === 'two-devices'), await c.next((m) => m.id === 'two-system')];
      expect(answers.map((m) => (m.type === 'error' ? m.code : m.type))).toEqual(['subscribe_response', 'too_many_subscriptions']);
    } finally {
      await n.close();
    }
  });

  it('a subscribe the session service cannot count is refused with `unavailable`, not allowed unbounded', async () => {
    const n = await startTestNode(limits);
    try {
      const c = await n.authed('cut-off');
      const real = n.session.reserveSubscriptions.bind(n.session);
      n.session.reserveSubscriptions = () => Promise.reject(new Error('the session service is unavailable'));
      c.send({ type: 'subscribe', channel: 'alerts', id: 'a' });
      expect(await c.nextOfType('error')).toMatchObject({ code: 'unavailable', id: 'a', channel: 'alerts' });
      n.session.reserveSubscriptions = real;
      c.send({ type: 'subscribe', channel: 'alerts', id: 'b' });
      expect(await c.nextOfType('subscribe_response')).toMatchObject({ id: 'b' });
    } finally {
      await n.close();
    }
  });

  it('Fleet Freedom: the user\'s connections share the cap (errorCode 12, all or nothing), unsubscribing makes room, an unreachable service answers 13', async () => {
    const n = await startTestNode({ ...limits, maxSubscriptionsPerUser: 3 });
    try {
      await n.session.createUser({ name: 'dispatcher', password: 'dispatcher-pass', tenant: '42' });
      const login = async () => {
        const c = await n.connect('/fleetfreedom');
        await nextFf(c, 'connectionResponse');
        sendFf(c, 'login', { reqId: 0, username: 'dispatcher', password: 'dispatcher-pass' });
        expect(await nextFf(c, 'loginResponse')).toMatchObject({ errorCode: 0 });
        return c;
      };
      const [a, b] = [await login(), await login()];
      sendFf(a, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] });
      expect(await nextFf(a, 'subscribeResponse')).toMatchObject({ reqId: 1, errorCode: 0 });
      sendFf(b, 'subscribe', { reqId: 2, company: { id: 42 }, subscriptionTypes: ['providerGeneral', 'providerAdvanced'] });
      const refused = await nextFf(b, 'subscribeResponse');
      expect(refused).toMatchObject({ reqId: 2, errorCode: 12 });
      expect(String(refused.message)).toContain('per user across the cluster');
      sendFf(a, 'unsubscribe', { reqId: 3, company: { id: 42 }, subscriptionTypes: ['assetAdvanced'] });
      expect(await nextFf(a, 'unsubscribeResponse')).toMatchObject({ reqId: 3, errorCode: 0 });
      sendFf(b, 'subscribe', { reqId: 4, company: { id: 42 }, subscriptionTypes: ['providerGeneral', 'providerAdvanced'] });
      expect(await nextFf(b, 'subscribeResponse')).toMatchObject({ reqId: 4, errorCode: 0 });
      sendFf(b, 'unsubscribe', { reqId: 5, company: { id: 42 }, subscriptionTypes: ['providerAdvanced'] });
      expect(await nextFf(b, 'unsubscribeResponse')).toMatchObject({ reqId: 5, errorCode: 0 });
      n.session.reserveSubscriptions = () => Promise.reject(new Error('the session service is unavailable'));
      sendFf(a, 'subscribe', { reqId: 6, company: { id: 42 }, subscriptionTypes: ['assetAdvanced'] });
      expect(await nextFf(a, 'subscribeResponse')).toMatchObject({ reqId: 6, errorCode: 13 });
    } finally {
      await n.close();
    }
  });

  it('Fleet Freedom: a ghostId resume restores its subscription types past the cap; they count', async () => {
    const n = await startTestNode(limits);
    try {
      await n.session.createUser({ name: 'roamer', password: 'roamer-pass', tenant: '42' });
      const login = async () => {
        const c = await n.connect('/fleetfreedom');
        await nextFf(c, 'connectionResponse');
        sendFf(c, 'login', { reqId: 0, username: 'roamer', password: 'roamer-pass' });
        const res = await nextFf(c, 'loginResponse');
        expect(res).toMatchObject({ errorCode: 0 });
        return { c, ghostId: res.ghostId as string };
      };
      const first = await login();
      sendFf(first.c, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] });
      expect(await nextFf(first.c, 'subscribeResponse')).toMatchObject({ errorCode: 0 });
      first.c.ws.close();
      await first.c.closed;
      const other = (await login()).c;
      await eventually(async () => {
        sendFf(other, 'subscribe', { reqId: 2, company: { id: 42 }, subscriptionTypes: ['providerGeneral', 'providerAdvanced'] });
        return (await nextFf(other, 'subscribeResponse')).errorCode === 0;
      }, 3000, 'the closed connection\'s subscriptions released');
      const back = await n.connect(`/fleetfreedom/${first.ghostId}`);
      expect(await nextFf(back, 'connectionResponse')).toMatchObject({
        errorCode: 0,
        subscriptions: { company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] },
      });
      sendFf(back, 'subscribe', { reqId: 3, company: { id: 42 }, subscriptionTypes: ['userGeneral'] });
      expect(await nextFf(back, 'subscribeResponse')).toMatchObject({ reqId: 3, errorCode: 12 });
      sendFf(other, 'unsubscribe', { reqId: 4, company: { id: 42 }, subscriptionTypes: ['providerGeneral', 'providerAdvanced'] });
      expect(await nextFf(other, 'unsubscribeResponse')).toMatchObject({ reqId: 4, errorCode: 0 });
      // The two restored still count: the cap (2) is full.
      sendFf(back, 'subscribe', { reqId: 5, company: { id: 42 }, subscriptionTypes: ['userGeneral'] });
      expect(await nextFf(back, 'subscribeResponse')).toMatchObject({ reqId: 5, errorCode: 12 });
      sendFf(back, 'unsubscribe', { reqId: 6, company: { id: 42 }, subscriptionTypes: ['assetAdvanced'] });
      expect(await nextFf(back, 'unsubscribeResponse')).toMatchObject({ reqId: 6, errorCode: 0 });
      sendFf(back, 'subscribe', { reqId: 7, company: { id: 42 }, subscriptionTypes: ['userGeneral'] });
      expect(await nextFf(back, 'subscribeResponse')).toMatchObject({ reqId: 7, errorCode: 0 });
    } finally {
      await n.close();
    }
  });
});

describe('slow consumers', () => {
  it('readers that stop reading are dropped once their buffers together pass the node budget', async () => {
    // Each reader's own limit (32 MB) is never reached: only the node-wide budget (1 MB) closes them.
    const n = await startTestNode({ maxBackpressureBytes: 32 * 1024 * 1024, slowConsumerBudgetBytes: 1024 * 1024, slowConsumerCheckMs: 20, maxConnectionsPerUser: 100, newConnectionsPerUserPerMin: 0 });
    try {
      const readers = await Promise.all(Array.from({ length: 6 }, (_, i) => n.authed(`paused-${i}`)));
      const fast = await n.authed('fast');
      for (const c of [...readers, fast]) {
        c.send({ type: 'subscribe', channel: 'alerts' });
        await c.nextOfType('subscribe_response');
      }
      for (const c of readers) (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const text = 'x'.repeat(900);
      const batch = Array.from({ length: 20 }, (_, i) => ({ channel: 'valtronics:default:alerts', attrs: {}, data: JSON.stringify({ alert_id: i, text }) }));
      let sent = 0;
      while (sent < 60_000 && (await n.metric('switchboard_slow_consumer_disconnects_total')) < readers.length) {
        await n.publisher.publishBatch(batch);
        sent += batch.length;
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(await n.metric('switchboard_slow_consumer_disconnects_total')).toBe(readers.length);
      for (const c of readers) (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      // They read nothing: no close frame could reach them, so they were dropped (and their buffers freed).
      for (const c of readers) expect((await c.closed).code).toBe(1006);
      expect(fast.open).toBe(true);
    } finally {
      await n.close();
    }
  });
});
