/**
 * The edge's listeners: the main port, where every dialect lives under its prefix next to the HTTP API,
 * and a port of its own for each dialect that has one configured (where it owns `/`). Each listener is
 * its own uWS app, and uWS topics are per app: the hub publishes each group's frames to every app it has
 * members in.
 *
 * The upgrade handler follows uWS's rules: everything is copied from the request synchronously; draining,
 * `Origin` and subprotocols are checked before `res.upgrade`; a dialect's asynchronous upgrade step
 * (tokens at upgrade) runs after `onAborted` is registered, and the upgrade that follows it is corked.
 */
import { CLOSE_CODES, DEFAULT_TENANT, TokenBucket, type CloseCodeName, type Logger } from '@switchboard/core';
import type { Conn } from './conn.js';
import type { DialectDefinition, DialectHandler, DialectMetrics, ListenerInfo, UpgradeDecision, UpgradeRequest } from './dialect.js';
import type { DialectLimits } from './dialect-config.js';
import type { EdgeMetrics } from './metrics.js';
import { uWS, type HttpRequest, type HttpResponse, type TemplatedApp, type WebSocket, type us_listen_socket, type us_socket_context_t } from './uws.js';

/** A dialect mounted on this edge. */
export interface MountedDialect {
  readonly name: string;
  readonly def: DialectDefinition;
  readonly handler: DialectHandler<unknown>;
  readonly limits: DialectLimits;
  readonly metrics: DialectMetrics;
  /** The apps it is mounted on (the main one, and its own when it has a port). */
  readonly apps: TemplatedApp[];
}

/** What the listeners hand back to the edge. */
export interface ListenerHooks {
  draining(): boolean;
  originAllowed(origin: string): boolean;
  nextConnId(): string;
  opened(d: MountedDialect, conn: Conn): void;
  message(d: MountedDialect, conn: Conn, data: ArrayBuffer, isBinary: boolean): void;
  closed(d: MountedDialect, conn: Conn, code: number): void;
}

/** uWS's own backpressure limit, as a multiple of the configured (soft) one. */
export const HARD_BACKPRESSURE_FACTOR = 4;

const STATUS_TEXT: Record<number, string> = {
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  426: '426 Upgrade Required',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** The `:name` segments of a uWS route pattern, in order. */
function paramNames(pattern: string): string[] {
  return pattern
    .split('/')
    .filter((s) => s.startsWith(':'))
    .map((s) => s.slice(1));
}

/** A route on the main port: the dialect's prefix joined with the route (`/` is the prefix itself). */
export function mainPath(prefix: string, route: string): string {
  if (route === '/' || route === '') return prefix === '' ? '/' : prefix;
  return `${prefix}${route}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The subprotocol to answer with, or null when a required one is missing. */
export function negotiateSubprotocol(offered: string, policy: DialectDefinition['subprotocols']): string | null {
  if (!policy) return '';
  const wanted = offered
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of wanted) if (policy.accept.includes(p)) return p;
  return policy.required ? null : '';
}

/** The main listener and the dialects' own listeners. */
export class Listeners {
  readonly main: TemplatedApp;
  private readonly own = new Map<string, { app: TemplatedApp; port: number }>();
  private readonly sockets: us_listen_socket[] = [];
  private readonly bound = new Map<string, number>();

  constructor(
    private readonly host: string,
    private readonly mainPort: number,
    private readonly metrics: EdgeMetrics,
    private readonly hooks: ListenerHooks,
    private readonly log: Logger,
  ) {
    this.main = uWS.App();
  }

  /** The app of a dialect's own port, created on first use. */
  ownApp(dialect: string, port: number): TemplatedApp {
    let entry = this.own.get(dialect);
    if (!entry) {
      entry = { app: uWS.App(), port };
      this.own.set(dialect, entry);
    }
    return entry.app;
  }

  /** Every app, main first. */
  apps(): TemplatedApp[] {
    return [this.main, ...[...this.own.values()].map((e) => e.app)];
  }

  /** Mounts a dialect's routes on the main app and, when it has a port, on its own app. */
  mount(d: MountedDialect): void {
    for (const route of d.def.routes) {
      const on = route.on ?? 'both';
      if (on !== 'own') this.mountRoute(d, this.main, mainPath(d.def.prefix, route.path), route.path, 'main');
      if (on !== 'main' && d.limits.port !== undefined) {
        const app = this.ownApp(d.name, d.limits.port);
        this.mountRoute(d, app, route.path, route.path, 'own');
      }
    }
    if (d.limits.port !== undefined) {
      const app = this.ownApp(d.name, d.limits.port);
      if (!d.apps.includes(app)) d.apps.push(app);
    }
    if (!d.apps.includes(this.main)) d.apps.unshift(this.main);
  }

  /** Starts every listener; resolves with the bound ports (`main` and each dialect's own). */
  async listen(): Promise<ReadonlyMap<string, number>> {
    for (const [, entry] of this.own) entry.app.any('/*', (res) => void res.writeStatus('404 Not Found').end('no such route'));
    this.bound.set('main', await this.listenOne(this.main, this.mainPort, 'main'));
    for (const [name, entry] of this.own) this.bound.set(name, await this.listenOne(entry.app, entry.port, name));
    return this.bound;
  }

  /** The port a listener is bound to. */
  port(name: string): number | undefined {
    return this.bound.get(name);
  }

  /** Stops accepting connections on every listener (open sockets stay). */
  stopAccepting(): void {
    for (const s of this.sockets.splice(0)) uWS.us_listen_socket_close(s);
  }

  private listenOne(app: TemplatedApp, port: number, name: string): Promise<number> {
    return new Promise((resolve, reject) => {
      app.listen(this.host, port, (ls) => {
        if (!ls) {
          reject(new Error(`cannot listen on ${this.host}:${port} (${name})`));
          return;
        }
        this.sockets.push(ls);
        resolve(uWS.us_socket_local_port(ls));
      });
    });
  }

  private mountRoute(d: MountedDialect, app: TemplatedApp, pattern: string, route: string, kind: ListenerInfo['kind']): void {
    const names = paramNames(pattern);
    const hooks = this.hooks;
    const limits = d.limits;
    app.ws<Conn>(pattern, {
      maxPayloadLength: limits.maxFrameBytes,
      idleTimeout: limits.idleTimeoutSec,
      sendPingsAutomatically: limits.idleTimeoutSec > 0,
      // uWS silently skips publishes (and drops our close frame) for sockets over this. The sweep closes
      // slow consumers at a quarter of it, so bursts between sweeps rarely reach it and 4008 gets through.
      maxBackpressure: limits.maxBackpressureBytes * HARD_BACKPRESSURE_FACTOR,
      closeOnBackpressureLimit: 0,
      compression: uWS.DISABLED,
      upgrade: (res, req, context) => this.upgrade(d, app, route, names, kind, res, req, context),
      open: (ws: WebSocket<Conn>) => {
        const conn = ws.getUserData();
        conn.ws = ws;
        hooks.opened(d, conn);
      },
      message: (ws: WebSocket<Conn>, message: ArrayBuffer, isBinary: boolean) => {
        hooks.message(d, ws.getUserData(), message, isBinary);
      },
      close: (ws: WebSocket<Conn>, code: number) => {
        const conn = ws.getUserData();
        conn.closed = true;
        hooks.closed(d, conn, code);
      },
    });
  }

  private upgrade(
    d: MountedDialect,
    app: TemplatedApp,
    route: string,
    names: readonly string[],
    kind: ListenerInfo['kind'],
    res: HttpResponse,
    req: HttpRequest,
    context: us_socket_context_t,
  ): void {
    // Everything from `req` is read synchronously: it is invalid after this callback returns.
    const key = req.getHeader('sec-websocket-key');
    const offered = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const url = req.getUrl();
    const query = req.getQuery() ?? '';
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    req.forEach((k, v) => {
      headers[k] = v;
    });
    const params: Record<string, string> = Object.create(null) as Record<string, string>;
    for (let i = 0; i < names.length; i++) params[names[i]!] = decode(req.getParameter(i) ?? '');
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();

    if (this.hooks.draining()) return this.reject(res, 'draining', 503, 'draining');
    if (!this.hooks.originAllowed(origin)) return this.reject(res, 'origin', 403, 'origin not allowed');
    const protocol = negotiateSubprotocol(offered, d.def.subprotocols);
    if (protocol === null) return this.reject(res, 'subprotocol', 400, `subprotocol required: ${d.def.subprotocols!.accept.join(', ')}`);

    const listener: ListenerInfo = { kind, port: this.bound.get(kind === 'main' ? 'main' : d.name) ?? 0 };
    const request: UpgradeRequest = { url, route, params, query: new URLSearchParams(query), headers, ip, listener, protocol };
    let decision: UpgradeDecision<unknown> | Promise<UpgradeDecision<unknown>>;
    try {
      decision = d.handler.upgrade(request);
    } catch (err) {
      this.log.error({ err, dialect: d.name }, 'upgrade failed');
      return this.reject(res, 'error', 500, 'internal error');
    }
    const finish = (dec: UpgradeDecision<unknown>) => {
      if (!dec.accept) return this.reject(res, 'refused', dec.status, dec.message);
      const now = Date.now();
      const conn: Omit<Conn, 'ws'> = {
        connId: this.hooks.nextConnId(),
        dialect: d.name,
        app,
        closed: false,
        subs: new Map(),
        ip,
        openedAtMs: now,
        listener,
        identity: dec.identity ?? null,
        tenant: dec.identity?.tenant ?? DEFAULT_TENANT,
        admitted: false,
        sessionId: null,
        bucket: new TokenBucket(d.limits.messagesPerSec, d.limits.messagesBurst),
        strikes: 0,
        strikeWindowStartMs: 0,
        lastRecvMs: now,
        queue: null,
        state: dec.state,
      };
      res.upgrade(conn, key, protocol, extensions, context);
    };
    if (!(decision instanceof Promise)) return finish(decision);
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    decision.then(
      (dec) => {
        if (aborted) return;
        if (this.hooks.draining()) return res.cork(() => this.reject(res, 'draining', 503, 'draining'));
        res.cork(() => finish(dec));
      },
      (err: unknown) => {
        this.log.error({ err, dialect: d.name }, 'upgrade failed');
        if (!aborted) res.cork(() => this.reject(res, 'error', 500, 'internal error'));
      },
    );
  }

  private reject(res: HttpResponse, reason: string, status: number, message: string): void {
    this.metrics.upgradeRejections.inc({ reason });
    res.writeStatus(STATUS_TEXT[status] ?? `${status} Refused`).end(message);
  }
}

/** Closes a connection with a registered close code (its close handler runs synchronously). */
export function closeConn(conn: Conn, reason: CloseCodeName): void {
  if (conn.closed) return;
  conn.ws.end(CLOSE_CODES[reason].code, reason);
}
