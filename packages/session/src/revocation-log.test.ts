/**
 * Revocations that reach every edge (issue 11, item 1): the service's revocation log as edges read it
 * (`revocationsSince`, in process and over the Rpc handler), and the retried announcement.
 */
import { describe, expect, it } from 'vitest';
import { SwitchboardError, createLogger, createMetricsRegistry, loadConfig } from '@switchboard/core';
import { RevocationAnnouncer } from './announcer.js';
import { hmacIssuer } from './keys.js';
import { SessionMetrics } from './metrics.js';
import { MemorySessionRepo } from './repo-memory.js';
import { RpcSessionClient } from './rpc-client.js';
import { sessionRpcHandler } from './rpc-handler.js';
import { REVOCATIONS_PAGE } from './service.js';
import { createSessionService } from './setup.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function service() {
  const config = loadConfig({});
  const issuer = hmacIssuer(config.jwtSecret!, { issuer: 'switchboard', audience: 'switchboard' });
  return createSessionService(config, new MemorySessionRepo(config), issuer, logger, createMetricsRegistry({ processMetrics: false }));
}

async function eventually(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

describe('SessionService.revocationsSince', () => {
  it('gives the service clock alone without a cursor, then the revocations at or after the cursor, oldest first', async () => {
    const svc = service();
    const before = Date.now();
    const start = await svc.revocationsSince();
    expect(start).toEqual({ nowMs: expect.any(Number) as number, revocations: [], more: false });
    expect(start.nowMs).toBeGreaterThanOrEqual(before);
    await svc.createUser({ name: 'kim', password: PASSWORD });
    await svc.revokeSession('s-1');
    await svc.deleteUser('kim');
    const page = await svc.revocationsSince(start.nowMs);
    expect(page.revocations.map((r) => r.key)).toEqual(['session:s-1', 'user:default/kim']);
    expect(page.more).toBe(false);
    for (const r of page.revocations) expect(r.atMs).toBeGreaterThanOrEqual(start.nowMs);
    expect((await svc.revocationsSince(page.nowMs + 1)).revocations).toEqual([]);
  });

  it(`answers at most ${REVOCATIONS_PAGE} at a time and says that more follow`, async () => {
    const svc = service();
    const { nowMs } = await svc.revocationsSince();
    for (let i = 0; i <= REVOCATIONS_PAGE; i++) await svc.revokeSession(`s-${i}`);
    const first = await svc.revocationsSince(nowMs);
    expect(first.revocations).toHaveLength(REVOCATIONS_PAGE);
    expect(first.more).toBe(true);
    const last = first.revocations[first.revocations.length - 1]!;
    const rest = await svc.revocationsSince(last.atMs);
    expect(rest.more).toBe(false);
    const seen = new Set([...first.revocations, ...rest.revocations].map((r) => r.key));
    expect(seen.size).toBe(REVOCATIONS_PAGE + 1);
  });

  it('over the Rpc seam: the client asks, the handler validates the cursor', async () => {
    const svc = service();
    const handler = sessionRpcHandler(svc, new SessionMetrics(createMetricsRegistry({ processMetrics: false })));
    const client = new RpcSessionClient({ call: <T>(method: string, params: unknown) => handler(method, params) as Promise<T> }, 1000);
    const { nowMs } = await client.revocationsSince();
    await svc.revokeSession('s-rpc');
    expect((await client.revocationsSince(nowMs)).revocations.map((r) => r.key)).toEqual(['session:s-rpc']);
    for (const bad of [{ sinceMs: -1 }, { sinceMs: 1.5 }, { sinceMs: '0' }]) {
      const err: unknown = await handler('revocationsSince', bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwitchboardError);
      expect((err as SwitchboardError).code).toBe('invalid_message');
    }
  });
});

describe('announcing revocations to the edges', () => {
  it('a failed announcement is retried until it goes through, in order, and the queue empties', async () => {
    const sent: string[][] = [];
    let failures = 2;
    const a = new RevocationAnnouncer(
      (keys) => {
        if (failures-- > 0) return Promise.reject(new Error('bus down'));
        sent.push([...keys]);
        return Promise.resolve();
      },
      logger,
      { firstDelayMs: 10, maxDelayMs: 40, giveUpAfterMs: 5000, maxQueued: 100 },
    );
    await a.announce(['session:a']);
    await a.announce(['session:b']);
    expect(a.pending).toBe(2);
    await eventually(() => a.pending === 0, 2000);
    expect(sent.flat()).toEqual(['session:a', 'session:b']);
    await a.announce(['session:c']);
    expect(sent.at(-1)).toEqual(['session:c']);
    a.stop();
  });

  it('bounded: at most maxQueued keys wait, and keys older than giveUpAfterMs are given up', async () => {
    let attempts = 0;
    const a = new RevocationAnnouncer(
      () => {
        attempts++;
        return Promise.reject(new Error('bus down'));
      },
      logger,
      { firstDelayMs: 10, maxDelayMs: 20, giveUpAfterMs: 200, maxQueued: 5 },
    );
    for (let i = 0; i < 8; i++) await a.announce([`session:${i}`]);
    expect(a.pending).toBe(5);
    await eventually(() => a.pending === 0, 2000);
    const after = attempts;
    await sleep(100);
    // Nothing waits, so nothing is tried any more.
    expect(attempts).toBe(after);
    a.stop();
  });

  it('the service retries an announcement its listener failed', async () => {
    const svc = service();
    const heard: string[] = [];
    let fail = true;
    svc.onRevoke((keys) => {
      if (fail) {
        fail = false;
        return Promise.reject(new Error('bus down'));
      }
      heard.push(...keys);
      return Promise.resolve();
    });
    await svc.revokeSession('s-retried');
    expect(heard).toEqual([]);
    await eventually(() => heard.length > 0, 3000);
    expect(heard).toEqual(['session:s-retried']);
    svc.stopAnnouncing();
  });
});
