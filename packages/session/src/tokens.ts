import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWK, type JWTHeaderParameters, type JWTVerifyGetKey } from 'jose';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isValidTenant, type ErrorCode, type Identity } from '@switchboard/core';

/** Result of verifying a client token. */
export type VerifyResult =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly code: Extract<ErrorCode, 'invalid_token' | 'expired_token'>; readonly message: string };

/** Verifies client JWTs. */
export interface TokenVerifier {
  verify(token: string): Promise<VerifyResult>;
}

const ROLE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Most device ids a token's `devices` claim may list. */
const MAX_DEVICES = 1000;
/**
 * A subject is printable: letters, marks, digits, punctuation, symbols and inner spaces. No control
 * character (CR/LF would forge log lines and headers), no format character (bidi overrides disguise a
 * name), no leading or trailing space.
 */
const SUB_RE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}](?:[\p{L}\p{M}\p{N}\p{P}\p{S} ]{0,126}[\p{L}\p{M}\p{N}\p{P}\p{S}])?$/u;

/** Whether `sub` may name a token's subject (printable, 1–128 characters). */
export function isValidSubject(sub: unknown): sub is string {
  return typeof sub === 'string' && SUB_RE.test(sub);
}

/** Maps verified claims to an identity; rejects tokens whose claims have the wrong shape. */
export function identityFromClaims(payload: Record<string, unknown>): VerifyResult {
  const sub = payload.sub;
  if (!isValidSubject(sub)) return { ok: false, code: 'invalid_token', message: 'token has no valid "sub" claim (1-128 printable characters)' };
  const rawRoles = payload.roles ?? [];
  if (!Array.isArray(rawRoles) || rawRoles.length > 64 || !rawRoles.every((r) => typeof r === 'string' && ROLE_RE.test(r)))
    return { ok: false, code: 'invalid_token', message: '"roles" claim must be an array of role names' };
  const tenant = payload.tenant;
  // The tenant becomes one segment of every bus channel name the connection reaches (`<dialect>:<tenant>:…`).
  if (tenant !== undefined && !isValidTenant(tenant))
    return { ok: false, code: 'invalid_token', message: '"tenant" claim must be a tenant name (letters, digits, "_", ".", "@", "-")' };
  const rawDevices = payload.devices;
  if (
    rawDevices !== undefined &&
    (!Array.isArray(rawDevices) ||
      rawDevices.length > MAX_DEVICES ||
      !rawDevices.every((d) => (typeof d === 'string' && d.length > 0 && d.length <= 128) || Number.isSafeInteger(d)))
  )
    return { ok: false, code: 'invalid_token', message: `"devices" claim must be an array of at most ${MAX_DEVICES} device ids` };
  const sid = payload.sid;
  const identity: Identity = {
    userId: sub,
    roles: rawRoles as string[],
    ...(tenant !== undefined ? { tenant } : {}),
    ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
    ...(typeof payload.iat === 'number' ? { iat: payload.iat } : {}),
    ...(rawDevices !== undefined ? { devices: (rawDevices as (string | number)[]).map(String) } : {}),
    ...(typeof sid === 'string' && sid.length > 0 && sid.length <= 128 ? { sessionId: sid } : {}),
  };
  return { ok: true, identity };
}

/** Maps a jose failure to the registered error codes, with a message that says what was wrong. */
export function verifyFailure(err: unknown): VerifyResult {
  if (err instanceof joseErrors.JWTExpired) return { ok: false, code: 'expired_token', message: 'token has expired' };
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return { ok: false, code: 'invalid_token', message: `token claim "${err.claim}" is invalid: ${err.reason}` };
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return { ok: false, code: 'invalid_token', message: 'token algorithm is not allowed' };
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return { ok: false, code: 'invalid_token', message: 'token signature is invalid' };
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return { ok: false, code: 'invalid_token', message: 'token key id is unknown' };
  if (err instanceof joseErrors.JOSEError) return { ok: false, code: 'invalid_token', message: 'token is malformed' };
  return { ok: false, code: 'invalid_token', message: 'token could not be verified' };
}

/** Claims of a token to issue. */
export interface TokenClaims {
  readonly sub: string;
  readonly roles?: readonly string[];
  readonly tenant?: string;
  /** The session the token belongs to (set at login). */
  readonly sid?: string;
  readonly ttlSec: number;
}

/** Options of {@link createJwtVerifier}. */
export interface JwtVerifierOptions {
  readonly issuer: string;
  readonly audience: string;
  /** JWKS URL of the session service (RS256/ES256); fetched lazily, cached, refetched on an unknown kid. */
  readonly jwksUrl?: string;
  /** Public keys known locally (the all-in-one process). */
  readonly localJwks?: { keys: JWK[] };
  /** HS256 shared secret; only in dev mode or the all-in-one process. */
  readonly hmacSecret?: string;
  readonly clockToleranceSec?: number;
  /** Longest accepted lifetime (`exp` − `iat`, or `exp` − now without `iat`); default 7 days. */
  readonly maxLifetimeSec?: number;
}

/** Default of {@link JwtVerifierOptions.maxLifetimeSec}. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SEC = 7 * 86_400;

/**
 * The lifetime rules jose does not check by itself: `iat` no further in the future than the clock-skew
 * allowance, and no token valid for longer than `maxLifetimeSec` (a stolen token dies in bounded time).
 */
export function lifetimeProblem(payload: { exp?: unknown; iat?: unknown }, nowSec: number, toleranceSec: number, maxLifetimeSec: number): string | null {
  const exp = payload.exp as number;
  if (payload.iat !== undefined) {
    if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) return 'token claim "iat" is invalid';
    if (payload.iat > nowSec + toleranceSec) return 'token claim "iat" is in the future (beyond the allowed clock skew)';
    if (exp - payload.iat > maxLifetimeSec) return `token lifetime (exp - iat) is longer than the allowed ${maxLifetimeSec} s`;
  }
  if (exp - nowSec > maxLifetimeSec + toleranceSec) return `token expires more than ${maxLifetimeSec} s from now`;
  return null;
}

/**
 * Verifies client JWTs the way an edge does: RS256/ES256 against the session service's JWKS, plus
 * HS256 with the shared secret when (and only when) one is configured. Algorithms are pinned to those,
 * so an HS256 token "signed" with an RSA public key, or `alg: none`, never verifies; `exp`, `iss`,
 * `aud` and `sub` are required.
 */
export function createJwtVerifier(o: JwtVerifierOptions): TokenVerifier {
  const remote = o.jwksUrl ? createRemoteJWKSet(new URL(o.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 }) : null;
  const local = o.localJwks && o.localJwks.keys.length > 0 ? createLocalJWKSet(o.localJwks) : null;
  const hmac = o.hmacSecret ? new TextEncoder().encode(o.hmacSecret) : null;
  const algorithms = [...(remote || local ? ['RS256', 'ES256'] : []), ...(hmac ? ['HS256'] : [])];
  const tolerance = o.clockToleranceSec ?? 5;
  const maxLifetime = o.maxLifetimeSec ?? DEFAULT_MAX_TOKEN_LIFETIME_SEC;
  const getKey: JWTVerifyGetKey = async (header: JWTHeaderParameters, token) => {
    if (header.alg === 'HS256') {
      if (!hmac) throw new joseErrors.JOSEAlgNotAllowed('HS256 is not accepted here');
      return hmac;
    }
    if (local) {
      try {
        return await local(header, token);
      } catch (err) {
        if (!remote) throw err;
      }
    }
    if (remote) return remote(header, token);
    throw new joseErrors.JOSEAlgNotAllowed(`${header.alg} is not accepted here`);
  };
  return {
    async verify(token: string): Promise<VerifyResult> {
      try {
        const { payload } = await jwtVerify(token, getKey, {
          algorithms,
          issuer: o.issuer,
          audience: o.audience,
          requiredClaims: ['exp', 'iss', 'aud', 'sub'],
          clockTolerance: tolerance,
        });
        const problem = lifetimeProblem(payload, Math.floor(Date.now() / 1000), tolerance, maxLifetime);
        if (problem) return { ok: false, code: 'invalid_token', message: problem };
        return identityFromClaims(payload);
      } catch (err) {
        return verifyFailure(err);
      }
    },
  };
}

/** Result of verifying an OISP device token: the device, and its account (the `accountId` claim) when the token names one. */
export type DeviceVerifyResult =
  | { readonly ok: true; readonly deviceId: string; readonly accountId?: string }
  | { readonly ok: false; readonly message: string };

/**
 * Verifies OISP device tokens (seed 003): RS256 only (an `alg: none` or HS256 token never verifies) with
 * the platform's public key from a PEM file; `exp` is required, the token's `sub` must be the device that
 * presents it (and a `deviceId` claim, when present, too). An `accountId` claim becomes the device's
 * tenant, so it must be a tenant name.
 */
export function createDeviceTokenVerifier(publicKeyFile: string): (token: string, deviceId: string) => Promise<DeviceVerifyResult> {
  const key = createPublicKey(readFileSync(publicKeyFile));
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`${publicKeyFile}: device tokens are RS256: an RSA public key is needed`);
  const invalid: DeviceVerifyResult = { ok: false, message: 'Invalid device token' };
  return async (token, deviceId) => {
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['RS256'], requiredClaims: ['exp', 'sub'] });
      if (payload.sub !== deviceId) return invalid;
      if (payload.deviceId !== undefined && payload.deviceId !== deviceId) return invalid;
      const accountId = payload.accountId;
      if (accountId === undefined) return { ok: true, deviceId };
      if (!isValidTenant(accountId)) return invalid;
      return { ok: true, deviceId, accountId };
    } catch {
      return invalid;
    }
  };
}
