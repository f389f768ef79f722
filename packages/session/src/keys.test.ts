import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { hmacIssuer, keySetIssuer, loadSigningKey } from './keys.js';
import { dummyHash, hashPassword, passwordPolicyProblem, verifyPassword } from './passwords.js';
import { createDeviceTokenVerifier, createJwtVerifier } from './tokens.js';

const dir = mkdtempSync(join(tmpdir(), 'sb-keys-test-'));
function pem(name: string, kind: 'rsa' | 'ec' | 'rsa-small' | 'ed'): string {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : kind === 'rsa-small'
        ? generateKeyPairSync('rsa', { modulusLength: 1024 })
        : kind === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
          : generateKeyPairSync('ed25519');
  const file = join(dir, `${name}.pem`);
  writeFileSync(file, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, `${name}.pub.pem`), pair.publicKey.export({ type: 'spki', format: 'pem' }));
  return file;
}
const o = { issuer: 'switchboard', audience: 'switchboard' };

describe('passwords', () => {
  it('hashes with scrypt and a salt, verifies, refuses wrong passwords and malformed hashes', async () => {
    const h = await hashPassword('correct horse');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(h).not.toBe(await hashPassword('correct horse'));
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsf', h)).toBe(false);
    expect(await verifyPassword('x', 'plain')).toBe(false);
    expect(await verifyPassword('x', await dummyHash())).toBe(false);
  });
  it('applies the policy', () => {
    expect(passwordPolicyProblem('short')).toMatch(/at least 8/);
    expect(passwordPolicyProblem('x'.repeat(2000))).toMatch(/at most/);
    expect(passwordPolicyProblem(42)).toMatch(/string/);
    expect(passwordPolicyProblem('long enough')).toBeNull();
  });
});

describe('signing keys, JWKS and rotation', () => {
  it('loads RSA as RS256 and EC P-256 as ES256 with kid from the file name; refuses weak or other keys', async () => {
    expect(await loadSigningKey(pem('rsa-a', 'rsa'))).toMatchObject({ kid: 'rsa-a', alg: 'RS256', publicJwk: { kty: 'RSA', kid: 'rsa-a', use: 'sig' } });
    expect(await loadSigningKey(pem('ec-a', 'ec'))).toMatchObject({ kid: 'ec-a', alg: 'ES256', publicJwk: { kty: 'EC', crv: 'P-256' } });
    await expect(loadSigningKey(pem('tiny', 'rsa-small'))).rejects.toThrow(/2048/);
    await expect(loadSigningKey(pem('ed', 'ed'))).rejects.toThrow(/only RSA/);
  });

  it('the JWKS never contains private parts', async () => {
    const issuer = keySetIssuer([await loadSigningKey(pem('rsa-b', 'rsa'))], undefined, o);
    for (const k of issuer.jwks().keys) for (const part of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(part);
  });

  it('rotation: tokens of the old key stay valid while the new key signs, as long as both are published', async () => {
    const oldKey = await loadSigningKey(pem('2025', 'rsa'));
    const newKey = await loadSigningKey(pem('2026', 'ec'));
    const before = keySetIssuer([oldKey], undefined, o);
    const during = keySetIssuer([oldKey, newKey], '2026', o);
    const after = keySetIssuer([newKey], undefined, o);
    const oldToken = await before.issue({ sub: 'alice', ttlSec: 60 });
    const newToken = await during.issue({ sub: 'alice', ttlSec: 60 });
    expect(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString())).toMatchObject({ alg: 'ES256', kid: '2026' });
    const duringVerifier = createJwtVerifier({ ...o, localJwks: during.jwks() });
    expect((await duringVerifier.verify(oldToken)).ok).toBe(true);
    expect((await duringVerifier.verify(newToken)).ok).toBe(true);
    const afterVerifier = createJwtVerifier({ ...o, localJwks: after.jwks() });
    expect(await afterVerifier.verify(oldToken)).toMatchObject({ ok: false, code: 'invalid_token' });
    expect((await afterVerifier.verify(newToken)).ok).toBe(true);
    expect(() => keySetIssuer([oldKey], 'nope', o)).toThrow(/no such key/);
  });

  it('HS256 verifies only where a secret is configured', async () => {
    const hs = await hmacIssuer('a-secret-of-at-least-thirty-two-chars!!', o).issue({ sub: 'alice', ttlSec: 60, sid: 'sess-1' });
    expect(await createJwtVerifier({ ...o, hmacSecret: 'a-secret-of-at-least-thirty-two-chars!!' }).verify(hs)).toMatchObject({
      ok: true,
      identity: { userId: 'alice', sessionId: 'sess-1' },
    });
    const rsOnly = createJwtVerifier({ ...o, localJwks: keySetIssuer([await loadSigningKey(pem('rsa-c', 'rsa'))], undefined, o).jwks() });
    expect(await rsOnly.verify(hs)).toMatchObject({ ok: false, code: 'invalid_token' });
  });
});

describe('OISP device tokens', () => {
  it('verifies RS256 device tokens whose sub is the device, with exp required; accountId comes back', async () => {
    const priv = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pubFile = join(dir, 'device.pub.pem');
    writeFileSync(pubFile, priv.publicKey.export({ type: 'spki', format: 'pem' }));
    const verify = createDeviceTokenVerifier(pubFile);
    const now = Math.floor(Date.now() / 1000);
    const good = await new SignJWT({}).setSubject('dev-1').setProtectedHeader({ alg: 'RS256' }).setExpirationTime(now + 60).sign(priv.privateKey);
    expect(await verify(good, 'dev-1')).toEqual({ ok: true, deviceId: 'dev-1' });
    expect(await verify(good, 'dev-2')).toEqual({ ok: false, message: 'Invalid device token' });
    const withAccount = await new SignJWT({ accountId: 'acct-1' }).setSubject('dev-1').setProtectedHeader({ alg: 'RS256' }).setExpirationTime(now + 60).sign(priv.privateKey);
    expect(await verify(withAccount, 'dev-1')).toEqual({ ok: true, deviceId: 'dev-1', accountId: 'acct-1' });
    const badAccount = await new SignJWT({ accountId: 'a:b' }).setSubject('dev-1').setProtectedHeader({ alg: 'RS256' }).setExpirationTime(now + 60).sign(priv.privateKey);
    expect((await verify(badAccount, 'dev-1')).ok).toBe(false);
    // A deviceId claim alone does not make the token the device's: sub must name it.
    const claimOnly = await new SignJWT({ deviceId: 'dev-1' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime(now + 60).sign(priv.privateKey);
    expect((await verify(claimOnly, 'dev-1')).ok).toBe(false);
    const hs = await new SignJWT({}).setSubject('dev-1').setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now + 60).sign(new TextEncoder().encode('x'.repeat(32)));
    expect((await verify(hs, 'dev-1')).ok).toBe(false);
    const noExp = await new SignJWT({ sub: 'dev-1' }).setProtectedHeader({ alg: 'RS256' }).sign(priv.privateKey);
    expect((await verify(noExp, 'dev-1')).ok).toBe(false);
    const other = await new SignJWT({ sub: 'dev-1' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(now + 60)
      .sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    expect((await verify(other, 'dev-1')).ok).toBe(false);
    expect(() => createDeviceTokenVerifier(join(dir, 'ec-a.pub.pem'))).toThrow(/RSA/);
  });
});
