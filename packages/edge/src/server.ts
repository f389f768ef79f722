/**
 * One edge node: it mounts whatever dialects the registry holds on its listeners, and wires the shared
 * parts every dialect uses — the hub (fan-out), the inbound pipeline (limits, in-order requests), the
 * session gate, keep-alive ticks, sweeps, session sync — and the HTTP API. It knows no dialect by name.
 */
import { CLOSE_CODES, ChannelPolicy, clientAddress, normalizeAddress, type Config, type ErrorCode, type Logger } from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import type { SessionApi, TokenVerifier } from '@switchboard/session';
import type { ObjectStore, ObjectStoreOptions } from '@switchboard/store';
import type { Registry } from 'prom-client';
import { loadAdminAssets } from '@switchboard/admin';
import { mountAdminApi } from './admin-http.js';
import { mountAdminPage } from './admin-page.js';
import { AdminStats } from './admin-stats.js';
import { ApiKeys } from './api-keys.js';
import { ChannelAdmin } from './channel-admin.js';
import { ControlPlane } from './cluster.js';
import { ConnectionRegistry, type Conn } from './conn.js';
import type { DialectContext, DialectDefinition, DialectMetrics } from './dialect.js';
import { dialectLimits } from './dialect-config.js';
import { DIALECTS } from './dialects/index.js';
import { mountHttpApi } from './http-api.js';
import { mountPublishSocket } from './publish-socket.js';
import { Hub, type GroupSpec, type Renderer } from './hub.js';
import { Inbound } from './inbound.js';
import { KeepAlive } from './keepalive.js';
import { Listeners, closeConn, readTls, type MountedDialect } from './listeners.js';
import { EdgeMetrics } from './metrics.js';
import { SessionGate } from './session-gate.js';
import { RevocationPoll } from './revocation-poll.js';
import { SessionSync } from './session-sync.js';
import { SubscriptionQuota } from './subscription-quota.js';
import { Sweeps } from './sweeps.js';
import { SystemSampler } from './system-stats.js';
import { assertNativeUws } from './uws.js';

/** What an edge is built from: everything stateful is injected. */
export interface EdgeOptions {
  readonly config: Config;
  readonly bus: Bus;
  readonly verifier: TokenVerifier;
  /** The session service: admission, sessions, logins (direct in the all-in-one, over Rpc in a cluster). */
  readonly session: SessionApi;
  readonly logger: Logger;
  readonly registry: Registry;
  /** The dialects to serve; default: every dialect of the registry (`dialects/index.ts`). */
  readonly dialects?: readonly DialectDefinition[];
  /** Opens object stores on the node's backend, for dialects that keep objects (absent: they cannot). */
  readonly openStore?: (options: ObjectStoreOptions) => Promise<ObjectStore>;
  /**
   * Where the admin page reaches the session service's HTTP API (login exchange, session stats), read at
   * each request; default `SWITCHBOARD_SESSION_URL`. The all-in-one passes its own session port.
   */
  readonly sessionUrl?: () => string;
}

/** Requests queued behind a slow one before a connection counts as abusive. */
const MAX_QUEUED_REQUESTS = 1000;

/** Close codes a client may send that are labelled as themselves; anything else is `other`. */
const KNOWN_CLOSE_CODES = new Set<number>([1000, 1001, 1005, 1006, 1007, 1008, 1009, 1011, 1012, ...Object.values(CLOSE_CODES).map((c) => c.code)]);

/** One edge node. */
export class EdgeServer {
  readonly hub: Hub;
  readonly metrics: EdgeMetrics;
  readonly conns: ConnectionRegistry;
  readonly listeners: Listeners;
  readonly cluster: ControlPlane;
  /** The cluster-wide channel view (admin queries). */
  readonly admin: ChannelAdmin;
  private readonly dialects = new Map<string, MountedDialect>();
  private readonly cfg: Config;
  private readonly log: Logger;
  private readonly inbound: Inbound;
  private readonly keepalive: KeepAlive;
  private readonly sweeps: Sweeps;
  private readonly sync: SessionSync;
  private readonly revocationPoll: RevocationPoll;
  private readonly quota: SubscriptionQuota;
  private listening = false;
  private draining = false;

  constructor(private readonly options: EdgeOptions) {
    assertNativeUws();
    const cfg = (this.cfg = options.config);
    if (cfg.tlsCertFile && cfg.tlsKeyFile) readTls({ certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile });
    const log = (this.log = options.logger.child({ component: 'edge' }));
    const metrics = (this.metrics = new EdgeMetrics(options.registry));
    const conns = (this.conns = new ConnectionRegistry(cfg.nodeId));
    this.hub = new Hub({
      bus: options.bus,
      renderer: (spec) => this.renderer(spec),
      metrics,
      logger: log.child({ component: 'hub' }),
      onInsufficientState: (conn) => closeConn(conn as Conn, 'insufficient_state'),
      connection: (connId) => conns.get(connId),
    });
    const allowAny = cfg.allowedOrigins.includes('*');
    const allowed = new Set(cfg.allowedOrigins.map((o) => o.toLowerCase()));
    const trustedProxies = new Set(cfg.trustedProxies.map(normalizeAddress));
    this.listeners = new Listeners(
      cfg.host,
      cfg.port,
      metrics,
      {
        draining: () => this.draining,
        originAllowed: (origin) => origin === '' || allowAny || allowed.has(origin.toLowerCase()),
        clientIp: (remote, forwardedFor) => clientAddress(remote, forwardedFor || undefined, trustedProxies),
        unauthenticatedRefusal: (ip) => {
          const n = conns.unauthenticatedCount(ip);
          if (n.fromIp >= cfg.maxUnauthenticatedPerAddress) return { status: 429, message: `at most ${cfg.maxUnauthenticatedPerAddress} unauthenticated connections per address` };
          if (n.total >= cfg.maxUnauthenticatedConnections) return { status: 503, message: 'too many unauthenticated connections on this node; retry' };
          return null;
        },
        nextConnId: () => conns.nextId(),
        opened: (d, conn) => this.opened(d, conn),
        message: (d, conn, data, isBinary) => this.inbound.receive(d, conn, data, isBinary, Date.now()),
        closed: (d, conn, code) => this.closed(d, conn, code),
      },
      log,
      cfg.tlsCertFile && cfg.tlsKeyFile ? { certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile } : null,
    );
    this.inbound = new Inbound({
      closeAfterStrikes: cfg.rateLimitCloseAfter,
      strikeWindowMs: cfg.rateLimitWindowSec * 1000,
      maxQueued: MAX_QUEUED_REQUESTS,
      logger: log,
      close: closeConn,
    });
    this.cluster = new ControlPlane({ bus: options.bus, hub: this.hub, conns, nodeId: cfg.nodeId, logger: log, helloMs: cfg.clusterHelloMs });
    this.admin = new ChannelAdmin({
      nodeId: cfg.nodeId,
      cluster: this.cluster,
      conns,
      registry: options.registry,
      logger: log,
      deadlineMs: cfg.adminDeadlineMs,
      maxChannels: cfg.adminMaxChannels,
      topChannels: cfg.adminTopChannels,
      backpressureLimit: (dialect) => this.dialects.get(dialect)?.limits.maxBackpressureBytes ?? 0,
    });
    const gate = new SessionGate({ verifier: options.verifier, session: options.session, conns, logger: log, cluster: this.cluster });
    const quota = (this.quota = new SubscriptionQuota({ session: options.session, conns, maxPerUser: cfg.maxSubscriptionsPerUser, logger: log }));
    const sampler = new SystemSampler(() => conns.all.size);
    const policy = new ChannelPolicy(cfg.channelPolicy);
    for (const def of options.dialects ?? DIALECTS) {
      if (this.dialects.has(def.name)) throw new Error(`two dialects are named ${def.name}`);
      const limits = dialectLimits(def.config, cfg);
      const dm = dialectMetrics(metrics, def.name);
      const ctx: DialectContext = {
        name: def.name,
        config: cfg,
        limits,
        hub: this.hub,
        session: options.session,
        verifier: options.verifier,
        gate,
        metrics: dm,
        edgeMetrics: metrics,
        logger: log.child({ dialect: def.name }),
        conns,
        cluster: this.cluster,
        admin: this.admin,
        sampler,
        busReader: options.bus,
        openStore: (o) => (options.openStore ? options.openStore(o) : Promise.reject(new Error(`dialect ${def.name} needs an object store; this edge has none`))),
        close: closeConn,
        publish: async (reqs) => {
          const positions = await options.bus.publishBatch(reqs);
          metrics.published.inc({ source: def.name }, positions.length);
          return positions;
        },
        send: (conn, frame) => {
          if (conn.closed) return;
          dm.messagesOut.inc();
          const ws = conn.ws;
          ws.cork(() => ws.send(frame, typeof frame !== 'string', false));
        },
        takeRate: (conn, n) => this.inbound.takeRate(mounted, conn, n),
        authorize: (conn, name) => {
          if (policy.allows(conn.identity?.roles ?? [], def.name, name)) return true;
          metrics.authzDenials.inc({ dialect: def.name, reason: 'role' });
          return false;
        },
        denied: (reason) => metrics.authzDenials.inc({ dialect: def.name, reason }),
        subscriptions: quota,
      };
      const mounted: MountedDialect = { name: def.name, def, handler: def.create(ctx), limits, metrics: dm, apps: [] };
      this.dialects.set(def.name, mounted);
      this.listeners.mount(mounted);
    }
    this.listeners.onMain((app) => mountAdminApi(app, { admin: this.admin, verifier: options.verifier, logger: log, maxItems: cfg.adminMaxChannels }));
    const apiKeys = new ApiKeys(cfg.apiKeys);
    const normalizer = (dialect: string) => {
      const handler = this.dialects.get(dialect)?.handler;
      return handler?.normalizePublish?.bind(handler);
    };
    // The admin page (docs/admin.md): its files are read once, here, and served from memory.
    // Every edge answers the stats question, page or not: another edge's page counts it.
    const adminStats = new AdminStats({ cluster: this.cluster, metrics, registry: options.registry, logger: log, deadlineMs: cfg.adminDeadlineMs });
    if (cfg.adminPage) {
      const adminAssets = loadAdminAssets();
      const sessionUrl = options.sessionUrl ?? (() => cfg.sessionUrl);
      this.listeners.onMain((app) =>
        mountAdminPage(app, {
          assets: adminAssets,
          stats: adminStats,
          verifier: options.verifier,
          bus: options.bus,
          metrics,
          normalizer,
          limits: cfg,
          sessionUrl,
          nodeId: cfg.nodeId,
          logger: log,
        }),
      );
    }
    this.listeners.onMain((app) =>
      mountPublishSocket(app, { bus: options.bus, apiKeys, metrics, logger: log, normalizer, limits: cfg, draining: () => this.draining }),
    );
    this.listeners.onMain((app) => mountHttpApi(app, {
      bus: options.bus,
      session: options.session,
      registry: options.registry,
      metrics,
      logger: log,
      apiKeys,
      normalizer,
      limits: cfg,
      verifier: options.verifier,
      clientIp: (remote, forwardedFor) => clientAddress(remote, forwardedFor || undefined, trustedProxies),
      ready: () => this.ready(),
    }));
    this.keepalive = new KeepAlive([...this.dialects.values()]);
    this.sweeps = new Sweeps(conns, this.hub, metrics, this.dialects, cfg.slowConsumerCheckMs, cfg.clockSkewSec * 1000, cfg.slowConsumerBudgetBytes);
    this.sync = new SessionSync(options.session, conns, this.hub, log, { heartbeatMs: cfg.heartbeatSec * 1000, checkpointMs: cfg.checkpointMs });
    this.revocationPoll = new RevocationPoll(options.session, conns, log, { pollMs: cfg.revocationPollSec * 1000 });
  }

  /** Starts every listener and the timers; resolves with the main port. */
  async listen(): Promise<number> {
    await this.cluster.start();
    for (const d of this.dialects.values()) if (d.handler.start) await d.handler.start();
    const ports = await this.listeners.listen();
    this.listening = true;
    this.keepalive.start();
    this.sweeps.start();
    this.sync.start();
    this.revocationPoll.start();
    return ports.get('main')!;
  }

  /** Reloads the TLS certificate and key from their files (SIGHUP); a no-op without TLS. */
  reloadTls(): Promise<void> {
    return this.listeners.reloadTls();
  }

  /** The bound port of the main listener (`main`) or of a dialect's own listener (its name). */
  port(listener: string): number | undefined {
    return this.listeners.port(listener);
  }

  /** True while the node accepts work (for `/readyz`). */
  ready(): boolean {
    return !this.draining && this.listening && this.options.bus.ready();
  }

  /**
   * Graceful stop: not ready (`/readyz` answers 503 while the listeners stay open, so load balancers and
   * Kubernetes see it), new upgrades refused, clients closed with 1012 ("restart, reconnect elsewhere")
   * spread over `drainMs` so their reconnects do not stampede the other nodes; then sessions settled and
   * the listeners closed.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const conns = [...this.conns.all];
    const stepMs = conns.length > 0 ? this.cfg.drainMs / conns.length : 0;
    const started = Date.now();
    for (let i = 0; i < conns.length; i++) {
      const wait = started + i * stepMs - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      closeConn(conns[i]!, 'service_restart');
    }
    await this.sync.settle();
    this.listeners.stopAccepting();
    this.listening = false;
  }

  /** Stops timers, closes what is left and stops the hub; call after {@link drain}. */
  close(): void {
    this.keepalive.stop();
    this.sweeps.stop();
    this.sync.stop();
    this.revocationPoll.stop();
    this.cluster.stop();
    for (const conn of [...this.conns.all]) closeConn(conn, 'service_restart');
    this.listeners.stopAccepting();
    this.listening = false;
    this.hub.close();
  }

  private renderer(spec: GroupSpec): Renderer {
    const d = this.dialects.get(spec.dialect);
    if (!d) throw new Error(`no dialect ${spec.dialect} on this edge`);
    return d.handler.renderer(spec);
  }

  private opened(d: MountedDialect, conn: Conn): void {
    const timeout = d.limits.authTimeoutMs;
    this.conns.add(conn, timeout > 0 ? Date.now() + timeout : 0);
    this.keepalive.joined(d, conn);
    this.metrics.connections.inc({ dialect: d.name });
    this.metrics.connectionsOpened.inc({ dialect: d.name });
    d.handler.open?.(conn);
  }

  private closed(d: MountedDialect, conn: Conn, code: number): void {
    conn.queue = null;
    this.conns.remove(conn);
    this.quota.closed(conn);
    this.hub.removeConnection(conn);
    d.handler.close?.(conn);
    this.metrics.connections.dec({ dialect: d.name });
    this.metrics.connectionsClosed.inc({ dialect: d.name, code: KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other' });
    if (this.draining) {
      // Settled in bulk when the drain ends (releaseNode + touchSessions).
      if (conn.sessionId !== null) this.sync.closedWhileDraining(conn.sessionId);
      return;
    }
    const session = this.options.session;
    if (conn.admitted) {
      conn.admitted = false;
      session.release(conn.connId).catch((err: unknown) => this.log.warn({ err }, 'admission release failed'));
    }
    // The session's sliding expiry counts from the disconnect: time to come back and resume.
    if (conn.sessionId !== null) session.touchSession(conn.sessionId).catch((err: unknown) => this.log.warn({ err }, 'session touch failed'));
  }
}

/** Metrics children with the dialect label bound. */
function dialectMetrics(m: EdgeMetrics, dialect: string): DialectMetrics {
  return {
    messagesIn: m.messagesIn.labels(dialect),
    messagesOut: m.messagesOut.labels(dialect),
    error: (code: ErrorCode) => m.errors.inc({ dialect, code }),
    rateLimited: (rule: string) => m.rateLimitRejections.inc({ dialect, rule }),
  };
}

