/**
 * Real redis-server processes for tests: one standalone server on a free port in a temp dir, or a
 * 3-master Redis Cluster on loopback created with `redis-cli --cluster create`. Started and stopped by
 * the tests themselves: never the machine's shared 6379, never a mock.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { trackChild } from './children.js';
import { freePort, portIsFree } from './ports.js';

const run = promisify(execFile);

/** Sends one inline command over a fresh connection and returns the raw reply (or throws). */
export function redisCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis ${port}: ${command}: timeout`));
    }, timeoutMs);
    s.on('data', (d) => {
      data += d.toString();
      if (data.endsWith('\r\n')) {
        clearTimeout(timer);
        s.end();
        resolve(data);
      }
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.write(command + '\r\n');
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  readonly port?: number;
  /** Keep data across restarts (AOF, fsync always). Default false. */
  readonly persistent?: boolean;
  /** Extra redis-server arguments. */
  readonly args?: readonly string[];
  /** Directory for data and logs (a fresh temp dir by default). */
  readonly dir?: string;
}

/** A running redis-server started by {@link startRedis}. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILL: the server dies without saving anything. */
  kill(): Promise<void>;
  /** SIGSTOP: the server stops answering, its connections stay open (a blackholed link, a stalled replica). */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Starts it again on the same port and directory. */
  restart(): Promise<void>;
  /** Graceful stop and removal of the temp dir. */
  stop(): Promise<void>;
  command(cmd: string): Promise<string>;
}

/** Starts redis-server from PATH on a free loopback port in a temp dir and waits until it answers. */
export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sb-redis-'));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', opts.persistent ? 'yes' : 'no',
    ...(opts.persistent ? ['--appendfsync', 'always'] : []),
    '--protected-mode', 'no',
    '--logfile', join(dir, 'redis.log'),
    ...(opts.args ?? []),
  ];
  let child: ChildProcess | null = null;
  const launch = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    trackChild(child);
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`redis-server exited with ${code}; see ${dir}/redis.log`))),
    );
    await Promise.race([
      waitFor(async () => (await redisCommand(port, 'PING')).startsWith('+PONG'), 10_000, `redis-server on ${port}`),
      exited,
    ]);
  };
  await launch();
  const stopChild = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await gone;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill: () => stopChild('SIGKILL'),
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    restart: launch,
    async stop() {
      await stopChild('SIGTERM');
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
    command: (cmd) => redisCommand(port, cmd),
  };
}

/** Starts a replica of `master` (a standalone server) and waits until its replication link is up. */
export async function startRedisReplica(master: RedisServer, opts: RedisServerOptions = {}): Promise<RedisServer> {
  const replica = await startRedis({ ...opts, args: ['--replicaof', '127.0.0.1', String(master.port), ...(opts.args ?? [])] });
  await waitFor(async () => (await replica.command('INFO replication')).includes('master_link_status:up'), 20_000, `replica ${replica.port} of ${master.port}`);
  return replica;
}

/** A Redis Cluster started by {@link startRedisCluster}. */
export interface RedisCluster {
  /** Every node: the masters first, then the replicas. */
  readonly nodes: readonly RedisServer[];
  readonly masters: readonly RedisServer[];
  readonly replicas: readonly RedisServer[];
  /** A seed URL (any node). */
  readonly url: string;
  stop(): Promise<void>;
}

/** A port whose cluster bus port (+10000) is also usable. */
async function clusterPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    // Other tests run beside this one: the bus port must be free too, not merely in range.
    if (p < 55_000 && (await portIsFree(p + 10_000))) return p;
  }
}

/**
 * Starts `masters` cluster-enabled servers (and `replicasPerMaster` replicas of each) and joins them with
 * `redis-cli --cluster create`. `nodeTimeoutMs` is how long a silent master takes to be failed over.
 */
export async function startRedisCluster(masters = 3, replicasPerMaster = 0, nodeTimeoutMs = 2000): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
    const port = await clusterPort();
    nodes.push(
      await startRedis({
        port,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(nodeTimeoutMs)],
      }),
    );
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], {
    timeout: 30_000,
  });
  for (const n of nodes) {
    await waitFor(async () => (await n.command('CLUSTER INFO')).includes('cluster_state:ok'), 20_000, `cluster state ok on ${n.port}`);
  }
  const role = async (n: RedisServer) => ((await n.command('ROLE')).includes('master') ? 'master' : 'replica');
  const roles = await Promise.all(nodes.map(role));
  if (replicasPerMaster > 0)
    for (const n of nodes.filter((_, i) => roles[i] === 'replica'))
      await waitFor(async () => (await n.command('INFO replication')).includes('master_link_status:up'), 20_000, `replica link on ${n.port}`);
  return {
    nodes,
    masters: nodes.filter((_, i) => roles[i] === 'master'),
    replicas: nodes.filter((_, i) => roles[i] === 'replica'),
    url: nodes[0]!.url,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

/** A standalone server and a 3-master cluster, for suites that run a contract against both. */
export interface RedisPair {
  readonly redis: RedisServer;
  readonly cluster: RedisCluster;
  stop(): Promise<void>;
}

/** Starts {@link RedisPair} in parallel. */
export async function startRedisPair(): Promise<RedisPair> {
  const [redis, cluster] = await Promise.all([startRedis(), startRedisCluster(3)]);
  return { redis, cluster, stop: async () => void (await Promise.all([redis.stop(), cluster.stop()])) };
}
