/**
 * The edge's uWS listener: WebSocket routes of each dialect, the publish API, health and metrics.
 * Origin is checked in the upgrade handler before `res.upgrade`; request data is copied synchronously;
 * every asynchronous HTTP handler registers `onAborted` first; writes are corked.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  CLOSE_CODES,
  isPlainObject,
  parseJsonGuarded,
  type CloseCodeName,
  type Config,
  type Envelope,
  type Logger,
  type StreamPosition,
} from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import type { SessionApi, TokenVerifier, CheckpointEntry } from '@switchboard/session';
import type { Registry } from 'prom-client';
import { ConnectionRegistry, type BaseConn } from './connection.js';
import { ValtronicsHandler } from './dialects/valtronics.js';
import { guard, readBody, sendError, sendJson, sendText } from './http.js';
import { Hub } from './hub.js';
import { dialectRenderers } from './renderers.js';
import { EdgeMetrics } from './metrics.js';
import { parsePublishBody } from './publish.js';
import { SystemSampler } from './system-stats.js';
import { assertNativeUws, uWS, type HttpRequest, type HttpResponse, type TemplatedApp, type WebSocket, type us_listen_socket } from './uws.js';

/** Closes a connection with a registered close code. */
export type CloseFn = (conn: BaseConn, reason: CloseCodeName) => void;

/** What an edge is built from: everything stateful is injected. */
export interface EdgeOptions {
  readonly config: Config;
  readonly bus: Bus;
  readonly verifier: TokenVerifier;
  /** The session service: admission, sessions, logins (direct in the all-in-one, over Rpc in a cluster). */
  readonly session: SessionApi;
  readonly logger: Logger;
  readonly registry: Registry;
}

/** A dialect mounted on WebSocket routes. */
interface DialectHandler<C extends BaseConn> {
  readonly dialect: string;
  readonly paths: readonly string[];
  newConn(path: string, ip: string, connId: string): Omit<C, 'ws'>;
  onMessage(conn: C, data: ArrayBuffer, isBinary: boolean): void;
  onClose(conn: C): void;
}

/** uWS's own backpressure limit, as a multiple of the configured (soft) one. */
const HARD_BACKPRESSURE_FACTOR = 4;
/** A socket this close to uWS's limit has most likely had a publish skipped. */
const LARGEST_FRAME_GUESS_BYTES = 16 * 1024;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}


/** One edge node: listeners, hub, dialect handlers, sweeps. */
export class EdgeServer {
  readonly app: TemplatedApp;
  readonly hub: Hub;
  readonly metrics: EdgeMetrics;
  readonly conns: ConnectionRegistry;
  private readonly cfg: Config;
  private readonly log: Logger;
  private readonly apiKeyDigests: Buffer[];
  private readonly allowAnyOrigin: boolean;
  private readonly allowedOrigins: Set<string>;
  private listenSocket: us_listen_socket | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  /** Channel positions seen one checkpoint ago: what clients have surely received by now. */
  private lagged = new Map<string, StreamPosition>();
  private readonly checkpointed = new Map<string, string>();
  /** Sessions of connections closed by a drain, renewed in bulk when it ends. */
  private drainedSessions: string[] = [];
  private lastAuthSweepMs = 0;
  private draining = false;
  private systemSeq = 0;
  private readonly systemEpoch = randomBytes(6).toString('base64url');

  constructor(private readonly options: EdgeOptions) {
    assertNativeUws();
    this.cfg = options.config;
    this.log = options.logger.child({ component: 'edge' });
    this.metrics = new EdgeMetrics(options.registry);
    this.conns = new ConnectionRegistry(this.cfg.nodeId);
    this.apiKeyDigests = this.cfg.apiKeys.map(digest);
    this.allowAnyOrigin = this.cfg.allowedOrigins.includes('*');
    this.allowedOrigins = new Set(this.cfg.allowedOrigins.map((o) => o.toLowerCase()));
    this.app = uWS.App();
    this.hub = new Hub({
      app: this.app,
      bus: options.bus,
      renderer: dialectRenderers,
      metrics: this.metrics,
      logger: this.log.child({ component: 'hub' }),
      onInsufficientState: (conn) => this.closeConn(conn as BaseConn, 'insufficient_state'),
    });
    const sampler = new SystemSampler(() => this.conns.all.size);
    this.hub.registerLocalChannel('system', () => this.systemEnvelope(sampler));

    const close: CloseFn = (conn, reason) => this.closeConn(conn, reason);
    const valtronics = new ValtronicsHandler({
      config: this.cfg,
      hub: this.hub,
      verifier: options.verifier,
      session: options.session,
      metrics: this.metrics,
      logger: this.log,
      conns: this.conns,
      close,
    });
    this.mount(valtronics);
    this.routes();
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(this.cfg.host, this.cfg.port, (ls) => {
        if (!ls) {
          reject(new Error(`cannot listen on ${this.cfg.host}:${this.cfg.port}`));
          return;
        }
        this.listenSocket = ls;
        this.sweepTimer = setInterval(() => this.sweep(), this.cfg.slowConsumerCheckMs);
        this.sweepTimer.unref();
        this.heartbeat();
        this.heartbeatTimer = setInterval(() => this.heartbeat(), this.cfg.heartbeatSec * 1000);
        this.heartbeatTimer.unref();
        this.checkpointTimer = setInterval(() => this.checkpoint(), this.cfg.checkpointMs);
        this.checkpointTimer.unref();
        resolve(uWS.us_socket_local_port(ls));
      });
    });
  }

  /** True while the node accepts work (for `/readyz`). */
  ready(): boolean {
    return !this.draining && this.listenSocket !== null && this.options.bus.ready();
  }

  /**
   * Graceful stop: not ready, stop accepting, close clients with 1012 ("restart, reconnect elsewhere")
   * spread over `drainMs` so their reconnects do not stampede the other nodes.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    const conns = [...this.conns.all];
    const stepMs = conns.length > 0 ? this.cfg.drainMs / conns.length : 0;
    const started = Date.now();
    for (let i = 0; i < conns.length; i++) {
      const due = started + i * stepMs;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      this.closeConn(conns[i]!, 'service_restart');
    }
    await this.settleSessions();
  }

  /**
   * After a drain: one call releases every admission slot of this node and one renews the sessions of
   * the closed connections (instead of a request per connection), so clients resuming elsewhere find
   * their limits free and their sessions alive.
   */
  private async settleSessions(): Promise<void> {
    const sessionIds = this.drainedSessions;
    this.drainedSessions = [];
    const session = this.options.session;
    const results = await Promise.allSettled([
      session.releaseNode(this.cfg.nodeId),
      ...chunks(sessionIds, 1000).map((ids) => session.touchSessions(ids)),
    ]);
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.log.warn({ failed, sessions: sessionIds.length }, 'could not settle admission/sessions on drain; the reaper will');
  }

  /** Stops timers and the hub; call after {@link drain}. */
  close(): void {
    for (const t of [this.sweepTimer, this.heartbeatTimer, this.checkpointTimer]) if (t) clearInterval(t);
    this.sweepTimer = null;
    this.heartbeatTimer = null;
    this.checkpointTimer = null;
    for (const conn of [...this.conns.all]) this.closeConn(conn, 'service_restart');
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    this.hub.close();
  }

  /** Tells the session service this edge is alive, so its connections stay admitted. */
  private heartbeat(): void {
    this.options.session.heartbeat(this.cfg.nodeId).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'heartbeat failed'));
  }

  /**
   * Records, for every session here, the position of each subscribed channel as it was one interval
   * ago (what the client has surely received), and only where it moved: a session resumed without
   * client positions replays from there — at least once, never with a gap.
   */
  private checkpoint(): void {
    const lagged = this.lagged;
    this.lagged = this.hub.positions();
    const moved = new Map<string, StreamPosition>();
    for (const [channel, pos] of lagged) {
      const key = `${pos.epoch} ${pos.offset}`;
      if (this.checkpointed.get(channel) === key) continue;
      this.checkpointed.set(channel, key);
      moved.set(channel, pos);
    }
    for (const channel of this.checkpointed.keys()) if (!this.lagged.has(channel) && !lagged.has(channel)) this.checkpointed.delete(channel);
    if (moved.size === 0) return;
    const entries: CheckpointEntry[] = [];
    for (const conn of this.conns.all) {
      if (conn.sessionId === null) continue;
      for (const channel of conn.subs.keys()) {
        const position = moved.get(channel);
        if (position) entries.push({ sessionId: conn.sessionId, channel, position: { epoch: position.epoch, offset: position.offset } });
      }
    }
    if (entries.length > 0)
      this.options.session.checkpoint(entries).catch((err: unknown) => this.log.warn({ err: (err as Error).message, entries: entries.length }, 'checkpoint failed'));
  }

  private systemEnvelope(sampler: SystemSampler): Envelope {
    const now = Date.now();
    return {
      channel: 'system',
      offset: ++this.systemSeq,
      epoch: this.systemEpoch,
      ts: now,
      attrs: {},
      data: JSON.stringify({ metrics: sampler.sample(now), timestamp: new Date(now).toISOString() }),
    };
  }

  private closeConn(conn: BaseConn, reason: CloseCodeName): void {
    if (conn.closed) return;
    // `end` runs the close handler synchronously, which marks the connection closed.
    conn.ws.end(CLOSE_CODES[reason].code, reason);
  }

  private originAllowed(origin: string): boolean {
    return origin === '' || this.allowAnyOrigin || this.allowedOrigins.has(origin.toLowerCase());
  }

  private mount<C extends BaseConn>(handler: DialectHandler<C>): void {
    const connections = this.metrics.connections.labels(handler.dialect);
    const opened = this.metrics.connectionsOpened.labels(handler.dialect);
    for (const path of handler.paths) {
      this.app.ws<C>(path, {
        maxPayloadLength: this.cfg.maxPayloadBytes,
        idleTimeout: this.cfg.idleTimeoutSec,
        sendPingsAutomatically: true,
        // uWS silently skips publishes (and drops our close frame) for sockets over this. The sweep closes
        // slow consumers at a quarter of it, so bursts between sweeps rarely reach it and 4008 gets through.
        maxBackpressure: this.cfg.maxBackpressureBytes * HARD_BACKPRESSURE_FACTOR,
        closeOnBackpressureLimit: 0,
        compression: uWS.DISABLED,
        upgrade: (res: HttpResponse, req: HttpRequest, context) => {
          // Everything from `req` is read synchronously: it is invalid after this callback returns.
          const key = req.getHeader('sec-websocket-key');
          const protocol = req.getHeader('sec-websocket-protocol');
          const extensions = req.getHeader('sec-websocket-extensions');
          const origin = req.getHeader('origin');
          if (this.draining) {
            this.metrics.upgradeRejections.inc({ reason: 'draining' });
            res.writeStatus('503 Service Unavailable').end('draining');
            return;
          }
          if (!this.originAllowed(origin)) {
            this.metrics.upgradeRejections.inc({ reason: 'origin' });
            res.writeStatus('403 Forbidden').end('origin not allowed');
            return;
          }
          const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
          const data = handler.newConn(path, ip, this.conns.nextId());
          res.upgrade(data, key, protocol, extensions, context);
        },
        open: (ws: WebSocket<C>) => {
          const conn = ws.getUserData();
          conn.ws = ws;
          this.conns.all.add(conn);
          this.conns.unauthenticated.set(conn, Date.now() + this.cfg.authTimeoutMs);
          connections.inc();
          opened.inc();
        },
        message: (ws: WebSocket<C>, message: ArrayBuffer, isBinary: boolean) => {
          handler.onMessage(ws.getUserData(), message, isBinary);
        },
        close: (ws: WebSocket<C>) => {
          const conn = ws.getUserData();
          conn.closed = true;
          this.conns.all.delete(conn);
          this.conns.unauthenticated.delete(conn);
          this.hub.removeConnection(conn);
          handler.onClose(conn);
          connections.dec();
          if (this.draining) {
            // Settled in bulk when the drain ends (releaseNode + touchSessions).
            if (conn.sessionId !== null) this.drainedSessions.push(conn.sessionId);
            return;
          }
          if (conn.admitted) {
            conn.admitted = false;
            this.options.session.release(conn.connId).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'admission release failed'));
          }
          if (conn.sessionId !== null) {
            // The session's sliding expiry counts from the disconnect: time to come back and resume.
            this.options.session.touchSession(conn.sessionId).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'session touch failed'));
          }
        },
      });
    }
  }

  /**
   * Periodic checks, O(connections) only when needed: slow consumers after traffic was sent, auth
   * deadlines once a second.
   */
  private sweep(): void {
    if (this.hub.sentSinceSweep) {
      this.hub.sentSinceSweep = false;
      const soft = this.cfg.maxBackpressureBytes;
      const hard = soft * HARD_BACKPRESSURE_FACTOR;
      for (const conn of this.conns.all) {
        const buffered = conn.ws.getBufferedAmount();
        if (buffered <= soft) continue;
        // Past uWS's limit, publishes to this socket were skipped: count it as a drop.
        if (buffered >= hard - LARGEST_FRAME_GUESS_BYTES) this.metrics.backpressureDrops.inc({ dialect: conn.dialect });
        this.metrics.slowConsumerDisconnects.inc({ dialect: conn.dialect });
        this.closeConn(conn, 'slow_consumer');
      }
    }
    const now = Date.now();
    if (now - this.lastAuthSweepMs >= 1000) {
      this.lastAuthSweepMs = now;
      // Deadlines are inserted in increasing order: stop at the first one still in the future.
      for (const [conn, deadline] of this.conns.unauthenticated) {
        if (deadline > now) break;
        this.conns.unauthenticated.delete(conn);
        if (!conn.identity) this.closeConn(conn, 'auth_timeout');
      }
    }
  }

  private routes(): void {
    const app = this.app;
    app.get('/healthz', (res) => {
      sendText(res, { aborted: false }, 200, 'ok\n');
    });
    app.get('/readyz', (res) => {
      const ok = this.ready();
      sendText(res, { aborted: false }, ok ? 200 : 503, ok ? 'ready\n' : 'not ready\n');
    });
    app.get('/metrics', (res) => {
      const g = guard(res);
      this.options.registry.metrics().then(
        (text) => sendText(res, g, 200, text, this.options.registry.contentType),
        (err: unknown) => {
          this.log.error({ err }, 'metrics failed');
          sendError(res, g, 'internal_error', 'metrics failed');
        },
      );
    });
    app.post('/api/publish', (res, req) => this.publish(res, req));
    app.post('/v1/login', (res, req) => this.login(res, req));
    app.any('/*', (res) => {
      sendError(res, { aborted: false }, 'not_found', 'no such route');
    });
  }

  /** `POST /v1/login` on any edge: forwarded to the session service, answered as it answers. */
  private login(res: HttpResponse, req: HttpRequest): void {
    const contentType = req.getHeader('content-type');
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    const g = guard(res);
    if (!/^application\/json\b/i.test(contentType)) {
      sendError(res, g, 'unsupported_media_type', 'body must be application/json');
      return;
    }
    readBody(
      res,
      g,
      16 * 1024,
      (body) => {
        const parsed = parseJsonGuarded(body.toString('utf8'), 4);
        if (!parsed.ok || !isPlainObject(parsed.value)) {
          sendError(res, g, parsed.ok ? 'invalid_message' : parsed.code, parsed.ok ? 'body must be a JSON object' : parsed.message);
          return;
        }
        const { username, password } = parsed.value;
        if (typeof username !== 'string' || typeof password !== 'string') {
          sendError(res, g, 'invalid_message', '"username" and "password" must be strings');
          return;
        }
        this.options.session.login({ username, password, ip }).then(
          (r) => {
            if (r.ok) sendJson(res, g, 200, { token: r.token, session_id: r.sessionId, expiry: new Date(r.expiresAt).toISOString(), user: r.user });
            else sendError(res, g, r.code, r.message, r.retryAfterSec !== undefined ? { retry_after: r.retryAfterSec } : {});
          },
          (err: unknown) => {
            this.log.warn({ err: (err as Error).message }, 'login failed');
            sendError(res, g, 'unavailable', 'the session service is unavailable; retry');
          },
        );
      },
      () => sendError(res, g, 'message_too_large', 'body is larger than 16384 bytes'),
    );
  }

  private authorized(header: string): boolean {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return false;
    const d = digest(m[1]!);
    let ok = false;
    // Compare against every key (no early exit) in constant time per key.
    for (const k of this.apiKeyDigests) if (timingSafeEqual(d, k)) ok = true;
    return ok;
  }

  private publish(res: HttpResponse, req: HttpRequest): void {
    const authHeader = req.getHeader('authorization');
    const contentType = req.getHeader('content-type');
    const contentLength = Number(req.getHeader('content-length') || '0');
    const g = guard(res);
    if (!this.authorized(authHeader)) {
      sendError(res, g, 'unauthorized', 'send Authorization: Bearer <api key>');
      return;
    }
    if (!/^application\/json\b/i.test(contentType)) {
      sendError(res, g, 'unsupported_media_type', 'body must be application/json');
      return;
    }
    const max = this.cfg.publishMaxBodyBytes;
    if (contentLength > max) {
      sendError(res, g, 'message_too_large', `body is larger than ${max} bytes`);
      return;
    }
    readBody(
      res,
      g,
      max,
      (body) => {
        const parsed = parsePublishBody(body.toString('utf8'), { maxDepth: this.cfg.maxDepth, maxBatch: this.cfg.publishMaxBatch });
        if (!parsed.ok) {
          sendError(res, g, parsed.code, parsed.message, parsed.index !== undefined ? { index: parsed.index } : {});
          return;
        }
        const bus = this.options.bus;
        const pending = parsed.batch ? bus.publishBatch(parsed.requests) : bus.publish(parsed.requests[0]!).then((p) => [p]);
        pending.then(
          (positions) => {
            this.metrics.published.inc({ source: 'api' }, positions.length);
            const results = positions.map((p, i) => ({ channel: parsed.requests[i]!.channel, offset: p.offset, epoch: p.epoch }));
            sendJson(res, g, 200, parsed.batch ? { results } : results[0]);
          },
          (err: unknown) => {
            this.log.warn({ err }, 'publish failed');
            sendError(res, g, 'unavailable', 'the message bus is unavailable; retry');
          },
        );
      },
      () => sendError(res, g, 'message_too_large', `body is larger than ${max} bytes`),
    );
  }
}
