/**
 * Per-user subscription caps over the Rpc seam (`reserveSubscriptions`): one call carries an edge's
 * deltas of a tick, the service answers per delta, and the handler refuses malformed or oversized batches.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryRpc } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { MAX_RESERVATIONS_PER_CALL, type SessionApi } from './api.js';
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
