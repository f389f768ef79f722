/**
 * `switchboard dev-cluster`: a redis-server from PATH, one session service and N edges, each its own
 * process, supervised like a cluster: a process that dies is named and restarted after a backoff while the
 * others keep serving; Ctrl-C stops everything, in order, quietly. Redis keeps its data (AOF) in a
 * directory under the OS's cache directory, so users, sessions and history survive a restart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_SPEC, createLogger, loadOptions, type Logger } from '@switchboard/core';
import type { CliIo } from '../main.js';
import { isAlive, runningRedisPid, startDevRedis, type DevRedis } from '../redis-server.js';

/** Arguments of `switchboard dev-cluster`. */
export interface DevClusterArgs {
  readonly edges: number;
  readonly basePort: number;
  readonly sessionPort: number;
  /** Redis's data directory; {@link defaultDataDir} when absent. */
  readonly dataDir: string | undefined;
  /** Start with an empty data directory. */
  readonly fresh: boolean;
  /** Restart a process that died (false: `--no-restart`). */
  readonly restart: boolean;
}

const BIN = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));

/**
 * Set in the environment of the processes the dev cluster starts: they stop gracefully when their stdin
 * (a pipe from the dev cluster) ends, so a dev cluster that is killed outright leaves no edge running.
 */
export const EXIT_WITH_STDIN_ENV = 'SWITCHBOARD_EXIT_WITH_STDIN';

/** The lock that keeps two dev clusters off one data directory. */
const LOCK_FILE = 'dev-cluster.pid';
/** What redis-server writes into the data directory; `--fresh` deletes these and nothing else. */
const REDIS_DATA_FILES = ['appendonlydir', 'appendonly.aof', 'dump.rdb', 'redis.log'];

const READY_TIMEOUT_MS = 60_000;
/** A process that ran this long before dying is restarted after the first delay again. */
const STABLE_AFTER_MS = 30_000;

/** The default data directory: `switchboard/dev-cluster` under the OS's cache directory. */
export function defaultDataDir(env: Readonly<Record<string, string | undefined>>, platform: NodeJS.Platform = process.platform, home = homedir()): string {
  let cache: string;
  if (platform === 'darwin') cache = join(home, 'Library', 'Caches');
  else if (platform === 'win32') cache = env.LOCALAPPDATA || join(home, 'AppData', 'Local');
  else cache = env.XDG_CACHE_HOME || join(home, '.cache');
  return join(cache, 'switchboard', 'dev-cluster');
}

/** The wait before restarting a process that died `failures` times in a row: 1 s, 2 s, 4 s, … 30 s. */
export function restartDelayMs(failures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.min(failures, 5));
}

/** Copies a child's output line by line with its name in front; the last partial line at its end. */
function relay(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  let pending = '';
  stream.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) out.write(`${prefix} ${line}\n`);
  });
  stream.on('end', () => {
    if (pending) out.write(`${prefix} ${pending}\n`);
    pending = '';
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`it exited (${child.signalCode ?? `code ${child.exitCode}`}) before ${url} answered`);
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer ready within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends SIGTERM and waits for the exit; SIGKILL after `timeoutMs`. */
function stopChild(child: ChildProcess | null, timeoutMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** One supervised process: how to start it (ready when it resolves) and the running child. */
interface Member {
  readonly name: string;
  /** Where it serves, for the log. */
  readonly where: string;
  child: ChildProcess | null;
  startedAt: number;
  /** Deaths in a row (reset after {@link STABLE_AFTER_MS} of running). */
  failures: number;
  restartTimer: NodeJS.Timeout | null;
  start(): Promise<void>;
  stop(timeoutMs: number): Promise<void>;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** `switchboard dev-cluster`: runs until SIGINT/SIGTERM; resolves with the exit code. */
export async function devClusterCommand(args: DevClusterArgs, io: CliIo): Promise<number> {
  const config = loadOptions(['logLevel', 'shutdownTimeoutMs'], io.env);
  const logger = createLogger({ name: 'dev-cluster', level: config.logLevel });
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    io.stderr.write('switchboard dev-cluster: redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)\n');
    return 2;
  }
  const dir = args.dataDir ?? defaultDataDir(io.env);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, LOCK_FILE);
  const owner = existsSync(lock) ? Number(readFileSync(lock, 'utf8').trim()) : 0;
  if (owner > 0 && owner !== process.pid && isAlive(owner)) {
    io.stderr.write(`switchboard dev-cluster: another dev cluster (pid ${owner}) uses ${dir}: stop it, or give this one --data-dir DIR\n`);
    return 2;
  }
  writeFileSync(lock, `${process.pid}\n`);
  try {
    return await runCluster(args, io, logger, dir, config.shutdownTimeoutMs);
  } finally {
    rmSync(lock, { force: true });
  }
}

async function runCluster(args: DevClusterArgs, io: CliIo, logger: Logger, dir: string, shutdownTimeoutMs: number): Promise<number> {
  // A redis-server still running on this directory belongs to a dev cluster that was killed outright
  // (the lock's owner is gone): stop it before a second one opens the same AOF.
  const orphan = runningRedisPid(dir);
  if (orphan !== null) {
    logger.warn({ pid: orphan, dir }, `stopping redis-server pid ${orphan}, left running on ${dir} by a dev cluster that was killed`);
    process.kill(orphan, 'SIGTERM');
    for (let i = 0; i < 100 && isAlive(orphan); i++) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(orphan)) process.kill(orphan, 'SIGKILL');
  }
  if (args.fresh) for (const f of REDIS_DATA_FILES) rmSync(join(dir, f), { recursive: true, force: true });
  const kept = existsSync(join(dir, 'appendonlydir')) || existsSync(join(dir, 'appendonly.aof'));

  let stopping = false;
  let redis: DevRedis | null = null;
  let redisPort: number | undefined;
  const members: Member[] = [];

  const redisMember: Member = {
    name: 'redis',
    where: '',
    child: null,
    startedAt: 0,
    failures: 0,
    restartTimer: null,
    async start() {
      // The same port after a restart: the other processes keep the address they were given.
      redis = await startDevRedis({ dir, appendOnly: true, detached: true, ...(redisPort !== undefined ? { port: redisPort } : {}) });
      redisPort = redis.port;
      this.child = redis.child;
    },
    stop: (timeoutMs) => redis?.stop(timeoutMs) ?? Promise.resolve(),
  };

  // Session-only options never reach an edge (an edge refuses to start with one in its environment).
  const edgeEnv: Record<string, string | undefined> = { ...io.env };
  for (const spec of Object.values(CONFIG_SPEC)) if ('only' in spec && spec.only === 'session') delete edgeEnv[spec.env];
  const sessionUrl = `http://127.0.0.1:${args.sessionPort}`;

  const nodeMember = (role: 'session' | 'edge', name: string, port: number, env: Record<string, string>): Member => ({
    name,
    where: `http://127.0.0.1:${port}`,
    child: null,
    startedAt: 0,
    failures: 0,
    restartTimer: null,
    async start() {
      const child = spawn(process.execPath, [BIN, role], {
        env: {
          ...(role === 'edge' ? edgeEnv : io.env),
          REDIS_URL: redis!.url,
          REDIS_CLUSTER: 'false',
          // A new id per start: a restarted edge must not inherit the admission slots of its dead self
          // (the session service reaps those when their node's heartbeats stop).
          NODE_ID: `${name}-${randomBytes(3).toString('hex')}`,
          [EXIT_WITH_STDIN_ENV]: '1',
          ...env,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group: a Ctrl-C in the terminal reaches the dev cluster only, which stops
        // each process once, in order (no child sees two signals).
        detached: true,
      });
      this.child = child;
      relay(child.stdout, `[${name}]`, io.stdout);
      relay(child.stderr, `[${name}]`, io.stderr);
      try {
        await waitReady(`${this.where}/readyz`, child, READY_TIMEOUT_MS);
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
    },
    stop(timeoutMs) {
      return stopChild(this.child, timeoutMs);
    },
  });

  const session = nodeMember('session', 'session', args.sessionPort, { SESSION_PORT: String(args.sessionPort) });
  const edges = Array.from({ length: args.edges }, (_, i) =>
    nodeMember('edge', `edge-${i + 1}`, args.basePort + i, { PORT: String(args.basePort + i), SWITCHBOARD_SESSION_URL: sessionUrl }),
  );

  const stopAll = async (): Promise<void> => {
    stopping = true;
    for (const m of members) if (m.restartTimer) clearTimeout(m.restartTimer);
    // Edges first (their clients are told to reconnect), then the session service, then Redis.
    await Promise.all(edges.map((m) => m.stop(shutdownTimeoutMs)));
    await session.stop(shutdownTimeoutMs);
    await redisMember.stop(shutdownTimeoutMs);
  };

  const watch = (m: Member): void => {
    m.startedAt = Date.now();
    const child = m.child!;
    child.once('exit', (code, signal) => {
      if (stopping) return;
      if (Date.now() - m.startedAt >= STABLE_AFTER_MS) m.failures = 0;
      const what = `${m.name} (pid ${child.pid}) ${describeExit(code, signal)}`;
      const fields = { proc: m.name, pid: child.pid, code, signal };
      if (!args.restart) {
        logger.error(fields, `${what}; left down (--no-restart), the others keep serving`);
        return;
      }
      const delayMs = restartDelayMs(m.failures++);
      logger.error({ ...fields, restartInMs: delayMs }, `${what}; restarting it in ${delayMs / 1000} s, the others keep serving`);
      scheduleRestart(m, delayMs);
    });
  };

  const scheduleRestart = (m: Member, delayMs: number): void => {
    m.restartTimer = setTimeout(() => {
      m.restartTimer = null;
      if (stopping) return;
      m.start().then(
        () => {
          if (stopping) return;
          logger.info({ proc: m.name, pid: m.child?.pid }, `${m.name} is back (pid ${m.child?.pid})${m.where ? ` on ${m.where}` : ''}`);
          watch(m);
        },
        (err: unknown) => {
          if (stopping) return;
          const delay = restartDelayMs(m.failures++);
          logger.error({ err, proc: m.name, restartInMs: delay }, `${m.name} did not come back; trying again in ${delay / 1000} s`);
          scheduleRestart(m, delay);
        },
      );
    }, delayMs);
  };

  let up = false;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (finish = r));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl-C: the user does not want to wait for the drain.
      logger.warn({ signal }, 'second signal: killing every process of the dev cluster now');
      for (const m of [...edges, session, redisMember]) m.child?.kill('SIGKILL');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'stopping the dev cluster: edges, then the session service, then redis-server');
    // During start-up the loop below stops what it started once the process at hand is up.
    if (up) void stopAll().then(() => finish(0));
  };
  // Installed before anything starts: a Ctrl-C during start-up must not leave processes behind.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (const m of [redisMember, session, ...edges]) {
      try {
        await m.start();
      } catch (err) {
        members.push(m);
        if (stopping) break;
        logger.error({ err, proc: m.name }, `${m.name} did not start: ${err instanceof Error ? err.message : String(err)}; stopping the dev cluster`);
        await stopAll();
        return 1;
      }
      members.push(m);
      watch(m);
      logger.info({ proc: m.name, pid: m.child?.pid }, `${m.name} ready (pid ${m.child?.pid})${m.where ? ` on ${m.where}` : ` on ${redis!.url}`}`);
      if (stopping) break;
    }
    if (stopping) {
      await stopAll();
      logger.info('dev cluster stopped');
      return 0;
    }
    up = true;
    const ports = edges.map((_, i) => args.basePort + i);
    logger.info(
      { redis: redis!.url, dataDir: dir, kept, session: sessionUrl, edges: edges.map((e) => e.where), restart: args.restart },
      `dev cluster up: edges on ${ports.map((p) => `http://127.0.0.1:${p}`).join(', ')}, session service ${sessionUrl}, ` +
        `redis-server ${redis!.url} with its data in ${dir} (${kept ? 'kept from the last run' : 'empty'}; --fresh starts empty). ` +
        'Redis runs with AOF, appendfsync everysec: users, sessions, history and objects survive a restart, but a crash of redis-server ' +
        'or of the machine may lose about the last second of acknowledged writes (docs/store.md). ' +
        `Ctrl-C stops it. Try: npx switchboard publish telemetry --attr device_id=1 --data '{"temperature":{"value":21}}' --url http://127.0.0.1:${ports[ports.length - 1]}`,
    );
    const code = await done;
    logger.info('dev cluster stopped');
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
