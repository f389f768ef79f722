import { spawn, type ChildProcess } from 'node:child_process';
import { trackChild } from './children.js';
import { freePort } from './ports.js';

/** A switchboard process started by {@link startSwitchboard}. */
export interface SwitchboardProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** Everything it printed so far. */
  logs(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `node <bin> <command>` with `env`, its HTTP port (`portEnv`, `PORT` by default) set to a free
 * one unless given, and waits until its `/readyz` answers 200.
 */
export async function startSwitchboard(
  bin: string,
  command: string,
  env: Record<string, string>,
  timeoutMs = 20_000,
  portEnv = 'PORT',
): Promise<SwitchboardProcess> {
  const port = env[portEnv] ? Number(env[portEnv]) : await freePort();
  const child = spawn(process.execPath, [bin, command], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, [portEnv]: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const httpUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`switchboard ${command} exited with ${child.exitCode}:\n${out}`);
    try {
      if ((await fetch(`${httpUrl}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`switchboard ${command} not ready after ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    wsUrl: `ws://127.0.0.1:${port}`,
    httpUrl,
    logs: () => out,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
}

/** Reads one metric's summed value from a process's `/metrics`. */
export async function scrapeMetric(httpUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
