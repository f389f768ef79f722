/**
 * The object-store scenario: what a versioned write with its change event costs next to a plain
 * publish, on one redis-server.
 *
 * 1. Throughput through one Redis, no edge: `RedisObjectStore.merge` (compare `v`, write, bump, append
 *    the change event to history and feed, one Lua script) against `RedisStreamsBus.publish` (history and
 *    feed, one Lua script), the same lanes in flight, the same payload, the same number of channels.
 * 2. Latency across edges, real processes (two edges, a session service, Redis): a Fleet Freedom client
 *    on edge A sends `mergeAsset` at a fixed rate; a client of the same company on edge B subscribed to
 *    `assetGeneral` gets `assetGeneralMerged`. Measured from the send of the merge to the receipt of its
 *    frame, next to a plain publish (`POST /api/publish` on edge A → a valtronics `alert` on edge B) at
 *    the same rate.
 */
import { RedisStreamsBus } from '@switchboard/bus';
import { DEV_ADMIN_TOKEN, createLogger } from '@switchboard/core';
import { FF_TYPES } from '@switchboard/protocol';
import { RedisObjectStore } from '@switchboard/store';
import { TestClient, parseFfFrame, startRedis, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { percentile } from './generator.js';
import { wallMs } from './protocol.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV } from './switchboard.js';

/** Latency of one path, publish (or merge) → client. */
export interface PathLatency {
  readonly sent: number;
  readonly received: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Results of the store scenario. */
export interface StoreResult {
  readonly seconds: number;
  readonly inFlight: number;
  readonly channels: number;
  readonly payloadBytes: number;
  /** `merge` with `expectV`, each lane on its own object. */
  readonly storeMergesPerSec: number;
  /** `publish`, same lanes and channels. */
  readonly busPublishPerSec: number;
  /** Merges (and publishes) per second in the latency run. */
  readonly rate: number;
  readonly latencySeconds: number;
  readonly merge: PathLatency;
  readonly publish: PathLatency;
}

const TYPES = { asset: FF_TYPES.asset };
const shared = (url: string, nodeId: string) => ({
  target: { url, cluster: false },
  shards: 64,
  feedMaxLen: 10_000,
  historySize: 1000,
  historyTtlSec: 600,
  logger: createLogger({ name: 'bench', level: 'silent' }),
  nodeId,
});

async function lanes(n: number, seconds: number, lane: (k: number, end: number) => Promise<number>): Promise<number> {
  const t0 = wallMs();
  const end = t0 + seconds * 1000;
  const done = await Promise.all(Array.from({ length: n }, (_, k) => lane(k, end)));
  return done.reduce((a, b) => a + b, 0) / ((wallMs() - t0) / 1000);
}

/** Store merges/s and bus publishes/s through one Redis, side by side. */
async function throughput(url: string, o: { seconds: number; inFlight: number; channels: number; payloadBytes: number }): Promise<{ merges: number; publishes: number }> {
  const notes = 'x'.repeat(o.payloadBytes);
  const store = await RedisObjectStore.connect({ ...shared(url, 'bench-store'), types: TYPES, channel: (t, type) => `fleetfreedom:${t}:${type}` });
  let merges: number;
  try {
    const objects = await Promise.all(
      Array.from({ length: o.inFlight }, async (_, k) => {
        const r = await store.create(`t${k % o.channels}`, 'asset', { name: `lane ${k}` });
        if (!r.ok) throw new Error(`create: ${r.code}`);
        return r.object;
      }),
    );
    merges = await lanes(o.inFlight, o.seconds, async (k, end) => {
      const tenant = `t${k % o.channels}`;
      const id = objects[k]!.id;
      let v = objects[k]!.v;
      let n = 0;
      while (wallMs() < end) {
        const r = await store.merge(tenant, 'asset', id, { notes }, { expectV: v });
        if (!r.ok) throw new Error(`merge: ${r.code}`);
        v = r.object.v;
        n++;
      }
      return n;
    });
  } finally {
    await store.close();
  }
  const bus = await RedisStreamsBus.connect({ ...shared(url, 'bench-bus'), blockMs: 2000, readCount: 1000 });
  let publishes: number;
  try {
    const data = JSON.stringify({ id: 1, v: [1, 1], notes });
    publishes = await lanes(o.inFlight, o.seconds, async (k, end) => {
      const channel = `fleetfreedom:p${k % o.channels}:asset`;
      let n = 0;
      while (wallMs() < end) {
        await bus.publish({ channel, attrs: { op: 'merge', id: 1, 'part.general': true }, data });
        n++;
      }
      return n;
    });
  } finally {
    await bus.close();
  }
  return { merges, publishes };
}

function summarise(sent: number, lat: number[]): PathLatency {
  lat.sort((a, b) => a - b);
  return { sent, received: lat.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat.length ? lat[lat.length - 1]! : NaN };
}

async function ffLogin(edge: SwitchboardProcess, user: string, password: string): Promise<TestClient> {
  const c = await TestClient.connect(`${edge.wsUrl}/fleetfreedom`);
  await c.nextFrame((f) => f.text.startsWith('connectionResponse '), 5000);
  c.send(`login ${JSON.stringify({ reqId: 1, username: user, password })}`);
  const f = await c.nextFrame((fr) => fr.text.startsWith('loginResponse '), 10_000);
  if (parseFfFrame(f.text)?.body.errorCode !== 0) throw new Error(`login: ${f.text}`);
  return c;
}

/** Paces `fire` at `rate` per second for `seconds` (every 10 ms, the calls due by then). */
async function paced(rate: number, seconds: number, fire: (i: number) => void): Promise<number> {
  const t0 = wallMs();
  let i = 0;
  while (wallMs() - t0 < seconds * 1000) {
    const due = Math.floor(((wallMs() - t0) / 1000) * rate);
    while (i < due) fire(i++);
    await new Promise((r) => setTimeout(r, 10));
  }
  return i;
}

/** Merge → `Merged` on another edge, next to publish → update on another edge, at one rate. */
async function latency(bin: string, url: string, o: { rate: number; seconds: number; writers: number; payloadBytes: number }): Promise<{ merge: PathLatency; publish: PathLatency }> {
  const session = await startSwitchboard(bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: url, NODE_ID: 'bench-session' }, 20_000, 'SESSION_PORT');
  const env = {
    ...LOAD_EDGE_ENV,
    REDIS_URL: url,
    SWITCHBOARD_SESSION_URL: session.httpUrl,
    FLEETFREEDOM_MESSAGES_PER_SEC: '100000',
    FLEETFREEDOM_MESSAGES_BURST: '100000',
  };
  const [a, b] = await Promise.all([startSwitchboard(bin, 'edge', { ...env, NODE_ID: 'bench-a' }), startSwitchboard(bin, 'edge', { ...env, NODE_ID: 'bench-b' })]);
  const clients: TestClient[] = [];
  try {
    const admin = (path: string, body: unknown) =>
      fetch(`${session.httpUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    await admin('/v1/users', { name: 'bench-ff', password: 'bench-ff-pass', tenant: '42' });
    const notes = 'x'.repeat(o.payloadBytes);

    // Merge → Merged.
    const watcher = await ffLogin(b, 'bench-ff', 'bench-ff-pass');
    clients.push(watcher);
    watcher.send(`subscribe ${JSON.stringify({ reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral'] })}`);
    await watcher.nextFrame((f) => f.text.startsWith('subscribeResponse '), 10_000);
    const writers: { c: TestClient; id: number; next: number }[] = [];
    for (let w = 0; w < o.writers; w++) {
      const c = await ffLogin(a, 'bench-ff', 'bench-ff-pass');
      clients.push(c);
      c.send(`mergeAsset ${JSON.stringify({ reqId: 'c', asset: { name: `writer ${w}` } })}`);
      const created = parseFfFrame((await c.nextFrame((f) => f.text.startsWith('mergeAssetResponse '), 10_000)).text)!.body;
      writers.push({ c, id: (created.asset as { id: number }).id, next: 1 });
    }
    await new Promise((r) => setTimeout(r, 300));
    watcher.frames.splice(0);
    const sentAt = new Map<string, number>();
    const mergeLat: number[] = [];
    watcher.ws.on('message', (data: Buffer) => {
      const now = wallMs();
      const text = data.toString();
      if (!text.startsWith('assetGeneralMerged ')) return;
      const body = JSON.parse(text.slice('assetGeneralMerged '.length)) as { id: number; v: number[] };
      const key = `${body.id}:${body.v[0]! - 1}`;
      const t = sentAt.get(key);
      if (t !== undefined) {
        mergeLat.push(now - t);
        sentAt.delete(key);
      }
    });
    // Writes of one writer are pipelined: requests are handled in order, so each carries the v the one
    // before it leaves (general part only: [n+1, 1]).
    const merged = await paced(o.rate, o.seconds, (i) => {
      const w = writers[i % writers.length]!;
      const v = [w.next, 1];
      sentAt.set(`${w.id}:${w.next}`, wallMs());
      w.c.send(`mergeAsset ${JSON.stringify({ reqId: i, asset: { id: w.id, v, notes } })}`);
      w.next++;
      if (i % 500 === 0) for (const c of clients) c.frames.splice(0);
    });
    await new Promise((r) => setTimeout(r, 1000));

    // Publish → update, the same rate, the same edges.
    const token = (await admin('/v1/tokens', { sub: 'bench-valtronics' })).token as string;
    const sub = await TestClient.connect(`${b.wsUrl}/ws`);
    clients.push(sub);
    sub.send({ type: 'auth', token });
    await sub.nextOfType('auth_response', 10_000);
    sub.send({ type: 'subscribe', channel: 'alerts' });
    await sub.nextOfType('subscribe_response', 10_000);
    const pubLat: number[] = [];
    sub.ws.on('message', (data: Buffer) => {
      const now = wallMs();
      const m = JSON.parse(data.toString()) as { type?: string; t?: number };
      if (m.type === 'alert' && typeof m.t === 'number') pubLat.push(now - m.t);
    });
    const inflight: Promise<unknown>[] = [];
    const published = await paced(o.rate, o.seconds, (i) => {
      const body = JSON.stringify({ channel: 'alerts', data: { alert_id: i, t: wallMs(), notes } });
      inflight.push(
        fetch(`${a.httpUrl}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer dev-api-key' }, body }).then((r) => r.arrayBuffer()),
      );
      if (i % 500 === 0) sub.frames.splice(0);
    });
    await Promise.all(inflight);
    await new Promise((r) => setTimeout(r, 1000));
    return { merge: summarise(merged, mergeLat), publish: summarise(published, pubLat) };
  } finally {
    for (const c of clients) c.ws.terminate();
    await Promise.all([a.stop(), b.stop()]);
    await session.stop();
  }
}

/** Runs the store scenario with the switchboard binary at `bin`. */
export async function storeScenario(o: {
  bin: string;
  seconds: number;
  inFlight: number;
  channels: number;
  payloadBytes: number;
  rate: number;
  latencySeconds: number;
  writers: number;
}): Promise<StoreResult> {
  const redis = await startRedis();
  try {
    const t = await throughput(redis.url, o);
    await redis.command('FLUSHALL');
    const l = await latency(o.bin, redis.url, { rate: o.rate, seconds: o.latencySeconds, writers: o.writers, payloadBytes: o.payloadBytes });
    return {
      seconds: o.seconds,
      inFlight: o.inFlight,
      channels: o.channels,
      payloadBytes: o.payloadBytes,
      storeMergesPerSec: t.merges,
      busPublishPerSec: t.publishes,
      rate: o.rate,
      latencySeconds: o.latencySeconds,
      merge: l.merge,
      publish: l.publish,
    };
  } finally {
    await redis.stop();
  }
}
