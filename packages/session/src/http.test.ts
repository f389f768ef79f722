import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { hmacIssuer } from './keys.js';
import { MemorySessionRepo } from './repo-memory.js';
import { createSessionService } from './setup.js';
import { startSessionHttp } from './http.js';
import { createJwtVerifier } from './tokens.js';

const verifier = createJwtVerifier({ issuer: 'switchboard', audience: 'switchboard', hmacSecret: loadConfig({}).jwtSecret! });

let url = '';
let close: () => Promise<void>;
beforeAll(async () => {
  const config = loadConfig({}, { maxLoginFailures: 2, lockoutSec: 60 });
  const registry = createMetricsRegistry({ processMetrics: false });
  const logger = createLogger({ name: 'test', level: 'silent' });
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: 'switchboard', audience: 'switchboard' });
  const service = createSessionService(config, new MemorySessionRepo(config), issuer, logger, registry);
  const http = await startSessionHttp({ service, issuer, registry, logger, host: '127.0.0.1', port: 0, adminToken: 'admin-token-0123456789', ready: () => true, verifier, trustedProxies: [] });
  url = `http://127.0.0.1:${http.port}`;
  close = http.close;
});
afterAll(async () => {
  await close();
});

async function call(method: string, path: string, body?: unknown, token?: string, contentType = 'application/json') {
  const res = await fetch(url + path, {
    method,
    headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

describe('session HTTP API', () => {
  it('refuses the admin API without the admin token', async () => {
    expect(await call('POST', '/v1/users', { name: 'x', password: 'long-password' })).toMatchObject({
      status: 401,
      body: { error: 'unauthorized', message: 'send Authorization: Bearer <admin token>' },
    });
    // A token that was sent and is wrong is said to be refused, not asked for again.
    expect(await call('POST', '/v1/tokens', { sub: 'x' }, 'wrong-token-0123456789')).toMatchObject({
      status: 401,
      body: { error: 'unauthorized', message: 'the admin token was refused' },
    });
  });

  it('says the admin API is off when the service has no admin token', async () => {
    const config = loadConfig({});
    const registry = createMetricsRegistry({ processMetrics: false });
    const logger = createLogger({ name: 'test', level: 'silent' });
    const issuer = hmacIssuer(config.jwtSecret!, { issuer: 'switchboard', audience: 'switchboard' });
    const service = createSessionService(config, new MemorySessionRepo(config), issuer, logger, registry);
    const off = await startSessionHttp({ service, issuer, registry, logger, host: '127.0.0.1', port: 0, adminToken: undefined, ready: () => true, verifier, trustedProxies: [] });
    try {
      const res = await fetch(`http://127.0.0.1:${off.port}/v1/users/x`, { headers: { authorization: 'Bearer anything-at-all-123' } });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ message: expect.stringMatching(/^the admin API is off/) as unknown });
    } finally {
      await off.close();
    }
  });

  it('creates, reads and deletes users; refuses bad input with the registry codes', async () => {
    const t = 'admin-token-0123456789';
    expect(await call('POST', '/v1/users', { name: 'gina', password: 'gina-password', roles: ['a'] }, t)).toMatchObject({ status: 201, body: { name: 'gina', roles: ['a'] } });
    expect(await call('POST', '/v1/users', { name: 'gina', password: 'gina-password' }, t)).toMatchObject({ status: 409, body: { error: 'already_exists' } });
    expect(await call('POST', '/v1/users', { name: 'bad name', password: 'gina-password' }, t)).toMatchObject({ status: 400, body: { error: 'invalid_message' } });
    expect(await call('POST', '/v1/users', { name: 'h', password: 'short' }, t)).toMatchObject({ status: 400, body: { error: 'invalid_message' } });
    expect(await call('POST', '/v1/users', '{"name":', t)).toMatchObject({ status: 400, body: { error: 'invalid_json' } });
    expect(await call('POST', '/v1/users', '{"__proto__":{"admin":true}}', t)).toMatchObject({ status: 400, body: { error: 'forbidden_key' } });
    expect((await call('POST', '/v1/users', 'x', t, 'text/plain')).status).toBe(415);
    const got = await call('GET', '/v1/users/gina', undefined, t);
    expect(got.body).toMatchObject({ name: 'gina', roles: ['a'] });
    expect(got.body).not.toHaveProperty('passwordHash');
    expect((await call('DELETE', '/v1/users/gina', undefined, t)).status).toBe(204);
    expect((await call('GET', '/v1/users/gina', undefined, t)).status).toBe(404);
  });

  it('logs in, and locks out with Retry-After after repeated failures', async () => {
    const t = 'admin-token-0123456789';
    await call('POST', '/v1/users', { name: 'hank', password: 'hank-password' }, t);
    const ok = await call('POST', '/v1/login', { username: 'hank', password: 'hank-password' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ user: { name: 'hank' } });
    expect(typeof ok.body.token).toBe('string');
    expect(typeof ok.body.session_id).toBe('string');
    expect(new Date(ok.body.expiry as string).getTime()).toBeGreaterThan(Date.now());
    expect(await call('POST', '/v1/login', { username: 'nobody', password: 'whatever1' })).toMatchObject({ status: 401, body: { error: 'invalid_credentials' } });
    for (let i = 0; i < 2; i++) expect((await call('POST', '/v1/login', { username: 'hank', password: 'wrong-one' })).status).toBe(401);
    const locked = await call('POST', '/v1/login', { username: 'hank', password: 'hank-password' });
    expect(locked.status).toBe(429);
    expect(locked.body).toMatchObject({ error: 'locked_out' });
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(50);
  });

  it('serves the JWKS, health and metrics', async () => {
    expect((await call('GET', '/.well-known/jwks.json')).body).toEqual({ keys: [] });
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await call('GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('switchboard_session_logins_total{outcome="ok"} 1');
    expect(metrics).toContain('switchboard_session_logins_total{outcome="locked_out"} 1');
  });

  it('reports its login, lockout and admission counters as JSON for the admin page', async () => {
    const { status, body } = await call('GET', '/v1/stats');
    expect(status).toBe(200);
    // The logins of the first test: one ok, one unknown user and two wrong passwords, then a lockout.
    expect(body.logins).toEqual({ ok: 1, invalid_credentials: 3, locked_out: 1 });
    expect(body.admissions).toEqual({});
    expect(body.sessions).toMatchObject({ new: 1 });
    expect(Math.abs((body.at as number) - Date.now())).toBeLessThan(5000);
  });

  // Last: its logins would change the counts the metrics test reads.
  it('logs out with POST /v1/logout; admins revoke sessions, change passwords and cap token lifetimes', async () => {
    const ADMIN = 'admin-token-0123456789';
    expect((await call('POST', '/v1/users', { name: 'leo', password: 'leo-password-1' }, ADMIN)).status).toBe(201);
    const login = await call('POST', '/v1/login', { username: 'leo', password: 'leo-password-1' });
    expect(login.status).toBe(200);
    const token = login.body.token as string;
    expect(await call('POST', '/v1/logout', undefined)).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect(await call('POST', '/v1/logout', undefined, 'not.a.token')).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect((await call('POST', '/v1/logout', undefined, token)).status).toBe(204);
    // The session of the logged-out token is gone; a fresh login works and an admin can revoke it.
    const again = await call('POST', '/v1/login', { username: 'leo', password: 'leo-password-1' });
    expect((await call('DELETE', `/v1/sessions/${again.body.session_id as string}`, undefined, ADMIN)).status).toBe(204);
    expect((await call('DELETE', `/v1/sessions/${again.body.session_id as string}`, undefined)).status).toBe(401);
    // A password change: the old one stops working, the new one works; a weak one is refused.
    expect((await call('POST', '/v1/users/leo/password', { password: 'x' }, ADMIN)).status).toBe(400);
    expect((await call('POST', '/v1/users/leo/password', { password: 'leo-password-2' }, ADMIN)).status).toBe(204);
    expect((await call('POST', '/v1/users/nobody/password', { password: 'leo-password-2' }, ADMIN)).status).toBe(404);
    expect((await call('POST', '/v1/login', { username: 'leo', password: 'leo-password-1' })).status).toBe(401);
    expect((await call('POST', '/v1/login', { username: 'leo', password: 'leo-password-2' })).status).toBe(200);
    // No token longer than the maximum lifetime is minted.
    expect(await call('POST', '/v1/tokens', { sub: 'svc', ttl: '30d' }, ADMIN)).toMatchObject({ status: 400, body: { error: 'invalid_message' } });
    expect((await call('POST', '/v1/tokens', { sub: 'svc', ttl: '1d' }, ADMIN)).status).toBe(200);
  });
});
