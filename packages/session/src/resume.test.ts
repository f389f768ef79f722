/**
 * Resuming a session by its id alone (`resumeSession`), directly and over the Rpc seam: the edge of a
 * Fleet Freedom client that presents only its ghostId learns whose session it is, and nothing else can.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryRpc } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import type { SessionApi } from './api.js';
import { hmacIssuer } from './keys.js';
import { MemorySessionRepo } from './repo-memory.js';
import { sessionRpcHandler } from './rpc-handler.js';
import { RpcSessionClient } from './rpc-client.js';
import type { SessionService } from './service.js';
import { createSessionService } from './setup.js';

let service: SessionService;
let rpc: MemoryRpc;
let client: SessionApi;

beforeEach(() => {
  const config = loadConfig({}, { logLevel: 'silent', sessionTtlSec: 60 });
  const registry = createMetricsRegistry({ processMetrics: false });
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: config.jwtIssuer, audience: config.jwtAudience });
  service = createSessionService(config, new MemorySessionRepo(config), issuer, createLogger({ name: 'test', level: 'silent' }), registry);
  rpc = new MemoryRpc();
  rpc.serve(sessionRpcHandler(service, service.metrics));
  client = new RpcSessionClient(rpc.client(2000), 2000);
});

describe('resumeSession', () => {
  it('finds a session a login created, with its user, roles, tenant and subscriptions, and renews it', async () => {
    await service.createUser({ name: 'dispatcher', password: 'correct horse', roles: ['ops'], tenant: '42' });
    const login = await service.login({ username: 'dispatcher', password: 'correct horse', ip: '10.0.0.1' });
    if (!login.ok) throw new Error(login.message);
    await service.recordSubscriptions([{ sessionId: login.sessionId, save: { key: 'assetGeneral', dialect: 'fleetfreedom', request: { company: 42 }, position: { epoch: 'e', offset: 3 } } }]);
    for (const api of [service, client]) {
      const before = Date.now();
      const s = await api.resumeSession(login.sessionId);
      expect(s).toEqual({
        sessionId: login.sessionId,
        userId: 'dispatcher',
        roles: ['ops'],
        tenant: '42',
        expiresAt: expect.any(Number) as number,
        subscriptions: [{ key: 'assetGeneral', dialect: 'fleetfreedom', request: { company: 42 }, position: { epoch: 'e', offset: 3 } }],
      });
      expect(s!.expiresAt).toBeGreaterThanOrEqual(before + 59_000);
    }
  });

  it('answers null for an unknown id, and a session without a tenant has none', async () => {
    expect(await service.resumeSession('no-such-session')).toBeNull();
    expect(await client.resumeSession('no-such-session')).toBeNull();
    const opened = await service.openSession({ userId: 'jwt-user', roles: [] });
    const s = await client.resumeSession(opened.sessionId);
    expect(s).toMatchObject({ sessionId: opened.sessionId, userId: 'jwt-user', roles: [], subscriptions: [] });
    expect(s).not.toHaveProperty('tenant');
  });

  it('the Rpc handler validates the request before the service sees it', async () => {
    await expect(client.resumeSession('')).rejects.toMatchObject({ code: 'invalid_message' });
    await expect(client.resumeSession('x'.repeat(300))).rejects.toMatchObject({ code: 'invalid_message' });
    const handler = sessionRpcHandler(service, service.metrics);
    await expect(handler('resumeSession', { sessionId: 7 })).rejects.toMatchObject({ code: 'invalid_message' });
    await expect(handler('resumeSession', null)).rejects.toMatchObject({ code: 'invalid_message' });
  });

  it('counts lookups by outcome', async () => {
    const opened = await service.openSession({ userId: 'u', roles: [] });
    await service.resumeSession(opened.sessionId);
    await service.resumeSession('gone');
    const m = await service.metrics.resumeLookups.get();
    const by = Object.fromEntries(m.values.map((v) => [v.labels.outcome, v.value]));
    expect(by).toEqual({ found: 1, unknown: 1 });
  });
});
