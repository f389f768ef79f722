/**
 * Abuse limits (issue 11, defect 5): connections that never authenticate are capped per node and per
 * address and refused before the handshake (the address coming from a trusted proxy's X-Forwarded-For
 * only); readers that stop reading are closed once the node's send buffers together pass a budget, even
 * when each is under its own backpressure limit.
 */
import { describe, expect, it } from 'vitest';
import { TestClient } from '@switchboard/testkit';
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
