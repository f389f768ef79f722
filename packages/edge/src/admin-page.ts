/**
 * The admin page on every edge's main port (docs/admin.md): `GET /admin` and its static files (built by
 * `@switchboard/admin`, served from memory with an ETag), and the routes it calls:
 *
 * - `POST /admin/login` `{"token": <session admin token>}`: exchanged through the session service
 *   (`POST /v1/tokens`) for a short-lived JWT with the `admin` role, which the page keeps in
 *   sessionStorage. Edges hold no secrets: the edge only forwards the token, and the session service
 *   decides. The token travels in a POST body, never in a URL (no history, no logs, no Referer).
 * - `GET /admin/stats` (admin JWT): every edge's live counters (`admin-stats.ts`) and the session
 *   service's login, lockout and admission counters (`GET /v1/stats` there).
 * - `POST /admin/publish` (admin JWT): one test message, in the body `POST /api/publish` takes.
 */
import { isPlainObject, parseJsonGuarded, type Logger } from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import type { TokenVerifier } from '@switchboard/session';
import type { AdminAsset } from '@switchboard/admin';
import type { AdminStats } from './admin-stats.js';
import { ADMIN_ROLE } from './channel-admin.js';
import { guard, readBody, sendError, sendJson, type Guarded } from './http.js';
import type { EdgeMetrics } from './metrics.js';
import { parsePublishValue, publishFailure, type PublishNormalizer } from './publish.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/** What the admin page's routes need. */
export interface AdminPageDeps {
  /** The built page: file name to asset (`loadAdminAssets`). */
  readonly assets: ReadonlyMap<string, AdminAsset>;
  readonly stats: AdminStats;
  readonly verifier: TokenVerifier;
  readonly bus: Bus;
  readonly metrics: EdgeMetrics;
  readonly normalizer: PublishNormalizer;
  readonly limits: {
    readonly maxDepth: number;
    readonly publishMaxBodyBytes: number;
    readonly adminLoginFailuresPerMin: number;
  };
  /** The session service's HTTP API (`SWITCHBOARD_SESSION_URL`), read at each request. */
  readonly sessionUrl: () => string;
  /** This edge, so the page can say which one it talks to. */
  readonly nodeId: string;
  readonly logger: Logger;
}

/** Life of the JWT a login gets: short, since it lives in the browser; the page asks again after it. */
export const ADMIN_PAGE_TOKEN_TTL_SEC = 15 * 60;
/** The `sub` of that JWT (in logs and the session service's records). */
const ADMIN_PAGE_SUBJECT = 'admin-page';
/** How long the edge waits for the session service. */
const SESSION_TIMEOUT_MS = 3000;

/**
 * The page may load only its own files and talk only to this edge (HTTP and WebSocket): no inline
 * script, no other origin, no framing.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Refused logins per client address in the current minute. Edges face the internet while the session
 * service may not: this keeps an edge from being a fast oracle for the admin token. An attempt counts
 * as refused from the moment it starts until it is forgiven, so concurrent attempts cannot overshoot.
 */
export class LoginFailures {
  private readonly counts = new Map<string, number>();
  private windowStart = 0;

  constructor(private readonly perMinute: number) {}

  /** Starts an attempt of `ip`: false (and nothing counted) when it is over the limit. */
  begin(ip: string, now = Date.now()): boolean {
    this.roll(now);
    if (this.perMinute === 0) return true;
    const n = this.counts.get(ip) ?? 0;
    if (n >= this.perMinute) return false;
    // Bounded: a flood of addresses within one minute restarts the count rather than growing the map.
    if (this.counts.size >= 100_000) this.counts.clear();
    this.counts.set(ip, n + 1);
    return true;
  }

  /** The attempt of `ip` was not a refused token (it succeeded, or the session service failed): uncounted. */
  forgive(ip: string): void {
    const n = this.counts.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(ip);
    else this.counts.set(ip, n - 1);
  }

  private roll(now: number): void {
    if (now - this.windowStart < 60_000) return;
    this.windowStart = now;
    this.counts.clear();
  }
}

/** Registers the page and its routes (before the main app's catch-all). */
export function mountAdminPage(app: TemplatedApp, deps: AdminPageDeps): void {
  const failures = new LoginFailures(deps.limits.adminLoginFailuresPerMin);
  const index = deps.assets.get('index.html')!;
  app.get('/admin', (res, req) => serveAsset(res, req, index));
  app.get('/admin/', (res, req) => serveAsset(res, req, index));
  for (const [name, asset] of deps.assets)
    if (name !== 'index.html') app.get(`/admin/${name}`, (res, req) => serveAsset(res, req, asset));
  app.post('/admin/login', (res, req) => login(deps, failures, res, req));
  app.get('/admin/stats', (res, req) => stats(deps, res, req));
  app.post('/admin/publish', (res, req) => publish(deps, res, req));
}

function serveAsset(res: HttpResponse, req: HttpRequest, asset: AdminAsset): void {
  const notModified = req
    .getHeader('if-none-match')
    .split(',')
    .some((t) => t.trim() === asset.etag);
  res.cork(() => {
    res.writeStatus(notModified ? '304 Not Modified' : '200 OK');
    res.writeHeader('etag', asset.etag);
    // Revalidated on every load (a 304 is cheap): a new build is picked up at once.
    res.writeHeader('cache-control', 'no-cache');
    res.writeHeader('x-content-type-options', 'nosniff');
    if (asset.contentType.startsWith('text/html')) {
      res.writeHeader('content-security-policy', CSP);
      res.writeHeader('referrer-policy', 'no-referrer');
      res.writeHeader('x-frame-options', 'DENY');
    }
    if (notModified) {
      res.endWithoutBody();
      return;
    }
    res.writeHeader('content-type', asset.contentType);
    res.end(asset.body);
  });
}

/** Reads a small JSON object body, or answers the error itself. */
function jsonBody(
  res: HttpResponse,
  g: Guarded,
  contentType: string,
  maxBytes: number,
  maxDepth: number,
  onValue: (v: Record<string, unknown>) => void,
): void {
  if (!/^application\/json\b/i.test(contentType)) {
    sendError(res, g, 'unsupported_media_type', 'body must be application/json');
    return;
  }
  readBody(
    res,
    g,
    maxBytes,
    (body) => {
      const parsed = parseJsonGuarded(body.toString('utf8'), maxDepth);
      if (!parsed.ok) sendError(res, g, parsed.code, parsed.message);
      else if (!isPlainObject(parsed.value))
        sendError(res, g, 'invalid_message', 'body must be a JSON object');
      else onValue(parsed.value);
    },
    () => sendError(res, g, 'message_too_large', `body is larger than ${maxBytes} bytes`),
  );
}

/**
 * Verifies `Authorization: Bearer <admin JWT>` and calls `onOk` with the token's tenant (null: every
 * tenant), or answers 401/403 itself.
 */
function authorize(
  deps: AdminPageDeps,
  res: HttpResponse,
  g: Guarded,
  auth: string,
  onOk: (tenant: string | null) => void,
): void {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m) {
    sendError(res, g, 'unauthorized', 'log in first: send Authorization: Bearer <token with the admin role>');
    return;
  }
  deps.verifier.verify(m[1]!).then(
    (v) => {
      if (!v.ok) sendError(res, g, v.code, v.message);
      else if (!v.identity.roles.includes(ADMIN_ROLE))
        sendError(res, g, 'forbidden', `the admin page needs a token with the "${ADMIN_ROLE}" role`);
      else onOk(v.identity.tenant ?? null);
    },
    (err: unknown) => {
      deps.logger.error({ err }, 'admin token verification failed');
      sendError(res, g, 'internal_error', 'token verification failed');
    },
  );
}

/** `POST /admin/login`: the session admin token in, a short-lived admin JWT out. */
function login(deps: AdminPageDeps, failures: LoginFailures, res: HttpResponse, req: HttpRequest): void {
  const contentType = req.getHeader('content-type');
  const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
  const g = guard(res);
  if (!failures.begin(ip)) {
    deps.metrics.rateLimitRejections.inc({ dialect: 'admin', rule: 'admin_login' });
    sendError(res, g, 'rate_limited', 'too many refused logins from this address; retry in a minute');
    return;
  }
  jsonBody(res, g, contentType, 4096, 2, (body) => {
    const adminToken = body.token;
    if (
      typeof adminToken !== 'string' ||
      adminToken.length === 0 ||
      adminToken.length > 1024 ||
      /\s/.test(adminToken)
    ) {
      sendError(res, g, 'invalid_message', '"token" must be the session service\'s admin token');
      return;
    }
    exchange(deps, adminToken).then(
      (r) => {
        if (r.ok || (r.status !== 401 && r.status !== 403)) failures.forgive(ip);
        if (r.ok) sendJson(res, g, 200, { token: r.token, expires_at: r.expiresAt, node: deps.nodeId });
        else if (r.status === 401 || r.status === 403)
          sendError(res, g, 'unauthorized', 'the admin token was refused');
        else sendError(res, g, 'unavailable', `the session service answered ${r.status}; retry`);
      },
      (err: unknown) => {
        failures.forgive(ip);
        deps.logger.warn(
          { err, sessionUrl: deps.sessionUrl() },
          'admin login: the session service did not answer',
        );
        sendError(res, g, 'unavailable', 'the session service did not answer; retry');
      },
    );
  });
}

type Exchanged = { ok: true; token: string; expiresAt: number } | { ok: false; status: number };

async function exchange(deps: AdminPageDeps, adminToken: string): Promise<Exchanged> {
  const res = await fetch(new URL('/v1/tokens', deps.sessionUrl()), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ sub: ADMIN_PAGE_SUBJECT, roles: [ADMIN_ROLE], ttl: ADMIN_PAGE_TOKEN_TTL_SEC }),
    signal: AbortSignal.timeout(SESSION_TIMEOUT_MS),
  });
  const body: unknown = await res.json().catch(() => null);
  if (res.status !== 200 || !isPlainObject(body) || typeof body.token !== 'string')
    return { ok: false, status: res.status === 200 ? 502 : res.status };
  return { ok: true, token: body.token, expiresAt: Date.now() + ADMIN_PAGE_TOKEN_TTL_SEC * 1000 };
}

/** The session service's counters, or null when it did not answer in time (the page says so). */
async function sessionStats(deps: AdminPageDeps): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetch(new URL('/v1/stats', deps.sessionUrl()), {
      signal: AbortSignal.timeout(SESSION_TIMEOUT_MS),
    });
    const body: unknown = await res.json();
    return res.ok && isPlainObject(body) ? body : null;
  } catch (err) {
    deps.logger.debug({ err }, 'session stats not read');
    return null;
  }
}

/** `GET /admin/stats`: every edge's counters and the session service's. */
function stats(deps: AdminPageDeps, res: HttpResponse, req: HttpRequest): void {
  const auth = req.getHeader('authorization');
  const g = guard(res);
  authorize(deps, res, g, auth, (tenant) => {
    if (tenant !== null) {
      sendError(
        res,
        g,
        'forbidden',
        'cluster stats span every tenant: they need an admin token without a tenant',
      );
      return;
    }
    Promise.all([deps.stats.gather(), sessionStats(deps)]).then(
      ([cluster, session]) =>
        sendJson(res, g, 200, { node: deps.nodeId, nodes: cluster.nodes, missing: cluster.missing, session }),
      (err: unknown) => {
        deps.logger.warn({ err }, 'admin stats failed');
        sendError(
          res,
          g,
          'unavailable',
          'the cluster could not be asked (the message bus is unavailable); retry',
        );
      },
    );
  });
}

/** `POST /admin/publish`: one test message, within the token's tenant. */
function publish(deps: AdminPageDeps, res: HttpResponse, req: HttpRequest): void {
  const auth = req.getHeader('authorization');
  const contentType = req.getHeader('content-type');
  const g = guard(res);
  // The body is read first: uWS hands it over only to a reader registered before this handler returns.
  jsonBody(res, g, contentType, deps.limits.publishMaxBodyBytes, deps.limits.maxDepth + 3, (value) => {
    authorize(deps, res, g, auth, (tenant) => {
      const parsed = parsePublishValue(value, {
        maxDepth: deps.limits.maxDepth,
        maxBatch: 1,
        scope: { tenants: tenant === null ? null : new Set([tenant]), channels: null },
        normalizer: deps.normalizer,
      });
      if (!parsed.ok) {
        sendError(res, g, parsed.code, parsed.message);
        return;
      }
      deps.bus.publish(parsed.requests[0]!).then(
        (p) => {
          deps.metrics.published.inc({ source: 'admin' });
          sendJson(res, g, 200, { channel: parsed.names[0], offset: p.offset, epoch: p.epoch });
        },
        (err: unknown) => {
          deps.logger.warn({ err }, 'admin publish failed');
          const f = publishFailure(err);
          sendError(res, g, f.code, f.message, f.extra);
        },
      );
    });
  });
}
