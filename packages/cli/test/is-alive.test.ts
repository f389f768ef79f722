/**
 * isAlive: a process that exited but was not reaped yet (a zombie, as an orphan is until PID 1 reaps it)
 * counts as gone, although signal 0 still reaches it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { trackChild } from '@switchboard/testkit';
import { isAlive } from '../src/redis-server.js';

describe('isAlive', () => {
  it('is true for this process and false for a pid nobody has', () => {
    expect(isAlive(process.pid)).toBe(true);
    expect(isAlive(2 ** 22 + 1)).toBe(false);
  });

  it.skipIf(!existsSync('/proc/self/stat'))('is false for a zombie, which signal 0 still reaches', async () => {
    // The shell starts a short sleep in the background and becomes a long one, which never reaps it:
    // once the short one exits it stays a zombie until the long one is gone.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    trackChild(parent);
    try {
      const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      expect(isAlive(pid)).toBe(true);
      const deadline = Date.now() + 5000;
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(isAlive(pid)).toBe(false);
      // Still there for signal 0: a zombie, not a reaped process.
      expect(() => process.kill(pid, 0)).not.toThrow();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
