import { describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT } from 'jose';
import { hmacIssuer } from './keys.js';
import { createJwtVerifier } from './tokens.js';

const secret = 'test-secret-that-is-long-enough-for-hs256';
const opts = { issuer: 'switchboard', audience: 'switchboard' };
const verifier = createJwtVerifier({ ...opts, hmacSecret: secret, clockToleranceSec: 0 });
const key = new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

function base(claims: Record<string, unknown> = {}) {
  return new SignJWT({ roles: ['reader'], ...claims }).setProtectedHeader({ alg: 'HS256' });
}

describe('HMAC tokens', () => {
  it('round-trips sub, roles and tenant', async () => {
    const token = await hmacIssuer(secret, opts).issue({ sub: 'alice', roles: ['admin'], tenant: 't1', ttlSec: 60 });
    const r = await verifier.verify(token);
    expect(r).toMatchObject({ ok: true, identity: { userId: 'alice', roles: ['admin'], tenant: 't1' } });
  });

  it('refuses an expired token with expired_token', async () => {
    const token = await base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() - 10).sign(key);
    expect(await verifier.verify(token)).toMatchObject({ ok: false, code: 'expired_token' });
  });

  const invalid: [string, () => Promise<string>][] = [
    ['alg none', () => Promise.resolve(new UnsecuredJWT({ sub: 'a', iss: 'switchboard', aud: 'switchboard', exp: now() + 60 }).encode())],
    ['wrong secret', async () => base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(new TextEncoder().encode('another-secret-that-is-long-enough-xx'))],
    ['wrong audience', async () => base().setSubject('a').setIssuer('switchboard').setAudience('other').setExpirationTime(now() + 60).sign(key)],
    ['wrong issuer', async () => base().setSubject('a').setIssuer('evil').setAudience('switchboard').setExpirationTime(now() + 60).sign(key)],
    ['no exp', async () => base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').sign(key)],
    ['no sub', async () => base().setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(key)],
    ['not yet valid', async () => base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setNotBefore(now() + 600).setExpirationTime(now() + 900).sign(key)],
    ['HS512 (algorithm not pinned)', async () => new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('a').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(new TextEncoder().encode(secret + secret))],
    ['roles not an array', async () => base({ roles: 'admin' }).setSubject('a').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(key)],
    ['garbage', () => Promise.resolve('not.a.jwt')],
    ['exp in the year 3000', async () => base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setIssuedAt().setExpirationTime(32503680000).sign(key)],
    ['exp beyond the maximum lifetime without iat', async () => base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 8 * 86_400).sign(key)],
    ['iat an hour in the future', async () => base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setIssuedAt(now() + 3600).setExpirationTime(now() + 7200).sign(key)],
    ['sub with CR/LF', async () => base().setSubject('alice\r\nadmin: yes').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(key)],
    ['sub with a bidi override', async () => base().setSubject('alice\u202egpj').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(key)],
    ['sub with a leading space', async () => base().setSubject(' alice').setIssuer('switchboard').setAudience('switchboard').setExpirationTime(now() + 60).sign(key)],
  ];
  it('accepts printable subjects (unicode letters, inner spaces, punctuation) and iat within the clock skew', async () => {
    for (const sub of ['Zoë Smith', 'user@example.com', 'svc:ingest/7', '山田']) {
      const token = await base().setSubject(sub).setIssuer('switchboard').setAudience('switchboard').setIssuedAt().setExpirationTime(now() + 60).sign(key);
      expect(await verifier.verify(token)).toMatchObject({ ok: true, identity: { userId: sub } });
    }
    const skewed = createJwtVerifier({ ...opts, hmacSecret: secret, clockToleranceSec: 5, maxLifetimeSec: 3600 });
    const early = await base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setIssuedAt(now() + 3).setExpirationTime(now() + 600).sign(key);
    expect(await skewed.verify(early)).toMatchObject({ ok: true });
    const long = await base().setSubject('a').setIssuer('switchboard').setAudience('switchboard').setIssuedAt().setExpirationTime(now() + 3700).sign(key);
    expect(await skewed.verify(long)).toMatchObject({ ok: false, code: 'invalid_token' });
  });

  for (const [name, make] of invalid) {
    it(`refuses ${name} with invalid_token`, async () => {
      const r = await verifier.verify(await make());
      expect(r).toMatchObject({ ok: false, code: 'invalid_token' });
      if (!r.ok) expect(r.message.length).toBeGreaterThan(5);
    });
  }
});
