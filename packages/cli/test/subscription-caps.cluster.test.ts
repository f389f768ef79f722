/**
 * Per-user subscription caps across the cluster (issue 11, defect 5), with real processes: one
 * redis-server, one session service and three edges. A user's subscriptions on every edge count against one
 * cap (`SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER`); unsubscribing or closing on one edge makes room on
 * another; the counts of an edge killed with SIGKILL are freed once the session service reaps it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import type { TestClient} from '@switchboard/testkit';
import { startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';
import { BIN, authedClient as connect, clusterEnv, sleep } from './cluster-helpers.js';

const CAP = 3;

let redis: RedisServer;
let session: SwitchboardProcess;
let a: SwitchboardProcess;
let b: SwitchboardProcess;

function env(nodeId: string): Record<string, string> {
  return clusterEnv(redis.url, nodeId, session?.httpUrl, { SWITCHBOARD_HEARTBEAT_SEC: '1', SESSION_NODE_DEAD_SEC: '2', SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER: String(CAP) });
}

/** Only the session service takes SESSION_* options; only edges the subscription cap (they send it). */
function sessionEnv(): Record<string, string> {
  const { SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER: _cap, SWITCHBOARD_HEARTBEAT_SEC: _hb, ...rest } = env('session-1');
  return rest;
}

function edgeEnv(nodeId: string): Record<string, string> {
  const { SESSION_NODE_DEAD_SEC: _dead, ...rest } = env(nodeId);
  return rest;
}

beforeAll(async () => {
  redis = await startRedis();
  session = await startSwitchboard(BIN, 'session', sessionEnv(), 30_000, 'SESSION_PORT');
  [a, b] = await Promise.all([startSwitchboard(BIN, 'edge', edgeEnv('edge-a'), 30_000), startSwitchboard(BIN, 'edge', edgeEnv('edge-b'), 30_000)]);
}, 90_000);

afterAll(async () => {
  for (const p of [a, b, session]) await p?.stop('SIGKILL');
  await redis?.stop();
});

async function token(sub: string): Promise<string> {
  const res = await fetch(`${session.httpUrl}/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
    body: JSON.stringify({ sub }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

let seq = 0;
/** Subscribes; resolves with the answer: `subscribe_response` or the error's code. */
async function subscribe(c: TestClient, channel: string): Promise<{ ok: boolean; code?: unknown; message?: unknown }> {
  const id = `s${++seq}`;
  c.send({ type: 'subscribe', channel, id });
  const m = await c.next((x) => x.id === id && (x.type === 'subscribe_response' || x.type === 'error'), 8000);
  return m.type === 'subscribe_response' ? { ok: true } : { ok: false, code: m.code, message: m.message };
}

async function unsubscribe(c: TestClient, channel: string): Promise<void> {
  c.send({ type: 'unsubscribe', channel });
  await c.nextOfType('unsubscribe_response', 8000);
}

/** Tries a subscribe until it is accepted; resolves with how long it took. */
async function subscribedWithin(c: TestClient, channel: string, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if ((await subscribe(c, channel)).ok) return Date.now() - t0;
    await sleep(200);
  }
  throw new Error(`"${channel}" still refused after ${ms} ms`);
}

describe('per-user subscription cap across the cluster', () => {
  it('a user fills the cap across edge A and edge B; the next on either edge is refused; unsubscribing or closing on A makes room on B', async () => {
    const tok = await token('hoarder');
    const [onA, onB] = [await connect(a, tok), await connect(b, tok)];
    expect(await subscribe(onA, 'alerts')).toEqual({ ok: true });
    expect(await subscribe(onA, 'telemetry')).toEqual({ ok: true });
    expect(await subscribe(onB, 'devices')).toEqual({ ok: true });
    // Full (3 across both edges): the 4th is refused on B and on A, and so is a new connection's.
    const refused = { ok: false, code: 'too_many_subscriptions', message: `at most ${CAP} subscriptions per user across the cluster` };
    expect(await subscribe(onB, 'system')).toEqual(refused);
    expect(await subscribe(onA, 'devices')).toEqual(refused);
    const third = await connect(b, tok);
    expect(await subscribe(third, 'alerts')).toEqual(refused);
    // Another user is not affected.
    const neighbour = await connect(b, await token('neighbour'));
    expect(await subscribe(neighbour, 'alerts')).toEqual({ ok: true });
    // An unsubscribe on A is answered once the room is there: B's next subscribe fits at once.
    await unsubscribe(onA, 'alerts');
    expect(await subscribe(onB, 'alerts')).toEqual({ ok: true });
    expect(await subscribe(onB, 'system')).toEqual(refused);
    // Closing A's connection gives back what it held (its admission release).
    onA.ws.close();
    await onA.closed;
    expect(await subscribedWithin(onB, 'system', 3000)).toBeLessThan(3000);
    expect(await subscribe(third, 'alerts')).toEqual(refused);
    for (const c of [onB, third, neighbour]) c.ws.close();
  }, 60_000);

  it("a SIGKILLed edge's counts are freed once the session service reaps it", async () => {
    const doomed = await startSwitchboard(BIN, 'edge', edgeEnv('edge-doomed'), 30_000);
    try {
      const tok = await token('victim');
      const there = await connect(doomed, tok);
      for (const channel of ['alerts', 'telemetry', 'devices']) expect(await subscribe(there, channel)).toEqual({ ok: true });
      const here = await connect(a, tok);
      expect(await subscribe(here, 'alerts')).toMatchObject({ ok: false, code: 'too_many_subscriptions' });
      await doomed.stop('SIGKILL');
      // Reaped after SESSION_NODE_DEAD_SEC (2 s) of silence, found by a reaper round (every 5 s).
      const tookMs = await subscribedWithin(here, 'alerts', 20_000);
      expect(tookMs).toBeGreaterThan(500);
      expect(await subscribe(here, 'telemetry')).toEqual({ ok: true });
      expect(await subscribe(here, 'devices')).toEqual({ ok: true });
      expect(await subscribe(here, 'system')).toMatchObject({ ok: false, code: 'too_many_subscriptions' });
      here.ws.close();
    } finally {
      await doomed.stop('SIGKILL');
    }
  }, 60_000);
});
