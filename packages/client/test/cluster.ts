/**
 * The real cluster the SDK is tested against: a redis-server started by testkit on a free port, one
 * `switchboard session` and two `switchboard edge` processes of the CLI (dev mode: the dev API key
 * publishes, the dev admin token mints tokens), plus a small HTTP server that serves the test page
 * to Chromium from a real origin, which the edges allow.
 */
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { keys, shardOf } from '@switchboard/bus';
import { DEFAULT_TENANT, busChannel } from '@switchboard/core';
import { DEV_ADMIN_TOKEN, DEV_API_KEY } from '@switchboard/core';
import { freePort, startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

// The CLI's own `bin` (package.json "bin"), found from its public entry point. The CLI is the root
// package's dependency, not this one's: the CLI depends on the SDK (`switchboard listen`).
const BIN = join(dirname(createRequire(import.meta.url).resolve('@switchboard/cli')), '..', 'bin', 'switchboard.js');
const SHARDS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One message for `POST /api/publish`. */
export interface PublishMessage {
  readonly channel: string;
  readonly attrs: Record<string, string | number>;
  readonly data: Record<string, unknown>;
}

/** The running cluster. */
export interface Cluster {
  readonly redis: RedisServer;
  readonly session: SwitchboardProcess;
  /** The two edges; an entry is replaced when {@link Cluster.restartEdge} starts it again. */
  readonly edges: SwitchboardProcess[];
  /** `ws://127.0.0.1:PORT/ws` of edge `i` (stable across restarts). */
  wsUrl(i: number): string;
  /** The page Chromium loads: it defines `globalThis.harness`. */
  readonly pageUrl: string;
  /** The history size every edge publishes with. */
  readonly historySize: number;
  /** Publishes through edge `i`'s HTTP API, all messages in one request. */
  publish(i: number, messages: readonly PublishMessage[]): Promise<void>;
  /** Mints a token from the session service (`POST /v1/tokens`, dev admin token). */
  mintToken(sub: string, ttl: string): Promise<string>;
  /** Starts edge `i` again on its port if it is not running. */
  restartEdge(i: number): Promise<void>;
  /** Deletes a channel's history and epoch from Redis, as a Redis that lost its data would. */
  dropChannel(channel: string): Promise<void>;
  stop(): Promise<void>;
}

/** Bundles test/page.ts (the harness over the built SDK) into one script for the page. */
async function pageScript(): Promise<string> {
  const out = await build({
    entryPoints: [join(import.meta.dirname, 'page.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

async function servePage(): Promise<{ server: Server; origin: string }> {
  const script = await pageScript();
  const port = await freePort();
  const server = createServer((req, res) => {
    if (req.url === '/harness.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>sdk test</title><script src="/harness.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${port}` };
}

/** Starts Redis, the session service, two edges and the page server. */
export async function startCluster(historySize: number): Promise<Cluster> {
  const page = await servePage();
  const redis = await startRedis();
  const session = await startSwitchboard(BIN, 'session', { REDIS_URL: redis.url, SESSION_NODE_DEAD_SEC: '5' }, 30_000, 'SESSION_PORT');
  const ports = [await freePort(), await freePort()];
  const edgeEnv = (i: number): Record<string, string> => ({
    REDIS_URL: redis.url,
    NODE_ID: `edge-${i}`,
    PORT: String(ports[i]),
    SWITCHBOARD_SESSION_URL: session.httpUrl,
    SWITCHBOARD_SHARDS: String(SHARDS),
    SWITCHBOARD_HISTORY_SIZE: String(historySize),
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_DRAIN_MS: '100',
    SWITCHBOARD_HEARTBEAT_SEC: '1',
    SWITCHBOARD_SESSION_CHECKPOINT_MS: '200',
    // The page's real origin, as a deployment lists its web app's.
    SWITCHBOARD_ALLOWED_ORIGINS: page.origin,
  });
  const edges = await Promise.all([0, 1].map((i) => startSwitchboard(BIN, 'edge', edgeEnv(i), 30_000)));
  const alive = (p: SwitchboardProcess) => p.child.exitCode === null && p.child.signalCode === null;

  return {
    redis,
    session,
    edges,
    historySize,
    pageUrl: `${page.origin}/`,
    wsUrl: (i) => `ws://127.0.0.1:${ports[i]}/ws`,
    async publish(i, messages) {
      // Retried while the edge answers 503 (its bus reconnecting) or is briefly unreachable.
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await fetch(`${edges[i]!.httpUrl}/api/publish`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
            body: JSON.stringify(messages.length === 1 ? messages[0] : { messages }),
          });
          if (res.ok) return;
          if (res.status !== 503 || attempt > 100) throw new Error(`publish: ${res.status} ${await res.text()}`);
        } catch (err) {
          if (attempt > 100) throw err;
        }
        await sleep(50);
      }
    },
    async mintToken(sub, ttl) {
      const res = await fetch(`${session.httpUrl}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
        body: JSON.stringify({ sub, ttl }),
      });
      const body = (await res.json()) as { token?: string };
      if (!res.ok || typeof body.token !== 'string') throw new Error(`mint token: ${res.status} ${JSON.stringify(body)}`);
      return body.token;
    },
    async restartEdge(i) {
      const old = edges[i]!;
      if (alive(old)) {
        // A stopped process (SIGSTOP) is let go on first, so that it can die.
        old.child.kill('SIGCONT');
        return;
      }
      edges[i] = await startSwitchboard(BIN, 'edge', edgeEnv(i), 30_000);
    },
    async dropChannel(channel) {
      // The bus names a valtronics channel of the default tenant `valtronics:default:<channel>`.
      const bus = busChannel('valtronics', DEFAULT_TENANT, channel);
      const s = shardOf(bus, SHARDS);
      await redis.command(`DEL ${keys.meta(s, bus)} ${keys.history(s, bus)}`);
    },
    async stop() {
      await Promise.all(edges.map((e) => e.stop('SIGKILL')));
      await session.stop();
      await redis.stop();
      await new Promise((r) => page.server.close(r));
    },
  };
}
