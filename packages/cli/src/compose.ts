/**
 * How each process is put together. `start`: edge + session service in one process (embedded backends,
 * or Redis when REDIS_URL is set). `edge`: an edge that reaches the session service over the Rpc seam
 * and verifies tokens with its JWKS. `session`: the session service, all state in Redis.
 */
import { RedisRpcClient, RedisRpcServer, connectRedis, ignoreUntilWatched, redisConnectionErrors, waitReady, watchRedisErrors, type RedisClient } from '@switchboard/bus';
import type { Bus } from '@switchboard/bus';
import { createMetricsRegistry, normalizeAddress, type Config, type Logger } from '@switchboard/core';
import { CONTROL_CHANNEL, EdgeServer, revocationMessage } from '@switchboard/edge';
import {
  MemorySessionRepo,
  RedisSessionRepo,
  RpcSessionClient,
  buildIssuer,
  createJwtVerifier,
  createSessionService,
  sessionRpcHandler,
  startSessionHttp,
  type SessionRepo,
  type SessionService,
} from '@switchboard/session/service';
import type { Registry } from 'prom-client';
import { createBus } from './backends.js';

/** A running process and how to stop it. */
export interface Running {
  /** Bound ports by name (`http`, `session`). */
  readonly ports: Record<string, number>;
  /** What it runs on, for the start-up log line. */
  readonly backend: string;
  stop(): Promise<void>;
  /** SIGHUP: reloads what can be reloaded (the edge's TLS certificate). */
  reload?(): Promise<void>;
}

/** How often dead edges are looked for. */
const REAP_EVERY_MS = 5000;

function reaper(service: SessionService, logger: Logger): NodeJS.Timeout {
  const t = setInterval(() => {
    service.reap().catch((err: unknown) => logger.warn({ err }, 'reaping dead edges failed'));
  }, REAP_EVERY_MS);
  t.unref();
  return t;
}

async function redisClient(config: Config, name: string, logger: Logger, registry: Registry): Promise<RedisClient> {
  const client = connectRedis({ url: config.redisUrl!, cluster: config.redisCluster }, `sb:${config.nodeId}:${name}`);
  client.on('error', ignoreUntilWatched);
  try {
    await waitReady(client);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  client.off('error', ignoreUntilWatched);
  watchRedisErrors(client, name, logger, redisConnectionErrors(registry));
  return client;
}

async function sessionParts(config: Config, logger: Logger, registry: Registry) {
  let repo: SessionRepo;
  let redis: RedisClient | null = null;
  if (config.redisUrl) {
    redis = await redisClient(config, 'session', logger, registry);
    repo = new RedisSessionRepo(redis, config);
  } else repo = new MemorySessionRepo(config);
  const issuer = await buildIssuer(config);
  const service = createSessionService(config, repo, issuer, logger, registry);
  return { repo, redis, issuer, service };
}

/** The session service's HTTP API as the configuration describes it. */
function sessionApi(config: Config, parts: Awaited<ReturnType<typeof sessionParts>>, logger: Logger, registry: Registry, ready: () => boolean) {
  return startSessionHttp({
    service: parts.service,
    issuer: parts.issuer,
    registry,
    logger,
    host: config.host,
    port: config.sessionPort,
    adminToken: config.adminToken,
    ready,
    verifier: createJwtVerifier({
      ...verifierLimits(config),
      localJwks: parts.issuer.jwks(),
      ...(config.jwtSecret ? { hmacSecret: config.jwtSecret } : {}),
    }),
    trustedProxies: config.trustedProxies.map(normalizeAddress),
  });
}

/** The token rules every verifier of a process applies. */
function verifierLimits(config: Config) {
  return { issuer: config.jwtIssuer, audience: config.jwtAudience, clockToleranceSec: config.clockSkewSec, maxLifetimeSec: config.maxTokenLifetimeSec };
}

/**
 * Revocations go to every edge over the bus's control channel, where they close the affected sockets (a
 * failed publish is retried by the service; edges also poll the revocation log).
 */
function announceRevocations(service: SessionService, bus: Bus, config: Config): void {
  service.onRevoke(async (keys) => {
    await bus.publish({ channel: CONTROL_CHANNEL, attrs: {}, data: revocationMessage(keys, `session:${config.nodeId}`) });
  });
}

/** `switchboard start`: the edge and the session service in one process. */
export async function startAllInOne(config: Config, logger: Logger): Promise<Running> {
  const registry = createMetricsRegistry({ defaultLabels: { node: config.nodeId } });
  const backend = await createBus(config, logger, registry);
  const parts = await sessionParts(config, logger, registry);
  const { redis, issuer, service } = parts;
  // The admin page reaches this process's own session port, whatever SWITCHBOARD_SESSION_URL says.
  let sessionPort = config.sessionPort;
  const sessionHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const edge = new EdgeServer({
    config,
    bus: backend.bus,
    verifier: createJwtVerifier({ ...verifierLimits(config), localJwks: issuer.jwks(), ...(config.jwtSecret ? { hmacSecret: config.jwtSecret } : {}) }),
    session: service,
    logger,
    registry,
    openStore: (o) => backend.openStore(o),
    sessionUrl: () => `http://${sessionHost}:${sessionPort}`,
  });
  const http = await edge.listen();
  announceRevocations(service, backend.bus, config);
  const sessionHttp = await sessionApi(config, parts, logger, registry, () => backend.bus.ready());
  sessionPort = sessionHttp.port;
  const timer = reaper(service, logger);
  return {
    ports: { http, session: sessionHttp.port },
    backend: backend.kind,
    reload: () => edge.reloadTls(),
    async stop() {
      clearInterval(timer);
      await edge.drain();
      edge.close();
      service.stopAnnouncing();
      await sessionHttp.close();
      await backend.close();
      redis?.disconnect();
    },
  };
}

/** `switchboard edge`: an edge of a cluster; no secret in it, only the JWKS URL and Redis. */
export async function startEdge(config: Config, logger: Logger): Promise<Running> {
  const registry = createMetricsRegistry({ defaultLabels: { node: config.nodeId } });
  const backend = await createBus(config, logger, registry);
  const rpc = await RedisRpcClient.connect({
    target: { url: config.redisUrl!, cluster: config.redisCluster },
    logger,
    nodeId: config.nodeId,
    timeoutMs: config.rpcTimeoutMs,
    registry,
  });
  const edge = new EdgeServer({
    config,
    bus: backend.bus,
    verifier: createJwtVerifier({
      ...verifierLimits(config),
      jwksUrl: config.jwksUrl ?? new URL('/.well-known/jwks.json', config.sessionUrl).href,
      // Only in dev mode: production edges hold no secret (the config refuses one).
      ...(config.mode === 'dev' && config.jwtSecret ? { hmacSecret: config.jwtSecret } : {}),
    }),
    session: new RpcSessionClient(rpc, config.rpcTimeoutMs),
    logger,
    registry,
    openStore: (o) => backend.openStore(o),
  });
  const http = await edge.listen();
  return {
    ports: { http },
    backend: backend.kind,
    reload: () => edge.reloadTls(),
    async stop() {
      await edge.drain();
      edge.close();
      await rpc.close();
      await backend.close();
    },
  };
}

/** `switchboard session`: the session service (M replicas allowed), state in Redis. */
export async function startSession(config: Config, logger: Logger): Promise<Running> {
  const registry = createMetricsRegistry({ defaultLabels: { node: config.nodeId } });
  const parts = await sessionParts(config, logger, registry);
  const { redis, service } = parts;
  const target = { url: config.redisUrl!, cluster: config.redisCluster };
  const rpc = await RedisRpcServer.start({
    target,
    logger,
    nodeId: config.nodeId,
    claimIdleMs: config.rpcClaimIdleMs,
    registry,
    handler: sessionRpcHandler(service, service.metrics),
  });
  // Publish-only: revocations reach the edges on their control channel (nothing is read here).
  const backend = await createBus(config, logger, registry);
  announceRevocations(service, backend.bus, config);
  // Ready while Redis answers its health checks (a stalled Redis turns this 503 within a second).
  const sessionHttp = await sessionApi(config, parts, logger, registry, () => redis?.status === 'ready' && backend.bus.ready());
  const timer = reaper(service, logger);
  return {
    ports: { session: sessionHttp.port },
    backend: config.redisCluster ? 'redis-cluster' : 'redis',
    async stop() {
      clearInterval(timer);
      service.stopAnnouncing();
      await rpc.close();
      await sessionHttp.close();
      await backend.close();
      redis?.disconnect();
    },
  };
}

