/**
 * The session scenario: a real Redis, one session service and one edge as processes. Measures
 * logins/s (through an edge's `/v1/login`, over the Rpc seam, scrypt included) and admissions/s (the
 * `admit` + `release` Rpc, Lua in Redis), each with p50/p99, and what a session resume adds to a
 * reconnect compared with a fresh connection.
 */
import { RedisRpcClient } from '@switchboard/bus';
import { DEV_ADMIN_TOKEN, createLogger } from '@switchboard/core';
import { TestClient, startRedis, startSwitchboard } from '@switchboard/testkit';
import { percentile } from './generator.js';
import { wallMs } from './protocol.js';

/** Throughput and latency of one operation. */
export interface OpStats {
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly count: number;
}

/** Results of the session scenario. */
export interface SessionResult {
  readonly logins: OpStats;
  readonly admissions: OpStats;
  /** Time from opening a socket to `auth_response`, fresh session. */
  readonly connectFresh: OpStats;
  /** Same, resuming a session with 3 subscriptions, until the 3 restored `subscribe_response`s. */
  readonly connectResume: OpStats;
  /** Fresh connection that sends its 3 subscribes itself, until their responses. */
  readonly connectResubscribe: OpStats;
}

async function loop(concurrency: number, seconds: number, op: () => Promise<void>): Promise<OpStats> {
  const lat: number[] = [];
  const end = wallMs() + seconds * 1000;
  const t0 = wallMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (wallMs() < end) {
        const s = wallMs();
        await op();
        lat.push(wallMs() - s);
      }
    }),
  );
  const elapsed = (wallMs() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { perSec: lat.length / elapsed, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), count: lat.length };
}

function stats(lat: number[]): OpStats {
  lat.sort((a, b) => a - b);
  return { perSec: NaN, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), count: lat.length };
}

/** Runs the session scenario with the switchboard binary at `bin`. */
export async function sessionScenario(o: { bin: string; seconds: number; connects: number }): Promise<SessionResult> {
  const redis = await startRedis();
  const env = {
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
    SWITCHBOARD_MAX_CONNECTIONS_TOTAL: '1000000',
    SWITCHBOARD_MAX_CONNECTIONS_PER_USER: '1000000',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
  };
  const session = await startSwitchboard(o.bin, 'session', { ...env, NODE_ID: 'bench-session' }, 20_000, 'SESSION_PORT');
  const edge = await startSwitchboard(o.bin, 'edge', { ...env, NODE_ID: 'bench-edge', SWITCHBOARD_SESSION_URL: session.httpUrl });
  const admin = (path: string, body: unknown) =>
    fetch(`${session.httpUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
      body: JSON.stringify(body),
    }).then((r) => r.json() as Promise<Record<string, unknown>>);
  try {
    await admin('/v1/users', { name: 'bench-user', password: 'bench-password-1' });
    const logins = await loop(16, o.seconds, async () => {
      const res = await fetch(`${edge.httpUrl}/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'bench-user', password: 'bench-password-1' }),
      });
      if (res.status !== 200) throw new Error(`login ${res.status}`);
      await res.arrayBuffer();
    });

    const rpc = await RedisRpcClient.connect({ target: { url: redis.url, cluster: false }, logger: createLogger({ name: 'bench', level: 'silent' }), nodeId: 'bench-client', timeoutMs: 5000 });
    let n = 0;
    const admissions = await loop(64, o.seconds, async () => {
      const connId = `bench:${++n}`;
      const r = await rpc.call<{ ok: boolean }>('admit', { userId: `u${n % 500}`, connId, nodeId: 'bench', ip: '127.0.0.1' });
      if (!r.ok) throw new Error('refused');
      await rpc.call('release', { connId });
    });
    await rpc.close();

    const token = (await admin('/v1/tokens', { sub: 'bench-user' })).token as string;
    const subs = [{ channel: 'alerts' }, { channel: 'devices', device_id: 1 }, { channel: 'telemetry', device_id: 1 }];
    const seed = await TestClient.connect(`${edge.wsUrl}/ws`);
    seed.send({ type: 'auth', token });
    const sessionId = (await seed.nextOfType('auth_response')).session_id as string;
    for (const s of subs) seed.send({ type: 'subscribe', ...s });
    await seed.take(3, (m) => m.type === 'subscribe_response');
    await seed.close();

    const fresh: number[] = [];
    const resume: number[] = [];
    const resubscribe: number[] = [];
    for (let i = 0; i < o.connects; i++) {
      let t = wallMs();
      const a = await TestClient.connect(`${edge.wsUrl}/ws`);
      a.send({ type: 'auth', token });
      await a.nextOfType('auth_response');
      fresh.push(wallMs() - t);
      await a.close();

      t = wallMs();
      const b = await TestClient.connect(`${edge.wsUrl}/ws`);
      b.send({ type: 'auth', token, session_id: sessionId });
      await b.nextOfType('auth_response');
      await b.take(3, (m) => m.type === 'subscribe_response');
      resume.push(wallMs() - t);
      await b.close();

      t = wallMs();
      const c = await TestClient.connect(`${edge.wsUrl}/ws`);
      c.send({ type: 'auth', token });
      for (const s of subs) c.send({ type: 'subscribe', ...s });
      await c.take(4, (m) => m.type === 'auth_response' || m.type === 'subscribe_response');
      resubscribe.push(wallMs() - t);
      await c.close();
    }
    return { logins, admissions, connectFresh: stats(fresh), connectResume: stats(resume), connectResubscribe: stats(resubscribe) };
  } finally {
    await edge.stop();
    await session.stop();
    await redis.stop();
  }
}
