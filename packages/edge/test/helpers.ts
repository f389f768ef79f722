import { MemoryBroker, type Bus, type MemoryBus } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, loadConfig, type Config, type ConfigOverrides } from '@switchboard/core';
import { createJwtVerifier } from '@switchboard/session';
import { MemorySessionRepo, createSessionService, hmacIssuer, type SessionService } from '@switchboard/session/service';
import { TestClient, type ConnectOptions } from '@switchboard/testkit';
import { MemoryObjectStore, type ObjectStore } from '@switchboard/store';
import type { Registry } from 'prom-client';
import type { DialectDefinition } from '../src/dialect.js';
import { DIALECTS } from '../src/dialects/index.js';
import { CONTROL_CHANNEL, revocationMessage } from '../src/cluster.js';
import { EdgeServer } from '../src/server.js';

/** An in-process edge with memory backends on a free port, plus helpers to drive it. */
export interface TestNode {
  readonly config: Config;
  readonly edge: EdgeServer;
  readonly broker: MemoryBroker;
  /** A second bus node on the same broker, to publish without HTTP. */
  readonly publisher: MemoryBus;
  readonly registry: Registry;
  readonly session: SessionService;
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  token(sub: string, opts?: { roles?: string[]; ttlSec?: number; tenant?: string }): Promise<string>;
  connect(path?: string, opts?: ConnectOptions): Promise<TestClient>;
  /** Connects and authenticates as `sub`; resolves once `auth_response` succeeded. */
  authed(sub: string, path?: string, opts?: { tenant?: string }): Promise<TestClient>;
  publishHttp(body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** Starts a node; `overrides` change the config (port 0, quiet logs by default). */
export async function startTestNode(
  overrides: ConfigOverrides = {},
  extra: {
    dialects?: readonly DialectDefinition[];
    env?: Record<string, string>;
    /** Several nodes may share one broker: an in-process cluster. */
    broker?: MemoryBroker;
    /** Wraps the node's memory object stores (a test that needs a store's answers to take time). */
    wrapStore?: (store: ObjectStore) => ObjectStore;
    /** Wraps the edge's bus (a test that needs publishes to take time). */
    wrapBus?: (bus: Bus) => Bus;
  } = {},
): Promise<TestNode> {
  const dialects = extra.dialects ?? DIALECTS;
  const config = loadConfig(extra.env ?? {}, { port: 0, host: '127.0.0.1', logLevel: 'silent', ...overrides }, 'all', dialects.map((d) => d.config));
  const logger = createLogger({ name: 'test', level: config.logLevel });
  const registry = createMetricsRegistry({ processMetrics: false });
  // Several nodes may share one broker: an in-process cluster.
  const ownBroker = extra.broker === undefined;
  const broker = extra.broker ?? new MemoryBroker({ historySize: config.historySize, historyTtlSec: config.historyTtlSec });
  const bus = broker.node();
  const publisher = broker.node();
  const secret = config.jwtSecret!;
  const issuer = hmacIssuer(secret, { issuer: config.jwtIssuer, audience: config.jwtAudience });
  const session = createSessionService(config, new MemorySessionRepo(config), issuer, logger, registry);
  // As the all-in-one process wires it: revocations reach the edges on the bus's control channel.
  session.onRevoke(async (keys) => {
    await publisher.publish({ channel: CONTROL_CHANNEL, attrs: {}, data: revocationMessage(keys, 'session:test') });
  });
  const edge = new EdgeServer({
    config,
    bus: extra.wrapBus ? extra.wrapBus(bus) : bus,
    verifier: createJwtVerifier({ hmacSecret: secret, issuer: config.jwtIssuer, audience: config.jwtAudience, clockToleranceSec: config.clockSkewSec, maxLifetimeSec: config.maxTokenLifetimeSec }),
    session,
    logger,
    registry,
    dialects,
    openStore: (o) => {
      const store = new MemoryObjectStore(broker, o);
      return Promise.resolve(extra.wrapStore ? extra.wrapStore(store) : store);
    },
  });
  const port = await edge.listen();
  const wsUrl = `ws://127.0.0.1:${port}`;
  const httpUrl = `http://127.0.0.1:${port}`;
  const clients: TestClient[] = [];
  const node: TestNode = {
    config,
    edge,
    broker,
    publisher,
    registry,
    session,
    port,
    wsUrl,
    httpUrl,
    token: (sub, opts = {}) => issuer.issue({ sub, roles: opts.roles ?? [], ttlSec: opts.ttlSec ?? 3600, ...(opts.tenant !== undefined ? { tenant: opts.tenant } : {}) }),
    async connect(path = '/ws', opts = {}) {
      const c = await TestClient.connect(wsUrl + path, opts);
      clients.push(c);
      return c;
    },
    async authed(sub, path = '/ws', opts = {}) {
      const c = await node.connect(path);
      c.send({ type: 'auth', token: await node.token(sub, opts) });
      const res = await c.nextOfType('auth_response');
      if (res.success !== true) throw new Error(`auth failed: ${JSON.stringify(res)}`);
      return c;
    },
    async publishHttp(body, headers = {}) {
      const res = await fetch(`${httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${config.apiKeys[0]}`, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { text };
      }
      return { status: res.status, body: parsed };
    },
    async metric(name, labels = {}) {
      const m = await registry.getSingleMetric(name)?.get();
      if (!m) throw new Error(`no metric ${name}`);
      let sum = 0;
      for (const v of m.values) {
        if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
      }
      return sum;
    },
    async close() {
      for (const c of clients) c.ws.terminate();
      edge.close();
      await bus.close();
      await publisher.close();
      if (ownBroker) broker.close();
    },
  };
  return node;
}

/** Waits until `check` is true or throws after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
