/**
 * Revocation across a cluster (issue 11, defect 1) and readiness under a stalled Redis (defect 3), with
 * real processes: one redis-server, one session service and two edges. A revocation made at the session
 * service (user deleted, logout at either edge) closes the user's sockets on every edge within 5 s; a
 * session resumed on one edge closes its socket on the other; /readyz of an edge and of the session
 * service turns 503 within a second of Redis stopping to answer, and 200 again when it answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES } from '@switchboard/core';
import { TestClient, startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';
import { BIN, PASSWORD, adminCall as adminOf, clusterEnv, login, sleep } from './cluster-helpers.js';

let redis: RedisServer;
let session: SwitchboardProcess;
let a: SwitchboardProcess;
let b: SwitchboardProcess;

const env = (nodeId: string) => clusterEnv(redis.url, nodeId, session?.httpUrl);
const adminCall = (method: string, path: string, body?: unknown) => adminOf(session, method, path, body);

beforeAll(async () => {
  redis = await startRedis();
  session = await startSwitchboard(BIN, 'session', env('session-1'), 30_000, 'SESSION_PORT');
  [a, b] = await Promise.all([startSwitchboard(BIN, 'edge', env('edge-a'), 30_000), startSwitchboard(BIN, 'edge', env('edge-b'), 30_000)]);
}, 90_000);

afterAll(async () => {
  for (const p of [a, b, session]) await p?.stop('SIGKILL');
  await redis?.stop();
});

async function connect(edge: SwitchboardProcess, token: string, sessionId?: string): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const c = await TestClient.connect(`${edge.wsUrl}/ws`);
  c.send({ type: 'auth', token, ...(sessionId !== undefined ? { session_id: sessionId } : {}) });
  return { c, res: await c.nextOfType('auth_response', 8000) };
}

async function closedWithin(c: TestClient, ms: number): Promise<{ code: number; afterMs: number }> {
  const started = Date.now();
  const closed = await Promise.race([c.closed, sleep(ms).then(() => null)]);
  if (!closed) throw new Error(`still open after ${ms} ms`);
  return { code: closed.code, afterMs: Date.now() - started };
}

describe('revocation reaches every edge', () => {
  it('deleting a user at the session service closes its sockets on both edges within 5 s; its token is refused on both', async () => {
    expect(await adminCall('POST', '/v1/users', { name: 'carol', password: PASSWORD })).toBe(201);
    const { token } = await login(a, 'carol');
    const onA = await connect(a, token);
    const onB = await connect(b, token);
    expect([onA.res.success, onB.res.success]).toEqual([true, true]);
    expect(await adminCall('DELETE', '/v1/users/carol')).toBe(204);
    const [ca, cb] = await Promise.all([closedWithin(onA.c, 5000), closedWithin(onB.c, 5000)]);
    expect([ca.code, cb.code]).toEqual([CLOSE_CODES.session_revoked.code, CLOSE_CODES.session_revoked.code]);
    for (const edge of [a, b]) expect((await connect(edge, token)).res).toMatchObject({ success: false, error: 'revoked_token' });
  });

  it('a logout at one edge closes the session’s socket on the other within 5 s', async () => {
    expect(await adminCall('POST', '/v1/users', { name: 'dave', password: PASSWORD })).toBe(201);
    const { token } = await login(b, 'dave');
    const onA = await connect(a, token);
    expect(onA.res.success).toBe(true);
    const out = await fetch(`${b.httpUrl}/v1/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(out.status).toBe(204);
    expect((await closedWithin(onA.c, 5000)).code).toBe(CLOSE_CODES.session_revoked.code);
  });

  it('a session resumed on the other edge closes its older socket there', async () => {
    expect(await adminCall('POST', '/v1/users', { name: 'erin', password: PASSWORD })).toBe(201);
    const { token, session_id } = await login(a, 'erin');
    const onA = await connect(a, token);
    onA.c.send({ type: 'subscribe', channel: 'alerts' });
    await onA.c.nextOfType('subscribe_response');
    const onB = await connect(b, token, session_id);
    expect(onB.res).toMatchObject({ success: true, session_id, resumed: true });
    expect((await closedWithin(onA.c, 5000)).code).toBe(CLOSE_CODES.session_replaced.code);
  });
});

describe('readiness follows Redis', () => {
  it('/readyz of an edge and of the session service turns 503 within 1 s of Redis stalling, and 200 when it answers again', async () => {
    const status = async (url: string) => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).status;
    expect([await status(a.httpUrl), await status(session.httpUrl)]).toEqual([200, 200]);
    redis.pause();
    try {
      const paused = Date.now();
      const seen: Record<string, number> = {};
      while (Date.now() - paused < 3000 && Object.keys(seen).length < 2) {
        for (const [name, url] of [['edge', a.httpUrl], ['session', session.httpUrl]] as const)
          if (seen[name] === undefined && (await status(url)) === 503) seen[name] = Date.now() - paused;
        await sleep(50);
      }
      expect(seen.edge, 'edge 503').toBeLessThanOrEqual(1000);
      expect(seen.session, 'session service 503').toBeLessThanOrEqual(1000);
    } finally {
      redis.resume();
    }
    const resumed = Date.now();
    while (Date.now() - resumed < 5000 && ((await status(a.httpUrl)) !== 200 || (await status(session.httpUrl)) !== 200)) await sleep(50);
    expect([await status(a.httpUrl), await status(session.httpUrl)]).toEqual([200, 200]);
  });
});
