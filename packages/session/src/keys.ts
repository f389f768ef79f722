/**
 * Signing keys of the session service: PEM private keys from files (RSA → RS256, EC P-256 → ES256),
 * one of them active, all published as a JWKS so that rotation never invalidates live tokens. In dev
 * mode without key files, tokens are HS256 with the shared dev secret instead.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, type JWK } from 'jose';
import type { TokenClaims } from './tokens.js';

/** One signing key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

/** Loads a PEM private key file; the `kid` is the file name without extension. */
export async function loadSigningKey(path: string): Promise<SigningKey> {
  const privateKey = createPrivateKey(readFileSync(path));
  const kid = basename(path, extname(path));
  let alg: SigningKey['alg'];
  if (privateKey.asymmetricKeyType === 'rsa') {
    if ((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error(`${path}: RSA keys need at least 2048 bits`);
    alg = 'RS256';
  } else if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') alg = 'ES256';
  else throw new Error(`${path}: only RSA (RS256) and EC P-256 (ES256) keys are supported`);
  const jwk = await exportJWK(createPublicKey(privateKey));
  return { kid, alg, privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** Issues tokens for the session service. */
export interface TokenIssuer {
  issue(claims: TokenClaims): Promise<string>;
  /** The public keys to publish (empty for HS256). */
  jwks(): { keys: JWK[] };
}

/** Options of the issuers. */
export interface IssuerOptions {
  readonly issuer: string;
  readonly audience: string;
}

function build(claims: TokenClaims, o: IssuerOptions): SignJWT {
  const body: Record<string, unknown> = { roles: claims.roles ?? [] };
  if (claims.tenant !== undefined) body.tenant = claims.tenant;
  if (claims.sid !== undefined) body.sid = claims.sid;
  return new SignJWT(body)
    .setSubject(claims.sub)
    .setIssuer(o.issuer)
    .setAudience(o.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSec);
}

/** Signs with the active key of a key set; publishes every key of the set. */
export function keySetIssuer(keys: readonly SigningKey[], activeKid: string | undefined, o: IssuerOptions): TokenIssuer {
  if (keys.length === 0) throw new Error('no signing keys');
  const active = activeKid ? keys.find((k) => k.kid === activeKid) : keys[0];
  if (!active) throw new Error(`SESSION_JWT_ACTIVE_KID=${activeKid}: no such key among ${keys.map((k) => k.kid).join(', ')}`);
  const published = { keys: keys.map((k) => k.publicJwk) };
  return {
    issue: (claims) => build(claims, o).setProtectedHeader({ alg: active.alg, kid: active.kid, typ: 'JWT' }).sign(active.privateKey),
    jwks: () => published,
  };
}

/** Signs HS256 with a shared secret (dev mode, and the all-in-one process). */
export function hmacIssuer(secret: string, o: IssuerOptions): TokenIssuer {
  const key = new TextEncoder().encode(secret);
  return {
    issue: (claims) => build(claims, o).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key),
    jwks: () => ({ keys: [] }),
  };
}
