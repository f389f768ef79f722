/**
 * Login lockout under concurrency (issue 11, defect 4), with the memory repo and with the Redis repo on a
 * real redis-server: a burst of 50 concurrent wrong-password logins checks at most the limit of passwords,
 * the lockout does not escalate inside the burst, and the per-address protection slows the address
 * without locking its other users out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, waitReady, type RedisClient } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { startRedis, type RedisServer } from '@switchboard/testkit';
import { hmacIssuer } from './keys.js';
import { MemorySessionRepo } from './repo-memory.js';
import { RedisSessionRepo } from './repo-redis.js';
import type { SessionRepo } from './repo.js';
import { createSessionService } from './setup.js';

const PASSWORD = 'correct horse battery';
let redis: RedisServer;
let client: RedisClient;
beforeAll(async () => {
  redis = await startRedis();
  client = connectRedis({ url: redis.url, cluster: false }, 'test-lockout');
  await waitReady(client);
}, 30_000);
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

function build(makeRepo: () => SessionRepo) {
  const config = loadConfig({}, { maxLoginFailures: 5, maxLoginFailuresPerIp: 8, lockoutSec: 30 });
  const registry = createMetricsRegistry({ processMetrics: false });
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: 'switchboard', audience: 'switchboard' });
  const svc = createSessionService(config, makeRepo(), issuer, createLogger({ name: 'test', level: 'silent' }), registry);
  const outcome = async (name: string) =>
    ((await registry.getSingleMetric('switchboard_session_logins_total')!.get()).values as { labels: { outcome: string }; value: number }[])
      .filter((v) => v.labels.outcome === name)
      .reduce((a, v) => a + v.value, 0);
  return { svc, config, outcome };
}

for (const [name, makeRepo] of [
  ['memory', () => new MemorySessionRepo(loadConfig({}))],
  ['Redis', () => new RedisSessionRepo(client, loadConfig({}))],
] as [string, () => SessionRepo][]) {
  describe(`login lockout (${name} repo)`, () => {
    beforeAll(async () => {
      await redis.command('FLUSHALL');
    });

    it('50 concurrent wrong passwords check at most the limit; the lockout stays at its first step', async () => {
      const { svc, outcome } = build(makeRepo);
      await svc.createUser({ name: 'victim', password: PASSWORD });
      const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => svc.login({ username: 'victim', password: `guess-${i}`, ip: `192.0.2.${i}` })));
      // Only a checked password can be answered invalid_credentials: every other one was refused before.
      expect(await outcome('invalid_credentials')).toBeLessThanOrEqual(5);
      expect(burst.filter((r) => !r.ok && r.code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
      expect(burst.filter((r) => !r.ok && r.code === 'locked_out').length).toBeGreaterThanOrEqual(45);
      const after = await svc.login({ username: 'victim', password: PASSWORD, ip: '198.51.100.1' });
      expect(after).toMatchObject({ ok: false, code: 'locked_out' });
      if (!after.ok) expect(after.retryAfterSec).toBeLessThanOrEqual(30);
    });

    it('many correct logins of one user at once all get in (a few passwords checked at a time)', async () => {
      const { svc } = build(makeRepo);
      await svc.createUser({ name: 'popular', password: PASSWORD });
      const burst = await Promise.all(Array.from({ length: 30 }, () => svc.login({ username: 'popular', password: PASSWORD, ip: '192.0.2.200' })));
      expect(burst.filter((r) => r.ok)).toHaveLength(30);
    });

    it("an attacker's failures from one address never lock out another user's correct password from that address", async () => {
      const { svc } = build(makeRepo);
      await svc.createUser({ name: 'neighbour', password: PASSWORD });
      const nat = '203.0.113.50';
      // Spraying many users from one address: more failures than the per-address limit.
      for (let i = 0; i < 12; i++) await svc.login({ username: `sprayed-${i}`, password: 'wrong-password', ip: nat });
      // Slowed to one attempt per second for the whole address, not locked: the neighbour gets in.
      await new Promise((r) => setTimeout(r, 1100));
      const ok = await svc.login({ username: 'neighbour', password: PASSWORD, ip: nat });
      expect(ok).toMatchObject({ ok: true });
      // The attacker is throttled meanwhile: a burst from the address gets one check per second.
      await new Promise((r) => setTimeout(r, 1100));
      const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => svc.login({ username: `sprayed-b${i}`, password: 'wrong-password', ip: nat })));
      expect(burst.filter((r) => !r.ok && r.code === 'invalid_credentials')).toHaveLength(1);
    });
  });
}
