/**
 * The session service's HTTP API (node:http: it serves logins and admin calls, not fan-out):
 * `POST /v1/login`, `POST /v1/logout` (Bearer: the token to log out), `GET /.well-known/jwks.json`, the
 * admin API under `/v1/users`, `/v1/tokens` and `/v1/sessions` (Bearer admin token), `/metrics`,
 * `/v1/stats`, `/healthz`, `/readyz`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ERROR_CODES, SwitchboardError, clientAddress, parseJsonGuarded, isPlainObject, isValidTenant, parseDurationMs, type ErrorCode, type Identity, type Logger } from '@switchboard/core';
import type { TokenCheck } from './api.js';
import type { TokenVerifier } from './tokens.js';
import type { Registry } from 'prom-client';
import type { TokenIssuer } from './keys.js';
import type { SessionService } from './service.js';

const MAX_BODY_BYTES = 16 * 1024;

/** Options of {@link startSessionHttp}. */
export interface SessionHttpOptions {
  readonly service: SessionService;
  readonly issuer: TokenIssuer;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** Admin bearer token; the admin API is off without one. */
  readonly adminToken: string | undefined;
  /** Whether the backends are reachable (for `/readyz`). */
  readonly ready: () => boolean;
  /** Verifies the tokens `POST /v1/logout` is called with. */
  readonly verifier: TokenVerifier;
  /** Addresses of reverse proxies whose `X-Forwarded-For` names the client; no one else's is believed. */
  readonly trustedProxies: readonly string[];
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

function fail(res: ServerResponse, code: ErrorCode, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): void {
  send(res, ERROR_CODES[code].http, { error: code, message, ...extra }, headers);
}

function readJson(req: IncomingMessage): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; code: ErrorCode; message: string }> {
  return new Promise((resolve) => {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      resolve({ ok: false, code: 'unsupported_media_type', message: 'body must be application/json' });
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        done = true;
        resolve({ ok: false, code: 'message_too_large', message: `body is larger than ${MAX_BODY_BYTES} bytes` });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const parsed = parseJsonGuarded(Buffer.concat(chunks).toString('utf8'), 8);
      if (!parsed.ok) resolve(parsed);
      else if (!isPlainObject(parsed.value)) resolve({ ok: false, code: 'invalid_message', message: 'body must be a JSON object' });
      else resolve({ ok: true, value: parsed.value });
    });
    req.on('error', () => {
      if (!done) {
        done = true;
        resolve({ ok: false, code: 'invalid_message', message: 'request aborted' });
      }
    });
  });
}

/** The counters `GET /v1/stats` reports, by outcome: what `/metrics` shows, as JSON. */
const STATS: Readonly<Record<string, string>> = {
  logins: 'switchboard_session_logins_total',
  admissions: 'switchboard_session_admissions_total',
  sessions: 'switchboard_session_sessions_total',
};

/**
 * `GET /v1/stats`: this replica's login, admission and session counters since it started, by outcome
 * (lockouts are logins answered `locked_out`), for the edges' admin page. Public like `/metrics`: counts only.
 */
async function stats(registry: Registry): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { at: Date.now() };
  for (const [key, name] of Object.entries(STATS)) {
    const byOutcome: Record<string, number> = {};
    const metric = registry.getSingleMetric(name);
    if (metric) for (const v of (await metric.get()).values) byOutcome[String(v.labels.outcome)] = v.value;
    out[key] = byOutcome;
  }
  return out;
}

/** What the revocation checks need of a verified identity. */
function tokenCheckOf(identity: Identity): TokenCheck {
  return {
    userId: identity.userId,
    ...(identity.tenant !== undefined ? { tenant: identity.tenant } : {}),
    ...(identity.sessionId !== undefined ? { tokenSessionId: identity.sessionId } : {}),
    ...(identity.iat !== undefined ? { issuedAt: identity.iat } : {}),
  };
}

/** Starts the HTTP API; resolves with the bound port and a close function. */
export async function startSessionHttp(o: SessionHttpOptions): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const log = o.logger.child({ component: 'session-http' });
  const trusted = new Set(o.trustedProxies);
  const adminDigest = o.adminToken ? createHash('sha256').update(o.adminToken).digest() : null;
  const isAdmin = (req: IncomingMessage) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m || !adminDigest) return false;
    return timingSafeEqual(createHash('sha256').update(m[1]!).digest(), adminDigest);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (method === 'GET' && path === '/readyz') return o.ready() ? send(res, 200, { status: 'ready' }) : send(res, 503, { status: 'not ready' });
    if (method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'content-type': o.registry.contentType });
      res.end(await o.registry.metrics());
      return;
    }
    if (method === 'GET' && path === '/v1/stats') return send(res, 200, await stats(o.registry));
    if (method === 'GET' && path === '/.well-known/jwks.json') return send(res, 200, o.issuer.jwks(), { 'cache-control': 'max-age=300' });
    if (method === 'POST' && path === '/v1/login') {
      const body = await readJson(req);
      if (!body.ok) return fail(res, body.code, body.message);
      const r = await o.service.login({
        username: body.value.username as string,
        password: body.value.password as string,
        ip: clientAddress(req.socket.remoteAddress ?? 'unknown', req.headers['x-forwarded-for'], trusted),
      });
      if (r.ok) return send(res, 200, { token: r.token, session_id: r.sessionId, expiry: new Date(r.expiresAt).toISOString(), user: r.user });
      if (r.code === 'locked_out')
        return fail(res, r.code, r.message, { retry_after: r.retryAfterSec }, { 'retry-after': String(r.retryAfterSec ?? 1) });
      return fail(res, r.code, r.message);
    }
    if (method === 'POST' && path === '/v1/logout') {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m) return fail(res, 'unauthorized', 'send Authorization: Bearer <token> (the token to log out)');
      const v = await o.verifier.verify(m[1]!);
      if (!v.ok) return fail(res, v.code, v.message);
      await o.service.logout(tokenCheckOf(v.identity));
      return send(res, 204, undefined);
    }
    if (path === '/v1/users' || path.startsWith('/v1/users/') || path === '/v1/tokens' || path.startsWith('/v1/sessions/')) {
      if (!isAdmin(req)) {
        // Say which: none sent, one refused, or no admin API at all (a caller who sent one must not read
        // "send one" as if it had been lost on the way).
        const message = !adminDigest
          ? 'the admin API is off: this service has no admin token (SWITCHBOARD_ADMIN_TOKEN)'
          : req.headers.authorization
            ? 'the admin token was refused'
            : 'send Authorization: Bearer <admin token>';
        return fail(res, 'unauthorized', message);
      }
      if (method === 'POST' && path === '/v1/users') {
        const body = await readJson(req);
        if (!body.ok) return fail(res, body.code, body.message);
        const user = await o.service.createUser({ name: body.value.name, password: body.value.password, roles: body.value.roles, tenant: body.value.tenant });
        return send(res, 201, user);
      }
      if (method === 'POST' && path === '/v1/tokens') {
        const body = await readJson(req);
        if (!body.ok) return fail(res, body.code, body.message);
        const v = body.value;
        const ttlMs = typeof v.ttl === 'string' ? parseDurationMs(v.ttl) : typeof v.ttl === 'number' ? v.ttl * 1000 : 3_600_000;
        if (ttlMs === null || ttlMs < 1000 || ttlMs > 366 * 86_400_000) return fail(res, 'invalid_message', '"ttl" must be a duration such as "1h"');
        if (typeof v.sub !== 'string') return fail(res, 'invalid_message', '"sub" must be a string');
        const roles = v.roles ?? [];
        if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) return fail(res, 'invalid_message', '"roles" must be an array of strings');
        if (v.tenant !== undefined && !isValidTenant(v.tenant)) return fail(res, 'invalid_message', '"tenant" must be a tenant name (letters, digits, "_", ".", "@", "-")');
        const token = await o.service.mintToken({
          sub: v.sub,
          roles,
          ttlSec: Math.floor(ttlMs / 1000),
          ...(typeof v.tenant === 'string' ? { tenant: v.tenant } : {}),
        });
        return send(res, 200, { token });
      }
      if (method === 'DELETE' && path.startsWith('/v1/sessions/')) {
        const id = decodeURIComponent(path.slice('/v1/sessions/'.length));
        if (!id || id.length > 256) return fail(res, 'invalid_message', 'name a session: DELETE /v1/sessions/<id>');
        await o.service.revokeSession(id);
        return send(res, 204, undefined);
      }
      const pw = /^\/v1\/users\/([^/]+)\/password$/.exec(path);
      if (method === 'POST' && pw) {
        const body = await readJson(req);
        if (!body.ok) return fail(res, body.code, body.message);
        const who = decodeURIComponent(pw[1]!);
        return (await o.service.changePassword(who, body.value.password)) ? send(res, 204, undefined) : fail(res, 'not_found', `no user "${who.slice(0, 64)}"`);
      }
      const name = decodeURIComponent(path.slice('/v1/users/'.length));
      if (method === 'GET' && name) {
        const u = await o.service.getUser(name);
        return u ? send(res, 200, u) : fail(res, 'not_found', `no user "${name.slice(0, 64)}"`);
      }
      if (method === 'DELETE' && name) {
        return (await o.service.deleteUser(name)) ? send(res, 204, undefined) : fail(res, 'not_found', `no user "${name.slice(0, 64)}"`);
      }
    }
    fail(res, 'not_found', 'no such route');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof SwitchboardError) return fail(res, err.code, err.message);
      log.error({ err }, 'request failed');
      fail(res, 'unavailable', 'the session service could not complete the request');
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
