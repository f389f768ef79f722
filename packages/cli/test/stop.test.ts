/**
 * Stopping is prompt: `switchboard start` with no clients exits in under 2 s on SIGINT and on SIGTERM
 * (the drain window is spread over clients, so with none there is nothing to wait for), embedded or on
 * Redis; and `npm start` execs the server, so a signal sent to npm's own pid reaches it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../src/redis-server.js';
import { TestClient, freePort, startRedis, trackChild, type RedisServer } from '@switchboard/testkit';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const BIN = join(ROOT, 'packages', 'cli', 'bin', 'switchboard.js');
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

/** Starts `command args` with free ports and waits for the edge's /readyz. */
async function serve(command: string, args: string[], env: Record<string, string> = {}, detached = false): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  const child = spawn(command, args, {
    cwd: ROOT,
    detached,
    env: { ...process.env, PORT: String(port), SESSION_PORT: String(await freePort()), LOG_LEVEL: 'info', ...env },
  });
  trackChild(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${command} ${args.join(' ')} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, output: () => output };
}

/** Sends `signal`; resolves with the exit code and the milliseconds until the exit (Infinity: none in 5 s). */
async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<{ code: number | null; ms: number }> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const t0 = performance.now();
  child.kill(signal);
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
  if (code === 'hung') return { code: null, ms: Infinity };
  return { code, ms: performance.now() - t0 };
}

describe('switchboard start stops in under 2 s with no clients (default 5 s drain window)', () => {
  for (const backend of ['embedded', 'redis'] as const) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      it(`${backend}, ${signal}`, async () => {
        const s = await serve(process.execPath, [BIN, 'start'], backend === 'redis' ? { REDIS_URL: redis.url } : {});
        if (signal === 'SIGTERM') {
          // A client that came and went leaves nothing to drain either.
          const c = await TestClient.connect(`ws://127.0.0.1:${s.port}/ws`);
          await c.close();
        }
        const r = await stop(s.child, signal);
        expect(r.code).toBe(0);
        expect(r.ms).toBeLessThan(2000);
        expect(s.output()).toMatch(/"msg":"stopped"/);
      });
    }
  }
});

describe('a server whose stdout nobody reads any more', () => {
  it('still stops on SIGTERM (its log lines meet EPIPE and are dropped)', async () => {
    const port = await freePort();
    // A parent that starts the server with its output piped to itself, then vanishes: the server's
    // stdout now leads nowhere, as when a supervisor is killed or a terminal closes.
    const parent = `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, [${JSON.stringify(BIN)}, 'start'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true,
        env: { ...process.env, PORT: '${port}', SESSION_PORT: '0', LOG_LEVEL: 'info' } });
      c.stdout.once('data', () => { process.stdout.write(String(c.pid)); process.exit(0); });`;
    const pid = await new Promise<number>((resolve, reject) => {
      const p = spawn(process.execPath, ['-e', parent]);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.once('exit', () => (out ? resolve(Number(out)) : reject(new Error('no pid'))));
    });
    // The server is an orphan: once it exits it stays a zombie until PID 1 reaps it, which some
    // machines' init does only every few seconds; isAlive counts a zombie as exited.
    const alive = () => isAlive(pid);
    try {
      for (let i = 0; i < 100 && !(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      process.kill(pid, 'SIGTERM');
      while (alive() && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      expect(alive()).toBe(false);
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      if (alive()) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('npm start', () => {
  it('execs the server: SIGINT to npm itself stops it in under 2 s', async () => {
    // Its own process group, so that whatever npm started can be cleaned up if the signal does not reach it.
    const s = await serve('npm', ['start', '--silent'], {}, true);
    const r = await stop(s.child, 'SIGINT');
    if (r.ms === Infinity) process.kill(-s.child.pid!, 'SIGKILL');
    expect(r.ms).toBeLessThan(2000);
    expect(s.output()).toMatch(/"signal":"SIGINT","msg":"shutting down"/);
    expect(s.output()).toMatch(/"msg":"stopped"/);
    await expect(fetch(`http://127.0.0.1:${s.port}/readyz`)).rejects.toThrow();
  }, 120_000);
});
