/**
 * The SDK against real servers, in Node and in headless Chromium: two `switchboard edge` processes and
 * a `switchboard session` over a real redis-server, publishing through `POST /api/publish`. The same
 * scenarios run in both environments: an edge killed (SIGKILL) under a steady publish, an edge
 * drained (SIGTERM → 1012), an edge frozen (SIGSTOP: only the heartbeat notices), token refresh and
 * expiry, history that no longer reaches back, and a channel whose epoch changed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type PublishMessage } from './cluster.js';
import { HAS_CHROMIUM, CHROMIUM_PATH, chromiumDriver, nodeDriver, type Driver } from './drivers.js';
import type { Harness } from './harness.js';

type Snapshot = ReturnType<Harness['snapshot']>;

const HISTORY_SIZE = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster(HISTORY_SIZE);
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Polls a client's recording until `pred` holds. */
async function until(d: Driver, id: string, pred: (s: Snapshot) => boolean, timeoutMs: number, what: string): Promise<Snapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await d.call('snapshot', id);
    if (pred(s)) return s;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify({ state: s.state, updates: s.updates.length, states: s.states, errors: s.errors, recoveries: s.recoveries })}`,
      );
    await sleep(100);
  }
}

function alert(device: number, seq: number): PublishMessage {
  return { channel: 'alerts', attrs: { device_id: device, severity: 'info' }, data: { alert_id: seq, seq, title: `m${seq}` } };
}

function status(device: number, seq: number): PublishMessage {
  return { channel: 'devices', attrs: { device_id: device }, data: { new_status: 'online', seq } };
}

/** Offsets strictly increasing within one epoch: in order, no duplicate. */
function expectOrdered(s: Snapshot): void {
  for (let i = 1; i < s.updates.length; i++) {
    const [a, b] = [s.updates[i - 1]!, s.updates[i]!];
    if (a.epoch === b.epoch) expect(b.offset).toBeGreaterThan(a.offset);
  }
}

const ENVIRONMENTS = [
  { key: 'node', title: 'in Node (ws)', skip: false, base: 1000 },
  {
    key: 'chromium',
    title: HAS_CHROMIUM ? 'in headless Chromium' : `in headless Chromium — SKIPPED: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`,
    skip: !HAS_CHROMIUM,
    base: 2000,
  },
] as const;

for (const env of ENVIRONMENTS) {
  describe.skipIf(env.skip)(`the client SDK ${env.title}`, () => {
    let d: Driver;
    const user = (name: string) => `${env.key}-${name}`;
    const urls = () => [cluster.wsUrl(0), cluster.wsUrl(1)];
    const mint = (sub: string, ttl: string) => cluster.mintToken(sub, ttl);

    beforeAll(async () => {
      d = env.key === 'node' ? nodeDriver(mint) : await chromiumDriver(cluster.pageUrl, mint);
    }, 60_000);
    afterAll(async () => {
      await d?.close();
    });
    afterEach(async () => {
      await d.call('closeAll');
      // Every scenario starts with both edges up, whatever the previous one did to them.
      await Promise.all([cluster.restartEdge(0), cluster.restartEdge(1)]);
      expect(d.uncaught).toEqual([]);
    }, 60_000);

    it('runs where it says', () => {
      expect(d.runtime).toMatch(env.key === 'node' ? /^Node v\d+/ : /HeadlessChrome\//);
    });

    it('its edge is killed (SIGKILL) while 2 msg/s for 30 s go through the other: every message exactly once, in order', async () => {
      const dev = env.base + 1;
      await d.call('create', 'kill', { urls: urls(), user: user('kill') });
      await d.call('subscribe', 'kill', 'alerts', { device_id: dev });
      const ready = await until(d, 'kill', (s) => s.state === 'connected' && s.subscribed.length === 1, 10_000, 'subscribed');
      expect(ready.states.at(-1)?.url).toBe(cluster.wsUrl(0));

      const N = 60;
      const t0 = Date.now();
      for (let i = 0; i < N; i++) {
        if (i === 20) cluster.edges[0]!.child.kill('SIGKILL');
        await cluster.publish(1, [alert(dev, i)]);
        await sleep(Math.max(0, t0 + (i + 1) * 500 - Date.now()));
      }
      await until(d, 'kill', (s) => s.updates.length >= N, 15_000, `${N} updates`);
      await sleep(500);
      const s = await d.call('snapshot', 'kill');
      expect(s.updates.map((u) => u.seq)).toEqual(range(0, N));
      expectOrdered(s);
      const drop = s.states.findIndex((x) => x.state === 'disconnected');
      expect(s.states[drop]).toMatchObject({ code: 1006, url: cluster.wsUrl(0) });
      expect(typeof s.states[drop]!.delayMs).toBe('number');
      expect(s.states.slice(drop).find((x) => x.state === 'connected')).toMatchObject({ url: cluster.wsUrl(1), resumed: true, sessionId: ready.sessionId });
      // Resumed by the session on the other edge: the subscription came back from it, recovered.
      expect(s.subscribed.map((x) => x.restored)).toEqual([false, true]);
      expect(s.recoveries).toHaveLength(1);
      expect(s.recoveries[0]).toMatchObject({ recovered: true, epochChanged: false });
    }, 90_000);

    it('its edge drains (SIGTERM → 1012): it reconnects at once to the other and loses nothing', async () => {
      const dev = env.base + 2;
      await d.call('create', 'drain', { urls: urls(), user: user('drain') });
      await d.call('subscribe', 'drain', 'alerts', { device_id: dev });
      await until(d, 'drain', (s) => s.state === 'connected' && s.subscribed.length === 1, 10_000, 'subscribed');
      const N = 30;
      let stopped: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < N; i++) {
        if (i === 10) stopped = cluster.edges[0]!.stop('SIGTERM');
        await cluster.publish(1, [alert(dev, i)]);
        await sleep(100);
      }
      await until(d, 'drain', (s) => s.updates.length >= N, 10_000, `${N} updates`);
      await stopped;
      await sleep(300);
      const s = await d.call('snapshot', 'drain');
      expect(s.updates.map((u) => u.seq)).toEqual(range(0, N));
      expectOrdered(s);
      const drop = s.states.findIndex((x) => x.state === 'disconnected');
      expect(s.states[drop]).toMatchObject({ code: 1012, delayMs: 0, reason: 'service_restart' });
      expect(s.subscribed.map((x) => x.restored)).toEqual([false, true]);
      expect(s.states.slice(drop).find((x) => x.state === 'connected')).toMatchObject({ url: cluster.wsUrl(1), resumed: true });
    }, 60_000);

    it('its edge freezes (SIGSTOP): the heartbeat finds the dead link and it resumes on the other edge', async () => {
      const dev = env.base + 3;
      await d.call('create', 'frozen', { urls: urls(), user: user('frozen'), idlePingMs: 300, pongTimeoutMs: 700 });
      await d.call('subscribe', 'frozen', 'alerts', { device_id: dev });
      await until(d, 'frozen', (s) => s.state === 'connected' && s.subscribed.length === 1, 10_000, 'subscribed');
      await cluster.publish(1, [alert(dev, 0)]);
      await until(d, 'frozen', (s) => s.updates.length === 1, 5000, 'first update');
      const frozenAt = Date.now();
      cluster.edges[0]!.child.kill('SIGSTOP');
      for (let i = 1; i <= 5; i++) {
        await cluster.publish(1, [alert(dev, i)]);
        await sleep(200);
      }
      const s = await until(d, 'frozen', (x) => x.updates.length >= 6, 10_000, '6 updates');
      expect(s.updates.map((u) => u.seq)).toEqual(range(0, 6));
      const drop = s.states.find((x) => x.state === 'disconnected');
      expect(drop?.reason).toMatch(/^no traffic for \d+ ms$/);
      // Silence is noticed after idlePingMs + pongTimeoutMs (1 s; slack for a loaded machine), not
      // after TCP's minutes.
      expect(drop!.atMs - frozenAt).toBeLessThan(5000);
      expect(s.states.at(-1)).toMatchObject({ state: 'connected', url: cluster.wsUrl(1), resumed: true });
    }, 60_000);

    it('refreshes its token before expiry on the live connection, fetches a new one on expired_token, and gives up on a refused fixed token', async () => {
      const dev = env.base + 4;
      // Expired (plus the edges' 5 s clock tolerance) by the time part 2 uses it.
      const stale = await cluster.mintToken(user('late'), '1s');
      const staleAtMs = Date.now();

      // 1. 6-second tokens: refreshed a quarter of their life (1.25-1.5 s) before each expiry, on the
      // live connection.
      await d.call('create', 'refresh', { urls: [cluster.wsUrl(1)], user: user('refresh'), ttl: '6s' });
      await d.call('subscribe', 'refresh', 'telemetry', { device_id: dev, metrics: ['seq'] });
      const s = await until(d, 'refresh', (x) => x.auths.length >= 3, 20_000, 'two refreshes');
      expect(s.auths.map((a) => a.refreshed)).toEqual([false, ...s.auths.slice(1).map(() => true)]);
      for (let i = 1; i < s.auths.length; i++) {
        expect(s.auths[i]!.atMs).toBeLessThan(s.auths[i - 1]!.expiresAtMs!);
        expect(s.auths[i]!.expiresAtMs!).toBeGreaterThan(s.auths[i - 1]!.expiresAtMs!);
      }
      expect(s.tokenCalls).toBe(s.auths.length);
      expect(s.states.filter((x) => x.state === 'connected')).toHaveLength(1);
      await cluster.publish(0, [{ channel: 'telemetry', attrs: { device_id: dev }, data: { seq: { value: 1 }, other: { value: 2 } } }]);
      await until(d, 'refresh', (x) => x.updates.length === 1 && x.updates[0]!.seq === 1, 5000, 'an update after the refreshes');

      // 2. The token it has is expired when it connects: the server says expired_token, it asks again.
      await sleep(Math.max(0, staleAtMs + 7000 - Date.now()));
      await d.call('create', 'late', { urls: [cluster.wsUrl(1)], user: user('late'), firstTokens: [stale] });
      const late = await until(d, 'late', (x) => x.state === 'connected', 10_000, 'connected with a fresh token');
      expect(late.tokenCalls).toBe(2);
      expect(late.auths).toHaveLength(1);

      // 3. A fixed token the server refuses: no retry loop.
      await d.call('create', 'fixed', { urls: [cluster.wsUrl(1)], user: user('fixed'), staticToken: 'not-a-jwt' });
      const fixed = await until(d, 'fixed', (x) => x.states.some((st) => st.state === 'disconnected'), 10_000, 'refused');
      expect(fixed.states.at(-1)).toMatchObject({ state: 'disconnected', delayMs: null });
      expect(fixed.errors.map((e) => e.code)).toEqual(['invalid_token']);
      await sleep(1500);
      expect((await d.call('snapshot', 'fixed')).states).toHaveLength(fixed.states.length);
    }, 60_000);

    it('says recovered: false when the history no longer reaches back, then carries on live', async () => {
      const dev = env.base + 5;
      await d.call('create', 'hist', { urls: urls(), user: user('hist') });
      await d.call('subscribe', 'hist', 'devices', { device_id: dev });
      await until(d, 'hist', (s) => s.state === 'connected' && s.subscribed.length === 1, 10_000, 'subscribed');
      await cluster.publish(1, [status(dev, 0)]);
      await until(d, 'hist', (s) => s.updates.length === 1, 5000, 'first update');
      await d.call('disconnect', 'hist');
      const missed = range(1, HISTORY_SIZE + 10);
      for (let i = 0; i < missed.length; i += 20) await cluster.publish(1, missed.slice(i, i + 20).map((n) => status(dev, n)));
      await d.call('connect', 'hist');
      const s = await until(d, 'hist', (x) => x.recoveries.length >= 1 && x.state === 'connected', 10_000, 'a recovery event');
      expect(s.recoveries).toHaveLength(1);
      expect(s.recoveries[0]).toMatchObject({ channel: 'devices', recovered: false, replayed: 0, epochChanged: false });
      expect(s.states.at(-1)).toMatchObject({ state: 'connected', resumed: true });
      await cluster.publish(0, [status(dev, 999)]);
      const after = await until(d, 'hist', (x) => x.updates.length === 2, 5000, 'a live update');
      expect(after.updates.map((u) => u.seq)).toEqual([0, 999]);
    }, 60_000);

    it("reports a channel's new epoch, after a reconnect and live, as recovered: false with epochChanged", async () => {
      const dev = env.base + 6;
      await d.call('create', 'epoch', { urls: urls(), user: user('epoch') });
      await d.call('subscribe', 'epoch', 'devices', { device_id: dev });
      await until(d, 'epoch', (s) => s.state === 'connected' && s.subscribed.length === 1, 10_000, 'subscribed');
      await cluster.publish(1, [status(dev, 0)]);
      await until(d, 'epoch', (s) => s.updates.length === 1, 5000, 'first update');

      await d.call('disconnect', 'epoch');
      await cluster.dropChannel('devices');
      await cluster.publish(1, [status(dev, 1)]);
      await d.call('connect', 'epoch');
      const s = await until(d, 'epoch', (x) => x.recoveries.length >= 1 && x.state === 'connected', 10_000, 'a recovery event');
      expect(s.recoveries[0]).toMatchObject({ recovered: false, epochChanged: true });
      expect(s.recoveries[0]!.position!.epoch).not.toBe(s.recoveries[0]!.from!.epoch);

      // Live: the history vanishes again while connected; the next update names a new epoch.
      await cluster.dropChannel('devices');
      await cluster.publish(1, [status(dev, 2)]);
      const live = await until(d, 'epoch', (x) => x.updates.length === 2, 5000, 'the update of the new epoch');
      expect(live.updates.map((u) => u.seq)).toEqual([0, 2]);
      expect(live.recoveries).toHaveLength(2);
      expect(live.recoveries[1]).toMatchObject({ recovered: false, epochChanged: true, position: { offset: 1 } });
      expect(live.updates[1]!.epoch).not.toBe(live.updates[0]!.epoch);
    }, 60_000);
  });
}
