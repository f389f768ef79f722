/**
 * An edge's batched subscription calls over the Rpc seam. Per-user subscription caps (`reserveSubscriptions`):
 * one call carries an edge's deltas of a tick, the service answers per delta. Subscriptions recorded in
 * sessions (`recordSubscriptions`): a tick's saves and removes from every connection in one call, applied in
 * the order given. The handler refuses malformed or oversized batches of either before the service sees them.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryRpc } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { MAX_RESERVATIONS_PER_CALL, MAX_SUBSCRIPTION_RECORDS_PER_CALL, type SessionApi } from './api.js';
import { hmacIssuer } from './keys.js';
import { MemorySessionRepo } from './repo-memory.js';
import { sessionRpcHandler } from './rpc-handler.js';
import { RpcSessionClient } from './rpc-client.js';
import type { SessionService } from './service.js';
import { createSessionService } from './setup.js';

let service: SessionService;
let client: SessionApi;

beforeEach(() => {
  const config = loadConfig({}, { logLevel: 'silent', newConnectionsPerUserPerMin: 0 });
  const registry = createMetricsRegistry({ processMetrics: false });
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: config.jwtIssuer, audience: config.jwtAudience });
  service = createSessionService(config, new MemorySessionRepo(config), issuer, createLogger({ name: 'test', level: 'silent' }), registry);
  const rpc = new MemoryRpc();
  rpc.serve(sessionRpcHandler(service, service.metrics));
  client = new RpcSessionClient(rpc.client(2000), 2000);
});

describe('reserveSubscriptions over Rpc', () => {
  it('answers each delta of a batch, counting the user over connections of several edges', async () => {
    for (const connId of ['a:1', 'b:1']) expect((await client.admit({ userId: 'u', connId, nodeId: connId.split(':')[0]!, ip: '10.0.0.1' })).ok).toBe(true);
    expect(
      await client.reserveSubscriptions({
        maxPerUser: 3,
        deltas: [
          { connId: 'a:1', delta: 2 },
          { connId: 'b:1', delta: 1 },
          { connId: 'b:1', delta: 1 },
          { connId: 'b:1', delta: 1, force: true },
          { connId: 'c:9', delta: 1 },
        ],
      }),
    ).toEqual(['ok', 'ok', 'over_cap', 'ok', 'not_admitted']);
    await client.release('b:1');
    expect(await client.reserveSubscriptions({ maxPerUser: 3, deltas: [{ connId: 'a:1', delta: 1 }] })).toEqual(['ok']);
  });

  it('refuses malformed and oversized batches before the service sees them', async () => {
    const bad: unknown[] = [
      { maxPerUser: 3, deltas: [{ connId: 'a:1', delta: 0 }] },
      { maxPerUser: 3, deltas: [{ connId: 'a:1', delta: 1.5 }] },
      { maxPerUser: 3, deltas: [{ connId: '', delta: 1 }] },
      { maxPerUser: 3, deltas: [{ connId: 'a:1', delta: 2_000_000 }] },
      { maxPerUser: 0, deltas: [] },
      { maxPerUser: 3, deltas: Array.from({ length: MAX_RESERVATIONS_PER_CALL + 1 }, () => ({ connId: 'a:1', delta: 1 })) },
      { maxPerUser: 3 },
      null,
    ];
    const handler = sessionRpcHandler(service, service.metrics);
    for (const params of bad) await expect(handler('reserveSubscriptions', params)).rejects.toMatchObject({ code: 'invalid_message' });
  });
});

const sub = (key: string, channel = key) => ({ key, dialect: 'valtronics', request: { channel } });

describe('recordSubscriptions over Rpc', () => {
  it('applies the saves and removes of several sessions in one call, in order', async () => {
    const a = await client.openSession({ userId: 'ann', roles: [] });
    const b = await client.openSession({ userId: 'bob', roles: [] });
    await client.recordSubscriptions([
      { sessionId: a.sessionId, save: sub('alerts') },
      { sessionId: b.sessionId, save: sub('telemetry') },
      { sessionId: a.sessionId, save: sub('devices') },
      // Unsubscribed within the same tick, then subscribed again with another request: the last one holds.
      { sessionId: a.sessionId, remove: 'alerts' },
      { sessionId: b.sessionId, remove: 'telemetry' },
      { sessionId: b.sessionId, save: sub('telemetry', 'telemetry-2') },
      // A session that does not exist (expired): nothing is created for it.
      { sessionId: 'no-such-session', save: sub('alerts') },
    ]);
    const ra = await client.resumeSession(a.sessionId);
    const rb = await client.resumeSession(b.sessionId);
    expect(ra?.subscriptions.map((s) => s.key)).toEqual(['devices']);
    expect(rb?.subscriptions).toEqual([sub('telemetry', 'telemetry-2')]);
    expect(await client.resumeSession('no-such-session')).toBeNull();
  });

  it('refuses malformed and oversized batches', async () => {
    const bad: unknown[] = [
      { records: [{ sessionId: 's' }] },
      { records: [{ sessionId: '', remove: 'k' }] },
      { records: [{ sessionId: 's', remove: '' }] },
      { records: [{ sessionId: 's', save: { key: 'k' } }] },
      { records: Array.from({ length: MAX_SUBSCRIPTION_RECORDS_PER_CALL + 1 }, () => ({ sessionId: 's', remove: 'k' })) },
      {},
      null,
    ];
    const handler = sessionRpcHandler(service, service.metrics);
    for (const params of bad) await expect(handler('recordSubscriptions', params)).rejects.toMatchObject({ code: 'invalid_message' });
  });
});
