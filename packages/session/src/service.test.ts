/**
 * What `resumed` means: an earlier connection's subscriptions come back. A login creates a session that
 * no connection has used yet; its first connection continues it (same id) without resuming anything.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { hmacIssuer } from './keys.js';
import { MemorySessionRepo } from './repo-memory.js';
import { createSessionService } from './setup.js';

function service() {
  const config = loadConfig({});
  const registry = createMetricsRegistry({ processMetrics: false });
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: 'switchboard', audience: 'switchboard' });
  const svc = createSessionService(config, new MemorySessionRepo(config), issuer, createLogger({ name: 'test', level: 'silent' }), registry);
  const outcomes = async () =>
    Object.fromEntries(
      ((await registry.getSingleMetric('switchboard_session_sessions_total')!.get()).values as { labels: { outcome: string }; value: number }[]).map((v) => [v.labels.outcome, v.value]),
    );
  return { svc, outcomes };
}

const sub = { key: 'telemetry', dialect: 'valtronics', request: { channel: 'telemetry', device_id: ['1'] } };

describe('SessionService.openSession: resumed', () => {
  it('the first connection with a login token continues the login session but is not resumed', async () => {
    const { svc, outcomes } = service();
    await svc.createUser({ name: 'dora', password: 'correct horse battery' });
    const login = await svc.login({ username: 'dora', password: 'correct horse battery', ip: '127.0.0.1' });
    if (!login.ok) throw new Error(login.message);
    const first = await svc.openSession({ userId: 'dora', roles: [], sessionId: login.sessionId });
    expect(first).toMatchObject({ sessionId: login.sessionId, resumed: false, continued: true, subscriptions: [] });
    // It subscribes; the next connection gets that subscription back: that is a resume.
    await svc.recordSubscriptions([{ sessionId: login.sessionId, save: sub }]);
    const second = await svc.openSession({ userId: 'dora', roles: [], sessionId: login.sessionId });
    expect(second).toMatchObject({ sessionId: login.sessionId, resumed: true, continued: true, subscriptions: [sub] });
    // Unsubscribed from everything: nothing comes back, so nothing is resumed.
    await svc.recordSubscriptions([{ sessionId: login.sessionId, remove: 'telemetry' }]);
    expect(await svc.openSession({ userId: 'dora', roles: [], sessionId: login.sessionId })).toMatchObject({ sessionId: login.sessionId, resumed: false });
    expect(await outcomes()).toEqual({ new: 1, continued: 2, resumed: 1 });
  });

  it('another user or tenant, or an unknown id, gets a new session', async () => {
    const { svc } = service();
    const mine = await svc.openSession({ userId: 'erin', roles: [], tenant: 'acme' });
    expect(mine.resumed).toBe(false);
    await svc.recordSubscriptions([{ sessionId: mine.sessionId, save: sub }]);
    for (const req of [{ userId: 'frank' }, { userId: 'erin', tenant: 'globex' }]) {
      const other = await svc.openSession({ ...req, roles: [], sessionId: mine.sessionId });
      expect(other).toMatchObject({ resumed: false, continued: false });
      expect(other.sessionId).not.toBe(mine.sessionId);
    }
    expect((await svc.openSession({ userId: 'erin', roles: [], tenant: 'acme', sessionId: 'no-such' })).resumed).toBe(false);
    expect((await svc.openSession({ userId: 'erin', roles: [], tenant: 'acme', sessionId: mine.sessionId })).resumed).toBe(true);
  });
});
