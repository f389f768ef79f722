import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackChild } from './children.js';

/** A running {@link startWsSink} process. */
export interface WsSink {
  readonly child: ChildProcess;
  /** Bytes received so far and connections open. */
  stats(): Promise<{ bytes: number; open: number }>;
  close(): Promise<void>;
}

/** Forks the ws-sink process with `count` connections to `ws://127.0.0.1:<port><path>`. */
export function startWsSink(port: number, path: string, count: number): Promise<WsSink> {
  const child = fork(fileURLToPath(new URL('./ws-sink.js', import.meta.url)), [String(port), path, String(count)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  trackChild(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`ws-sink exited with ${code}`)));
    child.once('message', () => {
      resolve({
        child,
        stats: () =>
          new Promise((res) => {
            child.once('message', (m: { bytes: number; open: number }) => res({ bytes: m.bytes, open: m.open }));
            child.send({ type: 'stats' });
          }),
        close: () =>
          new Promise((res) => {
            child.removeAllListeners('exit');
            child.once('exit', () => res());
            child.send({ type: 'exit' });
          }),
      });
    });
  });
}
