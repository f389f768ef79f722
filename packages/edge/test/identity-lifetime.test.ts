/**
 * Identities do not outlive their tokens or their revocation (issue 11, defect 1), on one edge with the
 * in-memory backends, as `npm start` runs: a connection is closed with 4011 a little after its token's
 * `exp` unless a fresh token came; logout, user deletion, a password change and an admin revoking a
 * session close the affected sockets with 4012 and their tokens stop authenticating; a session resumed
 * on a new socket closes its older one with 4013.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { CLOSE_CODES } from '@switchboard/core';
import type { TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  node = await startTestNode({ clockSkewSec: 0, newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000 });
});
afterAll(() => node.close());

async function login(name: string, password = PASSWORD): Promise<{ token: string; session_id: string }> {
  const res = await fetch(`${node.httpUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name, password }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { token: string; session_id: string };
}

async function connectWith(token: string, sessionId?: string): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const c = await node.connect();
  c.send({ type: 'auth', token, ...(sessionId !== undefined ? { session_id: sessionId } : {}) });
  return { c, res: await c.nextOfType('auth_response') };
}

/** Closed with `code` within `ms`. */
async function closedWith(c: TestClient, code: number, ms: number): Promise<void> {
  const started = Date.now();
  const closed = await Promise.race([c.closed, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
  expect(closed, `closed within ${ms} ms`).not.toBeNull();
  expect(closed!.code).toBe(code);
  expect(Date.now() - started).toBeLessThanOrEqual(ms);
}

async function stillOpen(c: TestClient): Promise<void> {
  const ts = `t${Math.random()}`;
  c.send({ type: 'ping', timestamp: ts });
  expect(await c.next((m) => m.type === 'pong' && m.timestamp === ts)).toBeTruthy();
}

describe('token expiry on live connections', () => {
  it('a connection is closed with 4011 shortly after its token expires, and receives nothing after', async () => {
    const { c, res } = await connectWith(await node.token('short-lived', { ttlSec: 2 }));
    expect(res.success).toBe(true);
    c.send({ type: 'subscribe', channel: 'alerts' });
    await c.nextOfType('subscribe_response');
    await closedWith(c, CLOSE_CODES.token_expired.code, 4500);
  });

  it('a valtronics client that re-auths with a fresh token for the same user stays connected', async () => {
    const { c } = await connectWith(await node.token('refresher', { ttlSec: 2 }));
    await new Promise((r) => setTimeout(r, 800));
    c.send({ type: 'auth', token: await node.token('refresher', { ttlSec: 60 }) });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: true });
    await new Promise((r) => setTimeout(r, 3500));
    await stillOpen(c);
  });
});

describe('tokens a live identity must not come from', () => {
  const sign = (sub: string, claims: { iat?: number; exp: number }) =>
    new SignJWT({ roles: [] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuer(node.config.jwtIssuer)
      .setAudience(node.config.jwtAudience)
      .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000))
      .setExpirationTime(claims.exp)
      .sign(new TextEncoder().encode(node.config.jwtSecret));
  const now = () => Math.floor(Date.now() / 1000);

  it('exp in the year 3000, iat an hour ahead, a sub with CR/LF: refused at auth with invalid_token', async () => {
    for (const token of [
      await sign('far-future', { exp: 32503680000 }),
      await sign('time-traveller', { iat: now() + 3600, exp: now() + 7200 }),
      await sign('alice\r\nroles: admin', { exp: now() + 60 }),
    ]) {
      const { res } = await connectWith(token);
      expect(res).toMatchObject({ success: false, error: 'invalid_token' });
    }
  });
});

describe('logout and revocation close the affected sockets and end their tokens', () => {
  it('POST /v1/logout closes the socket (4012); the token and session id no longer authenticate or resume', async () => {
    await node.session.createUser({ name: 'leaver', password: PASSWORD });
    const { token, session_id } = await login('leaver');
    const { c, res } = await connectWith(token);
    expect(res).toMatchObject({ success: true, session_id });
    const bystander = await connectWith((await login('leaver')).token);
    const out = await fetch(`${node.httpUrl}/v1/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(out.status).toBe(204);
    await closedWith(c, CLOSE_CODES.session_revoked.code, 5000);
    // Another login of the same user (another session) is not logged out.
    await stillOpen(bystander.c);
    const again = await connectWith(token);
    expect(again.res).toMatchObject({ success: false, error: 'revoked_token' });
    const resumed = await connectWith(await node.token('leaver'), session_id);
    expect(resumed.res.session_id).not.toBe(session_id);
  });

  it('deleting a user closes its sockets and its tokens stop authenticating', async () => {
    await node.session.createUser({ name: 'doomed', password: PASSWORD });
    const { token } = await login('doomed');
    const a = await connectWith(token);
    const b = await connectWith(token);
    expect(await node.session.deleteUser('doomed')).toBe(true);
    await closedWith(a.c, CLOSE_CODES.session_revoked.code, 5000);
    await closedWith(b.c, CLOSE_CODES.session_revoked.code, 5000);
    expect((await connectWith(token)).res).toMatchObject({ success: false, error: 'revoked_token' });
  });

  it('a password change closes the sockets of earlier logins; a login with the new password works', async () => {
    await node.session.createUser({ name: 'rotator', password: PASSWORD });
    const old = await login('rotator');
    const a = await connectWith(old.token);
    expect(await node.session.changePassword('rotator', 'a brand new passphrase')).toBe(true);
    await closedWith(a.c, CLOSE_CODES.session_revoked.code, 5000);
    expect((await connectWith(old.token)).res).toMatchObject({ success: false, error: 'revoked_token' });
    const fresh = await login('rotator', 'a brand new passphrase');
    const b = await connectWith(fresh.token);
    expect(b.res.success).toBe(true);
    await stillOpen(b.c);
  });

  it('an admin revoking a session closes its socket', async () => {
    await node.session.createUser({ name: 'watched', password: PASSWORD });
    const { token, session_id } = await login('watched');
    const { c } = await connectWith(token);
    await node.session.revokeSession(session_id);
    await closedWith(c, CLOSE_CODES.session_revoked.code, 5000);
  });

  it('a re-auth with a revoked token on a live connection is refused and closes it', async () => {
    await node.session.createUser({ name: 'renewer', password: PASSWORD });
    const first = await login('renewer');
    const { c } = await connectWith(await node.token('renewer'));
    await node.session.revokeSession(first.session_id);
    c.send({ type: 'auth', token: first.token });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: false, error: 'revoked_token' });
    await closedWith(c, CLOSE_CODES.session_revoked.code, 2000);
  });
});

describe('one session, one socket', () => {
  it('resuming a session on a new socket closes the older one with 4013', async () => {
    await node.session.createUser({ name: 'mover', password: PASSWORD });
    const { token, session_id } = await login('mover');
    const first = await connectWith(token);
    first.c.send({ type: 'subscribe', channel: 'alerts' });
    await first.c.nextOfType('subscribe_response');
    const second = await connectWith(token, session_id);
    expect(second.res).toMatchObject({ success: true, session_id, resumed: true });
    await closedWith(first.c, CLOSE_CODES.session_replaced.code, 3000);
    await stillOpen(second.c);
  });
});
