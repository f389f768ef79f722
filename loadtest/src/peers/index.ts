import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, trackChild } from '@switchboard/testkit';

/** A running peer server. */
export interface Peer {
  readonly port: number;
  readonly httpUrl: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a peer server script (`bare-uws` or `socketio`) on a free port and waits for `/readyz`. */
export async function startPeer(kind: 'bare-uws' | 'socketio', args: string[] = []): Promise<Peer> {
  const port = await freePort();
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${kind}.js`, import.meta.url)), String(port), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  trackChild(child);
  const httpUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${httpUrl}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${kind} not ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    httpUrl,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
