import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import type { ErrorCode, Identity } from '@switchboard/core';

/** Result of verifying a client token. */
export type VerifyResult =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly code: Extract<ErrorCode, 'invalid_token' | 'expired_token'>; readonly message: string };

/** Verifies client JWTs. */
export interface TokenVerifier {
  verify(token: string): Promise<VerifyResult>;
}

/** Options of {@link createHmacVerifier}. */
export interface HmacVerifierOptions {
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  /** Allowed clock skew for `exp`/`nbf`, seconds. */
  readonly clockToleranceSec?: number;
}

const ROLE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Maps verified claims to an identity; rejects tokens whose claims have the wrong shape. */
export function identityFromClaims(payload: Record<string, unknown>): VerifyResult {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 128)
    return { ok: false, code: 'invalid_token', message: 'token has no valid "sub" claim' };
  const rawRoles = payload.roles ?? [];
  if (!Array.isArray(rawRoles) || rawRoles.length > 64 || !rawRoles.every((r) => typeof r === 'string' && ROLE_RE.test(r)))
    return { ok: false, code: 'invalid_token', message: '"roles" claim must be an array of role names' };
  const tenant = payload.tenant;
  if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length > 128))
    return { ok: false, code: 'invalid_token', message: '"tenant" claim must be a string' };
  const identity: Identity = {
    userId: sub,
    roles: rawRoles as string[],
    ...(tenant !== undefined ? { tenant } : {}),
    ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
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

/**
 * A verifier for HS256 tokens signed with a shared secret (dev and the all-in-one process). Algorithms
 * are pinned, and `exp`, `iss`, `aud` and `sub` are required.
 */
export function createHmacVerifier(opts: HmacVerifierOptions): TokenVerifier {
  const key = new TextEncoder().encode(opts.secret);
  return {
    async verify(token: string): Promise<VerifyResult> {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          issuer: opts.issuer,
          audience: opts.audience,
          requiredClaims: ['exp', 'iss', 'aud', 'sub'],
          clockTolerance: opts.clockToleranceSec ?? 5,
        });
        return identityFromClaims(payload);
      } catch (err) {
        return verifyFailure(err);
      }
    },
  };
}

/** Claims of a token to issue. */
export interface TokenClaims {
  readonly sub: string;
  readonly roles?: readonly string[];
  readonly tenant?: string;
  readonly ttlSec: number;
}

/** Signs an HS256 token with the shared secret. */
export async function signHmacToken(
  opts: { secret: string; issuer: string; audience: string },
  claims: TokenClaims,
): Promise<string> {
  const body: Record<string, unknown> = { roles: claims.roles ?? [] };
  if (claims.tenant !== undefined) body.tenant = claims.tenant;
  return new SignJWT(body)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(opts.issuer)
    .setAudience(opts.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSec)
    .sign(new TextEncoder().encode(opts.secret));
}
