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
import { readFileSync } from 'node:fs';
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
  /**
   * Whether one more connection that still has to authenticate may be opened for `ip`: null when it may,
   * else the HTTP status and message to refuse the upgrade with.
   */
  unauthenticatedRefusal(ip: string): { status: number; message: string } | null;
  /** The client's address: the peer's, or what a trusted proxy's `X-Forwarded-For` says. */
  clientIp(remote: string, forwardedFor: string): string;
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

/** Own ports answer anything but their dialect's routes with 404. */
function notFound(app: TemplatedApp): void {
  app.any('/*', (res) => void res.writeStatus('404 Not Found').end('no such route'));
}

/** Reads the TLS files, so a missing or unreadable one fails at start-up (or a reload) with its path. */
export function readTls(tls: TlsFiles): void {
  for (const f of [tls.certFile, tls.keyFile]) {
    try {
      readFileSync(f);
    } catch (err) {
      throw new Error(`TLS file ${f} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
  }
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

/** A certificate and key for `wss://` and `https://` straight from the edge. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** One listener: its port, its apps (the current one last), and what is mounted on it. */
interface Listener {
  readonly name: string;
  readonly port: number;
  readonly apps: TemplatedApp[];
  /** Mounting steps, replayed on a new app when TLS is reloaded. */
  readonly mounts: ((app: TemplatedApp) => void)[];
  socket: us_listen_socket | null;
}

/**
 * The main listener and the dialects' own listeners, plain or TLS. A TLS reload (SIGHUP) builds each
 * listener a new app with the files as they are now, replays its mounts and moves the port to it;
 * connections of the old app stay open on the old certificate until they close.
 */
export class Listeners {
  private readonly listeners = new Map<string, Listener>();
  /** Connections opened by an asynchronous upgrade inside its response's cork, opened once it returns. */
  private openedInCork: Conn[] | null = null;
  private readonly bound = new Map<string, number>();

  constructor(
    private readonly host: string,
    private readonly mainPort: number,
    private readonly metrics: EdgeMetrics,
    private readonly hooks: ListenerHooks,
    private readonly log: Logger,
    private readonly tls: TlsFiles | null = null,
  ) {
    this.listener('main', mainPort);
  }

  /** The main listener's current app. */
  get main(): TemplatedApp {
    return this.current('main');
  }

  /** Whether the listeners speak TLS. */
  get secure(): boolean {
    return this.tls !== null;
  }

  /** Mounts something (HTTP routes) on the main listener, now and on every app it gets later. */
  onMain(mount: (app: TemplatedApp) => void): void {
    const l = this.listeners.get('main')!;
    l.mounts.push(mount);
    mount(this.current('main'));
  }

  /** Mounts a dialect's routes on the main listener and, when it has a port, on its own. */
  mount(d: MountedDialect): void {
    const main = this.listeners.get('main')!;
    const own = d.limits.port !== undefined ? this.listener(d.name, d.limits.port) : null;
    for (const route of d.def.routes) {
      const on = route.on ?? 'both';
      if (on !== 'own') this.add(main, (app) => this.mountRoute(d, app, mainPath(d.def.prefix, route.path), route.path, 'main'));
      if (on !== 'main' && own) this.add(own, (app) => this.mountRoute(d, app, route.path, route.path, 'own'));
    }
    for (const l of own ? [main, own] : [main]) d.apps.push(this.current(l.name));
    this.dialectsOf.set(d, own ? ['main', own.name] : ['main']);
  }

  private readonly dialectsOf = new Map<MountedDialect, string[]>();

  /** Starts every listener; resolves with the bound ports (`main` and each dialect's own). */
  async listen(): Promise<ReadonlyMap<string, number>> {
    for (const l of this.listeners.values()) if (l.name !== 'main') this.add(l, notFound);
    for (const l of this.listeners.values()) this.bound.set(l.name, await this.listenOne(l, this.current(l.name)));
    return this.bound;
  }

  /**
   * Reloads the TLS files: each listener gets a new app with the certificate as it is on disk now, its
   * mounts replayed, and its port moved to it (new connections are refused for the moment between).
   * Rejects, changing nothing, when the files cannot be read.
   */
  async reloadTls(): Promise<void> {
    if (!this.tls) return;
    readTls(this.tls);
    for (const l of this.listeners.values()) {
      const app = this.createApp();
      for (const m of l.mounts) m(app);
      if (l.socket) uWS.us_listen_socket_close(l.socket);
      l.socket = null;
      l.apps.push(app);
      await this.listenOne(l, app);
    }
    for (const [d, names] of this.dialectsOf) for (const n of names) d.apps.push(this.current(n));
    this.log.info({ listeners: [...this.listeners.keys()] }, 'TLS certificate reloaded');
  }

  /** The port a listener is bound to. */
  port(name: string): number | undefined {
    return this.bound.get(name);
  }

  /** Stops accepting connections on every listener (open sockets stay). */
  stopAccepting(): void {
    for (const l of this.listeners.values()) {
      if (l.socket) uWS.us_listen_socket_close(l.socket);
      l.socket = null;
    }
  }

  private listener(name: string, port: number): Listener {
    let l = this.listeners.get(name);
    if (!l) {
      l = { name, port, apps: [this.createApp()], mounts: [], socket: null };
      this.listeners.set(name, l);
    }
    return l;
  }

  private current(name: string): TemplatedApp {
    const apps = this.listeners.get(name)!.apps;
    return apps[apps.length - 1]!;
  }

  private add(l: Listener, mount: (app: TemplatedApp) => void): void {
    l.mounts.push(mount);
    mount(this.current(l.name));
  }

  private createApp(): TemplatedApp {
    if (!this.tls) return uWS.App();
    return uWS.SSLApp({ cert_file_name: this.tls.certFile, key_file_name: this.tls.keyFile });
  }

  private listenOne(l: Listener, app: TemplatedApp): Promise<number> {
    return new Promise((resolve, reject) => {
      app.listen(this.host, this.bound.get(l.name) ?? l.port, (ls) => {
        if (!ls) {
          reject(new Error(`cannot listen on ${this.host}:${l.port} (${l.name})`));
          return;
        }
        l.socket = ls;
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
        if (this.openedInCork !== null) this.openedInCork.push(conn);
        else hooks.opened(d, conn);
      },
      message: (ws: WebSocket<Conn>, message: ArrayBuffer, isBinary: boolean) => {
        hooks.message(d, ws.getUserData(), message, isBinary);
      },
      drain: (ws: WebSocket<Conn>) => {
        const conn = ws.getUserData();
        conn.drainedAtMs = conn.keptUpAtMs = Date.now();
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
    const ip = this.hooks.clientIp(Buffer.from(res.getRemoteAddressAsText()).toString(), req.getHeader('x-forwarded-for'));

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
      // Sockets that have yet to authenticate cost memory and a deadline each: capped per node and per
      // address, and refused before the handshake.
      if (!dec.identity && d.limits.authTimeoutMs > 0) {
        const cap = this.hooks.unauthenticatedRefusal(ip);
        if (cap) return this.reject(res, 'unauthenticated_cap', cap.status, cap.message);
      }
      const now = Date.now();
      // Keep this literal at 20 properties or fewer: measured with the idle bench, a 21st grew the JS heap per
      // idle connection from 1.6 to 2.4 KB (V8 no longer keeps the object's properties in its fast layout).
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
        tokenExpMs: dec.identity?.exp !== undefined ? dec.identity.exp * 1000 : 0,
        bucket: new TokenBucket(d.limits.messagesPerSec, d.limits.messagesBurst),
        strikes: null,
        lastRecvMs: now,
        drainedAtMs: 0,
        keptUpAtMs: now,
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
        // An asynchronous upgrade happens inside the response's cork; the connection's own work (the
        // dialect's open: first frames, subscriptions) runs after it, corked on the new socket.
        this.openedInCork = [];
        try {
          res.cork(() => finish(dec));
        } finally {
          const opened = this.openedInCork;
          this.openedInCork = null;
          for (const conn of opened) if (!conn.closed) conn.ws.cork(() => this.hooks.opened(d, conn));
        }
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

/**
 * Drops a connection at once, without a close frame: for a reader that stopped reading, which could not
 * read one. `end()` would keep its send buffer (megabytes) until the idle timeout; `close()` frees it now.
 */
export function dropConn(conn: Conn): void {
  if (conn.closed) return;
  conn.ws.close();
}
