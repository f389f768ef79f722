/**
 * The channel admin API on every edge's main port: `GET /admin/nodes`, `GET /admin/channels` and
 * `GET /admin/channels/<channel>` (`?prefix=` on `/admin/channels` searches channels by name), answered
 * from the cluster-wide view (`channel-admin.ts`). Edges hold no secrets, so the caller proves itself with a JWT carrying the `admin` role, verified like every token
 * (`Authorization: Bearer <jwt>`); a token with a `tenant` claim sees that tenant only, one without sees
 * every tenant. `switchboard channels` reads these routes.
 */
import { isValidTenant, type Logger } from '@switchboard/core';
import type { TokenVerifier } from '@switchboard/session';
import { ADMIN_ROLE, type ChannelAdmin, type ChannelQuery, type ChannelView } from './channel-admin.js';
import { guard, sendError, sendJson, type Guarded } from './http.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/** What the admin routes need. */
export interface AdminHttpDeps {
  readonly admin: ChannelAdmin;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  /** Largest `limit` / `members` a request may ask for. */
  readonly maxItems: number;
}

const QUERIES = ['nodes', 'channels', 'channel'] as const;
type Query = (typeof QUERIES)[number];

const DEFAULT_LIMIT = 100;

/** Registers the admin routes (before the main app's catch-all). */
export function mountAdminApi(app: TemplatedApp, deps: AdminHttpDeps): void {
  for (const q of QUERIES) deps.admin.metrics.declare(q);
  app.get('/admin/nodes', (res, req) => handle(deps, res, req, 'nodes'));
  app.get('/admin/channels', (res, req) => handle(deps, res, req, 'channels'));
  app.get('/admin/channels/*', (res, req) => handle(deps, res, req, 'channel'));
}

function handle(deps: AdminHttpDeps, res: HttpResponse, req: HttpRequest, query: Query): void {
  // Everything from `req` is read now: it is invalid after this callback returns.
  const auth = req.getHeader('authorization');
  const url = req.getUrl();
  const params = new URLSearchParams(req.getQuery() ?? '');
  const g = guard(res);
  const started = performance.now();
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m) {
    deps.admin.metrics.count(query, 'unauthorized');
    sendError(res, g, 'unauthorized', 'send Authorization: Bearer <token with the admin role> (switchboard token --roles admin)');
    return;
  }
  deps.verifier.verify(m[1]!).then(
    (v) => {
      if (!v.ok) {
        deps.admin.metrics.count(query, 'unauthorized');
        sendError(res, g, v.code, v.message);
        return;
      }
      if (!v.identity.roles.includes(ADMIN_ROLE)) {
        deps.admin.metrics.count(query, 'forbidden');
        sendError(res, g, 'forbidden', `admin queries need a token with the "${ADMIN_ROLE}" role`);
        return;
      }
      answer(deps, res, g, query, url, params, v.identity.tenant ?? null, started);
    },
    (err: unknown) => {
      deps.logger.error({ err }, 'admin token verification failed');
      deps.admin.metrics.count(query, 'error');
      sendError(res, g, 'internal_error', 'token verification failed');
    },
  );
}

function answer(
  deps: AdminHttpDeps,
  res: HttpResponse,
  g: Guarded,
  query: Query,
  url: string,
  params: URLSearchParams,
  tokenTenant: string | null,
  started: number,
): void {
  const invalid = (message: string) => {
    deps.admin.metrics.count(query, 'invalid');
    sendError(res, g, 'invalid_message', message);
  };
  let tenant = tokenTenant;
  const askedTenant = params.get('tenant');
  if (askedTenant !== null) {
    if (!isValidTenant(askedTenant)) return invalid('"tenant" is not a tenant name');
    if (tokenTenant !== null && askedTenant !== tokenTenant) {
      deps.admin.metrics.count(query, 'forbidden');
      sendError(res, g, 'forbidden', `this token is limited to tenant "${tokenTenant}"`);
      return;
    }
    tenant = askedTenant;
  }
  const prefix = params.get('prefix');
  if (prefix !== null && prefix.length > 256) return invalid('"prefix" is longer than 256 characters');
  const dialect = params.get('dialect');
  if (dialect !== null && !/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(dialect)) return invalid('"dialect" is not a dialect name');
  const count = (name: string, def: number): number | null => {
    const raw = params.get(name);
    if (raw === null) return def;
    const n = Number(raw);
    return /^\d+$/.test(raw) && n <= deps.maxItems ? n : null;
  };
  const limit = count('limit', Math.min(DEFAULT_LIMIT, deps.maxItems));
  if (limit === null) return invalid(`"limit" must be an integer 0..${deps.maxItems}`);
  const wanted = count('members', query === 'channel' ? Math.min(DEFAULT_LIMIT, deps.maxItems) : 0);
  if (wanted === null) return invalid(`"members" must be an integer 0..${deps.maxItems}`);
  let channel: string | null = null;
  if (query === 'channel') {
    try {
      channel = decodeURIComponent(url.slice('/admin/channels/'.length));
    } catch {
      return invalid('the channel name is not URL-encoded properly');
    }
    if (channel === '') return invalid('name a channel: /admin/channels/<dialect>:<tenant>:<name>');
    // A tenant-limited token may only look at its own tenant's channels.
    const parts = channel.split(':');
    if (tenant !== null && parts[1] !== tenant) {
      deps.admin.metrics.count(query, 'forbidden');
      sendError(res, g, 'forbidden', `this token is limited to tenant "${tenant}"`);
      return;
    }
  }
  const q: ChannelQuery = { tenant, dialect, channel, members: query === 'channel' ? wanted : 0, prefix: query === 'channels' && prefix ? prefix : null };
  deps.admin.gather(q).then(
    (v) => {
      if (query === 'channel' && v.subscriptions === 0) {
        deps.admin.metrics.count(query, 'not_found', started);
        sendError(res, g, 'unknown_channel', `no subscribers of "${(channel ?? '').slice(0, 128)}" on any edge`, { missing: v.missing });
        return;
      }
      deps.admin.metrics.count(query, v.missing.length > 0 ? 'partial' : 'ok', started);
      sendJson(res, g, 200, render(query, v, q, limit));
    },
    (err: unknown) => {
      deps.logger.warn({ err }, 'admin query failed');
      deps.admin.metrics.count(query, 'error', started);
      sendError(res, g, 'unavailable', 'the cluster could not be asked (the message bus is unavailable); retry');
    },
  );
}

function totals(v: ChannelView): { connections: number; by_dialect: Record<string, number> } {
  const byDialect: Record<string, number> = {};
  let connections = 0;
  for (const n of v.nodes)
    for (const [d, c] of Object.entries(n.connections)) {
      byDialect[d] = (byDialect[d] ?? 0) + c;
      connections += c;
    }
  return { connections, by_dialect: byDialect };
}

function render(query: Query, v: ChannelView, q: ChannelQuery, limit: number): Record<string, unknown> {
  const scope = { tenant: q.tenant, dialect: q.dialect, ...(q.prefix ? { prefix: q.prefix } : {}) };
  const nodes = v.nodes.map((n) => ({ node: n.node, connections: Object.values(n.connections).reduce((a, b) => a + b, 0), by_dialect: n.connections, channels: n.channels, subscriptions: n.subscriptions }));
  switch (query) {
    case 'nodes':
      return { scope, nodes, missing: v.missing, totals: { ...totals(v), channels: v.channelCount, subscriptions: v.subscriptions } };
    case 'channels':
      return {
        scope,
        channels: v.channelCount,
        subscriptions: v.subscriptions,
        items: v.channels.slice(0, limit).map((c) => ({ channel: c.channel, subscribers: c.subscribers, nodes: c.nodes })),
        truncated: v.truncated || v.channels.length > limit,
        nodes: nodes.map((n) => n.node),
        missing: v.missing,
      };
    case 'channel': {
      const c = v.channels[0];
      return {
        channel: q.channel,
        subscribers: v.subscriptions,
        nodes: c?.nodes ?? {},
        members: v.members.map((mb) => ({ node: mb.node, host: mb.host, port: mb.port, writable: mb.writable })),
        members_truncated: v.members.length < v.memberCount,
        missing: v.missing,
      };
    }
  }
}
