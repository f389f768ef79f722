/**
 * The edge's HTTP routes on the main listener: health, readiness, metrics, the publish API, login and
 * logout (forwarded to the session service). Every asynchronous handler registers `onAborted` before any
 * `await` (`guard`), and writes are corked (`sendJson`, `sendText`).
 */
import { isPlainObject, parseJsonGuarded, type Logger } from '@switchboard/core';
import type { Bus, PublishResult } from '@switchboard/bus';
import type { SessionApi, TokenVerifier } from '@switchboard/session';
import type { Registry } from 'prom-client';
import type { ApiKeys } from './api-keys.js';
import { guard, readBodyText, sendError, sendJson, sendText } from './http.js';
import type { EdgeMetrics } from './metrics.js';
import { parsePublishBody, publishFailure, renderPublishAnswer, type PublishNormalizer } from './publish.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/** What the HTTP routes need. */
export interface HttpApiDeps {
  readonly bus: Bus;
  readonly session: SessionApi;
  readonly registry: Registry;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  readonly apiKeys: ApiKeys;
  readonly normalizer: PublishNormalizer;
  readonly limits: { readonly maxDepth: number; readonly publishMaxBatch: number; readonly publishMaxBodyBytes: number };
  /** Verifies the tokens `POST /v1/logout` is called with. */
  readonly verifier: TokenVerifier;
  /** The client's address (trusted proxies' `X-Forwarded-For`). */
  clientIp(remote: string, forwardedFor: string): string;
  ready(): boolean;
}

/** Registers the HTTP routes on the main app. */
export function mountHttpApi(app: TemplatedApp, deps: HttpApiDeps): void {
  // The same JSON bodies as the session service's, so one probe or script reads both.
  app.get('/healthz', (res) => sendJson(res, { aborted: false }, 200, { status: 'ok' }));
  app.get('/readyz', (res) => {
    const ok = deps.ready();
    sendJson(res, { aborted: false }, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' });
  });
  app.get('/metrics', (res) => {
    const g = guard(res);
    deps.registry.metrics().then(
      (text) => sendText(res, g, 200, text, deps.registry.contentType),
      (err: unknown) => {
        deps.logger.error({ err }, 'metrics failed');
        sendError(res, g, 'internal_error', 'metrics failed');
      },
    );
  });
  app.post('/api/publish', (res, req) => publish(deps, res, req));
  app.post('/v1/login', (res, req) => login(deps, res, req));
  app.post('/v1/logout', (res, req) => logout(deps, res, req));
  app.any('/*', (res) => sendError(res, { aborted: false }, 'not_found', 'no such route'));
}

/** `POST /v1/login` on any edge: forwarded to the session service, answered as it answers. */
function login(deps: HttpApiDeps, res: HttpResponse, req: HttpRequest): void {
  const contentType = req.getHeader('content-type');
  const ip = deps.clientIp(Buffer.from(res.getRemoteAddressAsText()).toString(), req.getHeader('x-forwarded-for'));
  const g = guard(res);
  if (!/^application\/json\b/i.test(contentType)) {
    sendError(res, g, 'unsupported_media_type', 'body must be application/json');
    return;
  }
  readBodyText(
    res,
    g,
    16 * 1024,
    (body) => {
      const parsed = parseJsonGuarded(body, 4);
      if (!parsed.ok || !isPlainObject(parsed.value)) {
        sendError(res, g, parsed.ok ? 'invalid_message' : parsed.code, parsed.ok ? 'body must be a JSON object' : parsed.message);
        return;
      }
      const { username, password } = parsed.value;
      if (typeof username !== 'string' || typeof password !== 'string') {
        sendError(res, g, 'invalid_message', '"username" and "password" must be strings');
        return;
      }
      deps.session.login({ username, password, ip }).then(
        (r) => {
          if (r.ok) sendJson(res, g, 200, { token: r.token, session_id: r.sessionId, expiry: new Date(r.expiresAt).toISOString(), user: r.user });
          else sendError(res, g, r.code, r.message, r.retryAfterSec !== undefined ? { retry_after: r.retryAfterSec } : {});
        },
        (err: unknown) => {
          deps.logger.warn({ err }, 'login failed');
          sendError(res, g, 'unavailable', 'the session service is unavailable; retry');
        },
      );
    },
    () => sendError(res, g, 'message_too_large', 'body is larger than 16384 bytes'),
  );
}

/**
 * `POST /v1/logout` with `Authorization: Bearer <token>`: the token's session is revoked (a token of no
 * session: its user's tokens until now), and the connections using it are closed on every edge with 4012.
 */
function logout(deps: HttpApiDeps, res: HttpResponse, req: HttpRequest): void {
  const m = /^Bearer\s+(\S+)$/i.exec(req.getHeader('authorization'));
  const g = guard(res);
  if (!m) {
    sendError(res, g, 'unauthorized', 'send Authorization: Bearer <token> (the token to log out)');
    return;
  }
  deps.verifier
    .verify(m[1]!)
    .then(async (v) => {
      if (!v.ok) return sendError(res, g, v.code, v.message);
      const id = v.identity;
      await deps.session.logout({
        userId: id.userId,
        ...(id.tenant !== undefined ? { tenant: id.tenant } : {}),
        ...(id.sessionId !== undefined ? { tokenSessionId: id.sessionId } : {}),
        ...(id.iat !== undefined ? { issuedAt: id.iat } : {}),
      });
      sendText(res, g, 204, '', 'text/plain');
    })
    .catch((err: unknown) => {
      deps.logger.warn({ err }, 'logout failed');
      sendError(res, g, 'unavailable', 'the session service is unavailable; retry');
    });
}

/** `POST /api/publish`: one message or a batch, to any dialect that takes publishes, in the key's tenants. */
function publish(deps: HttpApiDeps, res: HttpResponse, req: HttpRequest): void {
  const authHeader = req.getHeader('authorization');
  const contentType = req.getHeader('content-type');
  const contentLength = Number(req.getHeader('content-length') || '0');
  const idempotencyKey = req.getHeader('idempotency-key');
  const g = guard(res);
  const scope = deps.apiKeys.authorize(authHeader);
  if (scope === null) {
    sendError(res, g, 'unauthorized', authHeader ? 'the API key was refused' : 'send Authorization: Bearer <api key>');
    return;
  }
  if (!/^application\/json\b/i.test(contentType)) {
    sendError(res, g, 'unsupported_media_type', 'body must be application/json');
    return;
  }
  const max = deps.limits.publishMaxBodyBytes;
  if (contentLength > max) {
    sendError(res, g, 'message_too_large', `body is larger than ${max} bytes`);
    return;
  }
  readBodyText(
    res,
    g,
    max,
    (body) => {
      const parsed = parsePublishBody(body, {
        maxDepth: deps.limits.maxDepth,
        maxBatch: deps.limits.publishMaxBatch,
        scope,
        normalizer: deps.normalizer,
        ...(idempotencyKey !== '' ? { idempotencyKey } : {}),
      });
      if (!parsed.ok) {
        if (parsed.denied) deps.metrics.authzDenials.inc({ dialect: 'api', reason: parsed.denied });
        sendError(res, g, parsed.code, parsed.message, parsed.index !== undefined ? { index: parsed.index } : {});
        return;
      }
      const acknowledged = (positions: PublishResult[]) => {
        deps.metrics.published.inc({ source: 'api' }, positions.length);
        sendText(res, g, 200, renderPublishAnswer(parsed.names, positions, parsed.batch), 'application/json');
      };
      const failed = (err: unknown) => {
        deps.logger.warn({ err }, 'publish failed');
        const f = publishFailure(err);
        sendError(res, g, f.code, f.message, f.extra);
      };
      if (parsed.batch) deps.bus.publishBatch(parsed.requests).then(acknowledged, failed);
      else deps.bus.publish(parsed.requests[0]!).then((p) => acknowledged([p]), failed);
    },
    () => sendError(res, g, 'message_too_large', `body is larger than ${max} bytes`),
  );
}
