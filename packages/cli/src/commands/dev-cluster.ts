import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONFIG_SPEC, createLogger, loadConfig } from '@switchboard/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevRedis, type DevRedis } from '../redis-server.js';

/** Arguments of `switchboard dev-cluster`. */
export interface DevClusterArgs {
  readonly edges: number;
  readonly basePort: number;
  readonly sessionPort: number;
}

const BIN = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  let pending = '';
  stream.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) out.write(`${prefix} ${line}\n`);
  });
}

/**
 * `switchboard dev-cluster`: a redis-server from PATH on a free port, one session service (8100) and N
 * edges (ports 8000, 8001, …) as separate processes, for trying horizontal scaling on one machine.
 * SIGINT/SIGTERM stop all of it.
 */
export async function devClusterCommand(args: DevClusterArgs): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger({ name: 'dev-cluster', level: config.logLevel });
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    logger.error('redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server)');
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-dev-'));
  const redis: DevRedis = await startDevRedis({ dir, appendOnly: false });
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (code: number): Promise<number> => {
    stopping = true;
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const kill = setTimeout(() => c.kill('SIGKILL'), config.shutdownTimeoutMs);
            c.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    logger.info('dev cluster stopped');
    return code;
  };
  // An edge refuses session-only options (the admin token, signing keys): they stay out of its environment.
  const sessionOnly = Object.values(CONFIG_SPEC as Record<string, { env: string; only?: string }>)
    .filter((o) => o.only === 'session')
    .map((o) => o.env);
  const spawnRole = (role: 'session' | 'edge', name: string, env: Record<string, string>): ChildProcess => {
    const inherited = { ...process.env };
    if (role === 'edge') for (const k of sessionOnly) delete inherited[k];
    const child = spawn(process.execPath, [BIN, role], {
      env: { ...inherited, REDIS_URL: redis.url, REDIS_CLUSTER: 'false', NODE_ID: name, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prefixLines(child.stdout, `[${name}]`, process.stdout);
    prefixLines(child.stderr, `[${name}]`, process.stderr);
    children.push(child);
    return child;
  };
  const sessionUrl = `http://127.0.0.1:${args.sessionPort}`;
  try {
    const session = spawnRole('session', 'session-1', { SESSION_PORT: String(args.sessionPort) });
    await waitReady(`${sessionUrl}/readyz`, session, 20_000);
    for (let i = 0; i < args.edges; i++) {
      const port = args.basePort + i;
      const edge = spawnRole('edge', `edge-${i + 1}`, { PORT: String(port), SWITCHBOARD_SESSION_URL: sessionUrl });
      await waitReady(`http://127.0.0.1:${port}/readyz`, edge, 20_000);
    }
  } catch (err) {
    logger.error({ err }, 'dev cluster failed to start');
    return stopAll(1);
  }
  const ports = Array.from({ length: args.edges }, (_, i) => args.basePort + i);
  logger.info(
    { redis: redis.url, session: sessionUrl, edges: ports.map((p) => `http://127.0.0.1:${p}`) },
    `dev cluster up: redis ${redis.url}, session service ${sessionUrl}, edges on ${ports.join(', ')}. Try: npx switchboard publish telemetry --attr device_id=1 --data '{"t":{"value":1}}' --url http://127.0.0.1:${ports[ports.length - 1]}`,
  );
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      logger.info({ signal }, 'stopping dev cluster');
      void stopAll(0).then(resolve);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    for (const c of children) {
      c.once('exit', (code) => {
        if (stopping) return;
        logger.error({ code }, 'a process of the dev cluster exited; stopping the dev cluster');
        void stopAll(1).then(resolve);
      });
    }
  });
}
