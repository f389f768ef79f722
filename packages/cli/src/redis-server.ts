/**
 * The redis-server of `switchboard dev-cluster`: started from PATH on a loopback port with a data
 * directory. This is the CLI's own launcher (the test kit has another for tests): the CLI must not depend
 * on test code at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

/** A redis-server this process started. */
export interface DevRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Graceful stop (SIGTERM: redis-server flushes its AOF), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  readonly child: ChildProcess;
}

/** Options of {@link startDevRedis}. */
export interface DevRedisOptions {
  readonly dir: string;
  /** AOF with `appendfsync everysec`: the data survives restarts; a crash may lose about a second of writes. */
  readonly appendOnly: boolean;
  /** A fixed port (a restart keeps the address the other processes use); a free one otherwise. */
  readonly port?: number;
  /**
   * Its own process group, so that a Ctrl-C in the terminal reaches only the supervisor, which stops the
   * processes in order (edges first, Redis last).
   */
  readonly detached?: boolean;
}

/** The pid file redis-server writes into its data directory while it runs. */
export const REDIS_PID_FILE = 'redis.pid';

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = addr !== null && typeof addr !== 'string' ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
    s.write('PING\r\n');
  });
}

/** The pid in `dir`'s redis pid file when that process still runs (a redis-server left behind), else null. */
export function runningRedisPid(dir: string): number | null {
  const file = join(dir, REDIS_PID_FILE);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

/**
 * Whether a process with this pid runs: it exists (signal 0 checks without sending anything) and, where
 * /proc tells, is not a zombie. A process whose parent is gone (a redis-server left by a killed dev
 * cluster) is reaped by PID 1, which in some containers happens seconds later or never; signal 0 still
 * reaches it until then, though it has exited and holds nothing.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // No /proc (not Linux): signal 0 is all there is. With /proc: it was reaped in between.
    return !existsSync('/proc/self/stat');
  }
  // The state follows the command name, which is in parentheses and may itself hold ") ".
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}

/** Starts redis-server with its data in `dir` (AOF when `appendOnly`), and waits until it answers. */
export async function startDevRedis(opts: DevRedisOptions): Promise<DevRedis> {
  mkdirSync(opts.dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const log = join(opts.dir, 'redis.log');
  const child = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', opts.dir,
      '--save', '',
      '--appendonly', opts.appendOnly ? 'yes' : 'no',
      '--appendfsync', 'everysec',
      // A stream's first node is allocated at this size: 4 KB by default is 4.4 KB per channel that keeps
      // one message of history; 1 KB makes it 1.3 KB, for 7 % more per shard-feed entry (docs/operations.md).
      '--stream-node-max-bytes', '1024',
      '--protected-mode', 'no',
      '--pidfile', join(opts.dir, REDIS_PID_FILE),
      '--logfile', log,
    ],
    { stdio: 'ignore', detached: opts.detached ?? false },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} (port ${port} in use?); see ${log}`);
    if (await ping(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer on port ${port} within 10 s; see ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir: opts.dir,
    child,
    stop(timeoutMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
}
