/**
 * The session service as its own processes, in production mode: two session replicas signing RS256
 * with a key file, two edges that only know the JWKS URL, one Redis. Sessions outlive their edge,
 * replicas can die mid-burst, admission is cluster-wide, tokens are checked strictly, brute force is
 * locked out, and an edge never holds a private key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import { TestClient, startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const ADMIN = 'admin-token-for-tests-0123456789';
const API_KEY = 'api-key-for-tests';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'sb-keys-'));
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const keyFile = join(dir, 'key-2026.pem');
writeFileSync(keyFile, privatePem);

const common = {
  SWITCHBOARD_MODE: 'production',
  SWITCHBOARD_ALLOWED_ORIGINS: '*',
  SWITCHBOARD_API_KEYS: API_KEY,
  SWITCHBOARD_SHARDS: '16',
  SWITCHBOARD_HISTORY_SIZE: '1000',
  SWITCHBOARD_DRAIN_MS: '100',
};

let redis: RedisServer;
let s1: SwitchboardProcess;
let s2: SwitchboardProcess;
let a: SwitchboardProcess;
let b: SwitchboardProcess;

function sessionEnv(name: string): Record<string, string> {
  return {
    ...common,
    REDIS_URL: redis.url,
    NODE_ID: name,
    SESSION_JWT_KEY_FILES: keyFile,
    SWITCHBOARD_ADMIN_TOKEN: ADMIN,
    SESSION_NODE_DEAD_SEC: '3',
    SESSION_RPC_CLAIM_IDLE_MS: '500',
    SESSION_MAX_LOGIN_FAILURES: '3',
    SESSION_LOCKOUT_SEC: '2',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '1000',
    SWITCHBOARD_MAX_CONNECTIONS_PER_USER: '100',
  };
}

function edgeEnv(name: string): Record<string, string> {
  return {
    ...common,
    REDIS_URL: redis.url,
    NODE_ID: name,
    SWITCHBOARD_JWKS_URL: `${s1.httpUrl}/.well-known/jwks.json`,
    SWITCHBOARD_HEARTBEAT_SEC: '1',
    SWITCHBOARD_SESSION_CHECKPOINT_MS: '200',
  };
}

async function admin(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${s1.httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, unknown>;
}

async function token(sub: string, ttl = '1h'): Promise<string> {
  return (await admin('/v1/tokens', { sub, ttl })).token as string;
}

async function login(url: string, username: string, password: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function connect(edge: SwitchboardProcess, auth: Record<string, unknown>): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const c = await TestClient.connect(`${edge.wsUrl}/ws`);
  c.send({ type: 'auth', ...auth });
  return { c, res: await c.nextOfType('auth_response', 8000) };
}

async function publish(edge: SwitchboardProcess, channel: string, data: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${edge.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ channel, data }),
  });
  if (!res.ok) throw new Error(`publish ${res.status}`);
}

beforeAll(async () => {
  redis = await startRedis();
  [s1, s2] = await Promise.all([
    startSwitchboard(BIN, 'session', sessionEnv('session-1'), 20_000, 'SESSION_PORT'),
    startSwitchboard(BIN, 'session', sessionEnv('session-2'), 20_000, 'SESSION_PORT'),
  ]);
  [a, b] = await Promise.all([startSwitchboard(BIN, 'edge', edgeEnv('edge-a')), startSwitchboard(BIN, 'edge', edgeEnv('edge-b'))]);
  await admin('/v1/users', { name: 'alice', password: 'alice-password-1', roles: ['operator'] });
}, 90_000);

afterAll(async () => {
  await Promise.all([a, b, s1, s2].filter(Boolean).map((p) => p.stop()));
  await redis?.stop();
});

/** Scans a process's readable memory for any of `needles`. */
function memoryContains(pid: number, needles: readonly Buffer[]): boolean {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const chunk = Buffer.alloc(1 << 20);
  const overlap = Math.max(...needles.map((n) => n.length));
  try {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) r/.exec(line);
      if (!m || line.includes('[vvar]')) continue;
      const start = parseInt(m[1]!, 16);
      const end = parseInt(m[2]!, 16);
      for (let pos = start; pos < end; pos += chunk.length - overlap) {
        let n = 0;
        try {
          n = readSync(fd, chunk, 0, Math.min(chunk.length, end - pos), pos);
        } catch {
          break;
        }
        const view = chunk.subarray(0, n);
        if (needles.some((needle) => view.includes(needle))) return true;
      }
    }
  } finally {
    closeSync(fd);
  }
  return false;
}

describe('edges hold no secrets', () => {
  it('an edge refuses to start when its environment names a private key or the admin token', async () => {
    await expect(startSwitchboard(BIN, 'edge', { ...edgeEnv('edge-bad'), SESSION_JWT_KEY_FILES: keyFile }, 10_000)).rejects.toThrow(
      /SESSION_JWT_KEY_FILES: a session-service option/,
    );
    await expect(startSwitchboard(BIN, 'edge', { ...edgeEnv('edge-bad'), SWITCHBOARD_JWT_SECRET: 'x'.repeat(40) }, 10_000)).rejects.toThrow(
      /holds no secrets/,
    );
  });

  it("an edge's environment and memory hold no private key, after serving authenticated clients", async () => {
    const { c, res } = await connect(a, { token: await token('alice') });
    expect(res.success).toBe(true);
    await c.close();
    const body = privatePem.split('\n').slice(1, -2).join('');
    const jwk = await exportJWK(privateKey);
    const needles = [Buffer.from(body.slice(100, 164)), Buffer.from(jwk.d!.slice(0, 64)), privateKey.export({ type: 'pkcs8', format: 'der' }).subarray(40, 104)];
    // The scanner works: this test process holds the key.
    expect(memoryContains(process.pid, needles)).toBe(true);
    for (const edge of [a, b]) {
      const environ = readFileSync(`/proc/${edge.child.pid}/environ`, 'utf8');
      expect(environ).not.toContain('PRIVATE KEY');
      expect(environ).not.toContain(keyFile);
      expect(memoryContains(edge.child.pid!, needles)).toBe(false);
    }
  }, 60_000);
});

describe('tokens are verified strictly at the edge (RS256 via JWKS, production mode)', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const base = () => new SignJWT({ roles: [] }).setSubject('alice').setIssuer('switchboard').setAudience('switchboard');
  const cases: [string, () => Promise<string>, string][] = [
    ['alg none', () => Promise.resolve(new UnsecuredJWT({ sub: 'alice', iss: 'switchboard', aud: 'switchboard', exp: now() + 60 }).encode()), 'invalid_token'],
    [
      'HS256 signed with the RSA public key',
      () => base().setProtectedHeader({ alg: 'HS256', kid: 'key-2026' }).setExpirationTime(now() + 60).sign(publicKey.export({ type: 'spki', format: 'der' })),
      'invalid_token',
    ],
    ['expired', () => base().setProtectedHeader({ alg: 'RS256', kid: 'key-2026' }).setExpirationTime(now() - 60).sign(privateKey), 'expired_token'],
    [
      'not yet valid',
      () => base().setProtectedHeader({ alg: 'RS256', kid: 'key-2026' }).setNotBefore(now() + 600).setExpirationTime(now() + 900).sign(privateKey),
      'invalid_token',
    ],
    [
      'wrong audience',
      () => new SignJWT({}).setSubject('alice').setIssuer('switchboard').setAudience('elsewhere').setProtectedHeader({ alg: 'RS256', kid: 'key-2026' }).setExpirationTime(now() + 60).sign(privateKey),
      'invalid_token',
    ],
    [
      'wrong issuer',
      () => new SignJWT({}).setSubject('alice').setIssuer('mallory').setAudience('switchboard').setProtectedHeader({ alg: 'RS256', kid: 'key-2026' }).setExpirationTime(now() + 60).sign(privateKey),
      'invalid_token',
    ],
    [
      'unknown kid (signed by a key the service never published)',
      () => base().setProtectedHeader({ alg: 'RS256', kid: 'rogue' }).setExpirationTime(now() + 60).sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
      'invalid_token',
    ],
  ];
  for (const [name, make, code] of cases) {
    it(`refuses ${name} with ${code}`, async () => {
      const { c, res } = await connect(b, { token: await make() });
      expect(res).toMatchObject({ success: false, error: code });
      await c.close();
    });
  }

  it('accepts a token the service signed, and one from a login', async () => {
    expect((await connect(b, { token: await token('alice') })).res.success).toBe(true);
    const l = await login(a.httpUrl, 'alice', 'alice-password-1');
    expect(l.status).toBe(200);
    // The login's session, first used here: continued under its id, but nothing to resume yet.
    expect((await connect(b, { token: l.body.token })).res).toMatchObject({ success: true, session_id: l.body.session_id, resumed: false });
  });
});

describe('brute force', () => {
  it('after N wrong passwords even the right one is refused for the lockout time; success resets', async () => {
    await admin('/v1/users', { name: 'bob', password: 'bob-password-1' });
    for (let i = 0; i < 3; i++) expect((await login(a.httpUrl, 'bob', 'wrong-password')).body.error).toBe('invalid_credentials');
    const locked = await login(s2.httpUrl, 'bob', 'bob-password-1');
    expect(locked.status).toBe(429);
    expect(locked.body).toMatchObject({ error: 'locked_out' });
    expect(locked.body.retry_after).toBeGreaterThan(0);
    await sleep(2100);
    expect((await login(b.httpUrl, 'bob', 'bob-password-1')).status).toBe(200);
    // Reset: two more failures do not lock (the threshold counts from zero again).
    for (let i = 0; i < 2; i++) await login(a.httpUrl, 'bob', 'wrong-password');
    expect((await login(a.httpUrl, 'bob', 'bob-password-1')).status).toBe(200);
  });
});

describe('sessions outlive their edge', () => {
  it('kill the edge: the client resumes on the other edge with its session id and gets exactly what it missed', async () => {
    const edge = await startSwitchboard(BIN, 'edge', edgeEnv('edge-doomed'));
    const t = await token('alice');
    const { c, res } = await connect(edge, { token: t });
    const sessionId = res.session_id as string;
    c.send({ type: 'subscribe', channel: 'alerts' });
    c.send({ type: 'subscribe', channel: 'devices', device_id: 5 });
    await c.take(2, (m) => m.type === 'subscribe_response');
    await publish(a, 'alerts', { alert_id: 0 });
    const lastAlert = await c.nextOfType('alert', 5000);
    await edge.stop('SIGKILL');
    for (let i = 1; i <= 20; i++) await publish(b, 'alerts', { alert_id: i });
    await publish(b, 'devices', { device_id: 5, new_status: 'offline' });
    const back = await TestClient.connect(`${b.wsUrl}/ws`);
    back.send({ type: 'auth', token: t, session_id: sessionId, recover: { alerts: { epoch: lastAlert.epoch, offset: lastAlert.offset } } });
    expect(await back.nextOfType('auth_response', 8000)).toMatchObject({ success: true, session_id: sessionId, resumed: true });
    const restored = await back.take(2, (m) => m.type === 'subscribe_response', 8000);
    expect(restored.map((m) => m.channel).sort()).toEqual(['alerts', 'devices']);
    expect(restored.find((m) => m.channel === 'alerts')).toMatchObject({ recovered: true, replayed: 20 });
    const alerts = await back.take(20, (m) => m.type === 'alert', 8000);
    expect(alerts.map((m) => m.alert_id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await back.nextOfType('device_status_update', 5000)).device_id).toBe(5);
    await publish(a, 'alerts', { alert_id: 21 });
    expect((await back.nextOfType('alert', 5000)).alert_id).toBe(21);
    expect(await back.collect(300, (m) => m.type === 'alert')).toHaveLength(0);
    await back.close();
  }, 60_000);

  it('without client positions, the session resumes from its last checkpoint: at least once, no gap', async () => {
    const t = await token('alice');
    const { c, res } = await connect(a, { token: t });
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: 9 });
    await c.nextOfType('subscribe_response');
    for (let i = 1; i <= 5; i++) await publish(a, 'telemetry', { device_id: 9, seq: { value: i } });
    await c.take(5, (m) => m.type === 'telemetry_update', 5000);
    await sleep(600);
    await c.close();
    for (let i = 6; i <= 10; i++) await publish(b, 'telemetry', { device_id: 9, seq: { value: i } });
    const { c: back, res: again } = await connect(b, { token: t, session_id: res.session_id });
    expect(again).toMatchObject({ resumed: true });
    expect(await back.nextOfType('subscribe_response', 5000)).toMatchObject({ channel: 'telemetry', recovered: true });
    const got = (await back.collect(800, (m) => m.type === 'telemetry_update')).map((m) => (m.telemetry as { seq: { value: number } }).seq.value);
    expect(got.slice(-5)).toEqual([6, 7, 8, 9, 10]);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => 11 - got.length + i));
    await back.close();
  });

  it('an unknown session id, or another user’s, starts a new session (resumed: false)', async () => {
    await admin('/v1/users', { name: 'carol', password: 'carol-password-1' });
    const { res: mine } = await connect(a, { token: await token('alice') });
    const { res } = await connect(b, { token: await token('carol'), session_id: mine.session_id });
    expect(res).toMatchObject({ success: true, resumed: false });
    expect(res.session_id).not.toBe(mine.session_id);
    expect((await connect(b, { token: await token('carol'), session_id: 'no-such-session' })).res).toMatchObject({ resumed: false });
  });
});

describe('session replicas', () => {
  it('kill one of two replicas during a burst of logins: every login is answered', async () => {
    await admin('/v1/users', { name: 'dave', password: 'dave-password-1' });
    const extra = await startSwitchboard(BIN, 'session', sessionEnv('session-doomed'), 20_000, 'SESSION_PORT');
    const burst = Array.from({ length: 60 }, (_, i) => login(i % 2 ? a.httpUrl : b.httpUrl, 'dave', 'dave-password-1'));
    await sleep(150);
    await extra.stop('SIGKILL');
    const results = await Promise.all(burst);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    expect(new Set(results.map((r) => r.body.session_id)).size).toBe(60);
  }, 60_000);
});

describe('cluster-wide admission', () => {
  it('the 101st connection of a user over two edges is refused; a close makes room; a dead edge is reaped', async () => {
    await admin('/v1/users', { name: 'erin', password: 'erin-password-1' });
    const t = await token('erin');
    const doomed = await startSwitchboard(BIN, 'edge', edgeEnv('edge-reaped'));
    const open: TestClient[] = [];
    const edges = [a, b, doomed];
    for (let i = 0; i < 100; i++) {
      const { c, res } = await connect(edges[i % 3]!, { token: t });
      expect(res.success, `connection ${i + 1}`).toBe(true);
      open.push(c);
    }
    const { c: refused, res } = await connect(b, { token: t });
    expect(res).toMatchObject({ success: false, error: 'connection_limit' });
    expect((await refused.closed).code).toBe(4009);
    await open[0]!.close();
    await sleep(300);
    const { res: admitted, c: replacement } = await connect(a, { token: t });
    expect(admitted.success).toBe(true);
    open[0] = replacement;
    // The edge dies without releasing its 33 connections: missing heartbeats give them back.
    await doomed.stop('SIGKILL');
    const t0 = Date.now();
    let back: Record<string, unknown> = {};
    while (Date.now() - t0 < 30_000) {
      const { c, res: r } = await connect(a, { token: t });
      if (r.success === true) {
        back = r;
        await c.close();
        break;
      }
      await sleep(500);
    }
    expect(back.success).toBe(true);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await Promise.all(open.map((c) => c.close()));
  }, 90_000);
});

describe('graceful shutdown', () => {
  it('an edge stopped with SIGTERM releases its admission slots at once (no wait for the reaper)', async () => {
    await admin('/v1/users', { name: 'gus', password: 'gus-password-1' });
    const t = await token('gus');
    const leaving = await startSwitchboard(BIN, 'edge', edgeEnv('edge-leaving'));
    const open: TestClient[] = [];
    for (let i = 0; i < 100; i++) open.push((await connect(leaving, { token: t })).c);
    expect((await connect(a, { token: t })).res).toMatchObject({ success: false, error: 'connection_limit' });
    const exited = leaving.stop('SIGTERM');
    for (const c of open) expect((await c.closed).code).toBe(1012);
    const t0 = Date.now();
    expect(await exited).toBe(0);
    // The edge released its node's slots before exiting: the first try elsewhere is admitted, well
    // before SESSION_NODE_DEAD_SEC (3 s) plus a reaper round (5 s) would have freed them.
    const { c, res } = await connect(a, { token: t });
    expect(res.success).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1500);
    await c.close();
  }, 60_000);
});

describe('new connections per user per minute (seed: 10)', () => {
  it('the 11th connection of a user within a minute is refused', async () => {
    const r = await startRedis();
    const env = { REDIS_URL: r.url, LOG_LEVEL: 'warn' };
    const session = await startSwitchboard(BIN, 'session', { ...env, NODE_ID: 's-rate' }, 20_000, 'SESSION_PORT');
    const edge = await startSwitchboard(BIN, 'edge', { ...env, NODE_ID: 'e-rate', SWITCHBOARD_SESSION_URL: session.httpUrl });
    const tok = (await (
      await fetch(`${session.httpUrl}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
        body: JSON.stringify({ sub: 'frank' }),
      })
    ).json()) as { token: string };
    for (let i = 0; i < 10; i++) {
      const { c, res } = await connect(edge, { token: tok.token });
      expect(res.success).toBe(true);
      await c.close();
    }
    const { res } = await connect(edge, { token: tok.token });
    expect(res).toMatchObject({ success: false, error: 'rate_limited' });
    await edge.stop();
    await session.stop();
    await r.stop();
  }, 60_000);
});
