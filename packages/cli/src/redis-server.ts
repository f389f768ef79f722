/**
 * The redis-server of `switchboard dev-cluster`: started from PATH on a free loopback port with a data
 * directory. This is the CLI's own launcher (the test kit has another for tests): the CLI must not depend
 * on test code at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

/** A redis-server this process started. */
export interface DevRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Graceful stop (SIGTERM; AOF is flushed), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  readonly child: ChildProcess;
}

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

/** Starts redis-server with its data in `dir` (AOF when `appendOnly`), and waits until it answers. */
export async function startDevRedis(opts: { dir: string; appendOnly: boolean; port?: number }): Promise<DevRedis> {
  mkdirSync(opts.dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const child = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', opts.dir,
      '--save', '',
      '--appendonly', opts.appendOnly ? 'yes' : 'no',
      '--appendfsync', 'everysec',
      '--protected-mode', 'no',
      '--logfile', join(opts.dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}; see ${join(opts.dir, 'redis.log')}`);
    if (await ping(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer on port ${port} within 10 s; see ${join(opts.dir, 'redis.log')}`);
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
