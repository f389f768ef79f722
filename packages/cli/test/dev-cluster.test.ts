/**
 * `switchboard dev-cluster` as a user runs it (real processes, a real redis-server from PATH): a process
 * that dies is named and comes back while the others keep serving; `--no-restart` leaves it down; Ctrl-C
 * stops everything quietly; users survive a restart through the data directory (AOF), `--fresh` forgets
 * them; a dev cluster killed outright leaves no edge behind and the next run takes its data directory over.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import { TestClient, freePort, trackChild } from '@switchboard/testkit';
import { isAlive } from '../src/redis-server.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const exec = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'sb-dev-cluster-test-'));
/** Every dev cluster a test started: one a failed test leaves running is stopped before the next. */
const running = new Set<DevCluster>();
/** Generous: each test starts real processes, and a loaded machine starts them slowly. */
const TEST_TIMEOUT_MS = 180_000;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

/** Three ports: two consecutive for the edges, one for the session service. */
async function ports(): Promise<{ base: number; session: number }> {
  for (;;) {
    const base = await freePort();
    if (base < 65000 && (await portIsFree(base + 1))) return { base, session: await freePort() };
  }
}

/** A running `switchboard dev-cluster` and its output. */
class DevCluster {
  output = '';
  readonly exited: Promise<number | null>;
  private constructor(
    readonly child: ChildProcess,
    readonly base: number,
    readonly sessionPort: number,
  ) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  static async start(...flags: string[]): Promise<DevCluster> {
    const dc = DevCluster.spawn(await ports(), flags);
    await dc.waitFor(/dev cluster up/, 120_000);
    return dc;
  }

  /** Spawns it without waiting for anything. */
  static spawn(p: { base: number; session: number }, flags: string[]): DevCluster {
    const child = spawn(process.execPath, [BIN, 'dev-cluster', '--base-port', String(p.base), '--session-port', String(p.session), '--data-dir', dataDir, ...flags], {
      env: { ...process.env, LOG_LEVEL: 'info', SWITCHBOARD_DRAIN_MS: '200', SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0' },
    });
    trackChild(child);
    const dc = new DevCluster(child, p.base, p.session);
    running.add(dc);
    void dc.exited.then(() => running.delete(dc));
    return dc;
  }

  get sessionUrl(): string {
    return `http://127.0.0.1:${this.sessionPort}`;
  }

  edgeUrl(i: number): string {
    return `http://127.0.0.1:${this.base + i - 1}`;
  }

  /** Waits until the output matches `re` (checked from `from` on); returns the match. */
  async waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.slice(from).match(re);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`dev-cluster exited (${this.child.exitCode}) before ${re}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no ${re} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The pid of a member as its latest "ready"/"is back" line says. */
  pidOf(name: string): number {
    const all = [...this.output.matchAll(new RegExp(`"msg":"${name} (?:ready|is back) \\(pid (\\d+)\\)`, 'g'))];
    if (all.length === 0) throw new Error(`no pid of ${name} in:\n${this.output}`);
    return Number(all.at(-1)![1]);
  }

  /** Ctrl-C; resolves with the exit code and how long the stop took. */
  async interrupt(): Promise<{ code: number | null; ms: number }> {
    const t0 = Date.now();
    this.child.kill('SIGINT');
    const code = await this.exited;
    return { code, ms: Date.now() - t0 };
  }
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })).ok;
  } catch {
    return false;
  }
}

async function cli(...args: string[]): Promise<string> {
  return (await exec(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' } })).stdout;
}

async function publish(url: string, deviceId: number, value: number): Promise<void> {
  const res = await fetch(`${url}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer dev-api-key' },
    body: JSON.stringify({ channel: 'telemetry', attrs: { device_id: deviceId }, data: { t: { value } } }),
  });
  expect(res.status).toBe(200);
}


async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

afterEach(async () => {
  for (const dc of running) {
    dc.child.kill('SIGINT');
    const stopped = await Promise.race([dc.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))]);
    if (!stopped) dc.child.kill('SIGKILL');
  }
});

afterAll(() => {
  // A redis-server left by a failed test would hold the data directory: stop it, then remove it.
  const pidFile = join(dataDir, 'redis.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('switchboard dev-cluster behaves like a cluster', () => {
  it('a killed edge is named and restarted after a backoff; the other edge and its clients keep going', async () => {
    const dc = await DevCluster.start('--fresh');
    try {
      expect(dc.output).toMatch(new RegExp(`with its data in ${dataDir} \\(empty; --fresh starts empty\\)`));
      expect(dc.output).toMatch(/AOF, appendfsync everysec: .* may lose about the last second of acknowledged writes/);
      const token = (await cli('token', '--sub', 'alice', '--url', dc.sessionUrl)).trim();
      const c = await TestClient.connect(`ws://127.0.0.1:${dc.base}/ws`);
      c.send({ type: 'auth', token });
      expect(await c.nextOfType('auth_response', 10_000)).toMatchObject({ success: true });
      c.send({ type: 'subscribe', channel: 'telemetry', device_id: 1 });
      await c.nextOfType('subscribe_response', 10_000);

      const victim = dc.pidOf('edge-2');
      const mark = dc.output.length;
      process.kill(victim, 'SIGKILL');
      await dc.waitFor(new RegExp(`edge-2 \\(pid ${victim}\\) was killed by SIGKILL; restarting it in 1 s, the others keep serving`), 15_000, mark);
      // The survivor serves on: its client stays connected and receives what is published through it.
      await publish(dc.edgeUrl(1), 1, 1);
      expect(await c.nextOfType('telemetry_update', 10_000)).toMatchObject({ device_id: 1, telemetry: { t: { value: 1 } } });

      await dc.waitFor(/edge-2 is back \(pid \d+\)/, 60_000, mark);
      expect(dc.pidOf('edge-2')).not.toBe(victim);
      expect(await ready(dc.edgeUrl(2))).toBe(true);
      // Back in the cluster: a publish through it reaches the client on edge-1.
      await publish(dc.edgeUrl(2), 1, 2);
      expect(await c.nextOfType('telemetry_update', 10_000)).toMatchObject({ telemetry: { t: { value: 2 } } });
      expect(await Promise.race([c.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 100))])).toBe('open');
      await c.close();
      expect(dc.output).not.toMatch(/stopping the dev cluster/);
    } finally {
      const stop = await dc.interrupt();
      expect(stop.code).toBe(0);
    }
  }, TEST_TIMEOUT_MS);

  it('Ctrl-C stops every process quietly; a user survives the restart; --fresh forgets it', async () => {
    const first = await DevCluster.start('--fresh');
    await cli('user', 'add', 'dora', '--password', 'correct horse battery', '--url', first.sessionUrl);
    const pids = ['edge-1', 'edge-2', 'session', 'redis'].map((n) => first.pidOf(n));
    const stop = await first.interrupt();
    expect(stop.code).toBe(0);
    expect(stop.ms).toBeLessThan(20_000);
    // Each process got one signal: no "second signal" lines, no exit in a hurry.
    expect(first.output).not.toMatch(/second signal/);
    expect(first.output).toMatch(/dev cluster stopped/);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(await ready(first.edgeUrl(1))).toBe(false);

    const second = await DevCluster.start();
    try {
      expect(second.output).toContain('(kept from the last run; --fresh starts empty)');
      const res = await fetch(`${second.sessionUrl}/v1/users/dora`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ name: 'dora' });
    } finally {
      expect((await second.interrupt()).code).toBe(0);
    }

    const fresh = await DevCluster.start('--fresh');
    try {
      const res = await fetch(`${fresh.sessionUrl}/v1/users/dora`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
      expect(res.status).toBe(404);
    } finally {
      expect((await fresh.interrupt()).code).toBe(0);
    }
  }, TEST_TIMEOUT_MS);

  it('a Ctrl-C during start-up stops what was started and leaves nothing running', async () => {
    const dc = DevCluster.spawn(await ports(), []);
    await dc.waitFor(/"msg":"session ready \(pid \d+\)/, 120_000);
    const started = ['redis', 'session'].map((n) => dc.pidOf(n));
    const stop = await dc.interrupt();
    expect(stop.code).toBe(0);
    expect(dc.output).not.toMatch(/dev cluster up/);
    expect(dc.output).toMatch(/dev cluster stopped/);
    for (const pid of started) expect(isAlive(pid)).toBe(false);
    // An edge that was starting is stopped too (it may or may not have been ready).
    const edges = [...dc.output.matchAll(/"msg":"edge-\d ready \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    for (const pid of edges) expect(isAlive(pid)).toBe(false);
    expect(await ready(dc.edgeUrl(1))).toBe(false);
  }, TEST_TIMEOUT_MS);

  it('--no-restart leaves a dead edge down while the other serves', async () => {
    const dc = await DevCluster.start('--no-restart');
    try {
      const victim = dc.pidOf('edge-2');
      const mark = dc.output.length;
      process.kill(victim, 'SIGKILL');
      await dc.waitFor(new RegExp(`edge-2 \\(pid ${victim}\\) was killed by SIGKILL; left down \\(--no-restart\\), the others keep serving`), 15_000, mark);
      await new Promise((r) => setTimeout(r, 2500));
      expect(await ready(dc.edgeUrl(2))).toBe(false);
      expect(await ready(dc.edgeUrl(1))).toBe(true);
      expect(dc.output.slice(mark)).not.toMatch(/edge-2 is back/);
    } finally {
      expect((await dc.interrupt()).code).toBe(0);
    }
  }, TEST_TIMEOUT_MS);

  it('killed outright, it leaves no edge or session service running, and the next run takes the data directory over', async () => {
    const dc = await DevCluster.start();
    const nodes = ['edge-1', 'edge-2', 'session'].map((n) => dc.pidOf(n));
    const redisPid = dc.pidOf('redis');
    dc.child.kill('SIGKILL');
    await dc.exited;
    // Their stdin (a pipe from the dev cluster) ended: each stops as if sent SIGTERM.
    await until(() => nodes.every((pid) => !isAlive(pid)), 10_000, 'every node stopped');
    expect(isAlive(redisPid)).toBe(true);
    const next = await DevCluster.start();
    try {
      expect(next.output).toContain(`stopping redis-server pid ${redisPid}, left running on ${dataDir} by a dev cluster that was killed`);
      expect(isAlive(redisPid)).toBe(false);
      expect(await ready(next.edgeUrl(1))).toBe(true);
    } finally {
      expect((await next.interrupt()).code).toBe(0);
    }
  }, TEST_TIMEOUT_MS);
});
