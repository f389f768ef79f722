/**
 * The delivery promise under Redis failover and edge restarts, as real processes (docs/reliability.md).
 * Every publish ack and every delivery is recorded as (epoch, offset, id); faults are injected; lost,
 * doubled and wrong messages are counted per subscriber.
 *
 * - A 3-master + 3-replica Redis Cluster whose replica is held behind (SIGSTOP) before its master is
 *   killed: the promoted replica lacks acknowledged writes and the channel's offsets go back. With acks
 *   by the master, every subscriber either has every acknowledged message or was told explicitly (4010,
 *   `recovered: false`, a new epoch) — never a silent loss, never an offset naming two messages. With
 *   acknowledged-means-replicated publishing, no acknowledged message is lost at all.
 * - A rolling restart of three edges under load, clients reconnecting with `recover`: 0 lost, 0 doubled.
 * - One edge partitioned from Redis for 10 s (a TCP proxy that blackholes the link): its subscribers get
 *   the gap in order after it heals, 0 lost, 0 doubled; its `/readyz` answers 503 meanwhile.
 */
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { keys, shardOf, slotOfKey } from '@switchboard/bus';
import { DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import {
  startRedis,
  startRedisCluster,
  startSwitchboard,
  startTcpProxy,
  type RedisCluster,
  type RedisServer,
  type SwitchboardProcess,
  type TcpProxy,
} from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const SHARDS = 16;
const CHANNEL = 'valtronics:default:alerts';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const issuer = hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' });

interface Delivery {
  readonly epoch: string;
  readonly offset: number;
  readonly id: number;
}

/**
 * A raw valtronics subscriber of `alerts` that reconnects (to the next edge) whenever it is closed and
 * resubscribes with `recover` from the last update it got. It records every delivery exactly as the
 * server sent it (no dedupe), and every explicit "you lost something" (4010, `recovered: false`).
 */
class Subscriber {
  readonly got: Delivery[] = [];
  /** Explicit notices: closes with 4010 and subscribe answers with `recovered: false`. */
  readonly told: string[] = [];
  readonly closes: number[] = [];
  /** Refusals while the backend was unavailable (the client retried). */
  readonly errors: string[] = [];
  /** True once it receives messages past `than` (in a later epoch, or further in its epoch). */
  following(than: Delivery): boolean {
    const d = this.got[this.got.length - 1];
    return d !== undefined && (d.epoch !== than.epoch || d.offset > than.offset + 50);
  }

  /** When it was closed with 1012 (drain), and when its next subscription answered (resumed). */
  readonly drainedAt: number[] = [];
  readonly resumedAt: number[] = [];

  /** Where it continued after its last `recovered: false`. */
  rejoined: { epoch: string; offset: number } | null = null;
  private position: { epoch: string; offset: number } | null = null;
  private ws: WebSocket | null = null;
  private stopped = false;
  private turn = 0;

  constructor(
    private readonly urls: () => string[],
    private readonly name: string,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }

  private async connect(): Promise<void> {
    const list = this.urls();
    const url = list[this.turn++ % list.length]!;
    // The token first: events of a socket that fails fast must not fire before the listeners exist.
    const token = await issuer.issue({ sub: this.name, ttlSec: 3600 });
    const ws = new WebSocket(`${url}/ws`);
    this.ws = ws;
    await new Promise<void>((resolve) => {
      ws.on('open', () => {
        ws.send(JSON.stringify({ type: 'auth', token }));
        ws.send(
          JSON.stringify({
            type: 'subscribe',
            channel: 'alerts',
            ...(this.position ? { recover: this.position } : {}),
          }),
        );
        resolve();
      });
      ws.on('error', () => resolve());
      ws.on('message', (raw) => {
        const m = JSON.parse((raw as Buffer).toString()) as Record<string, unknown>;
        if (m.type === 'alert') {
          const d = { epoch: m.epoch as string, offset: m.offset as number, id: m.alert_id as number };
          this.got.push(d);
          this.position = { epoch: d.epoch, offset: d.offset };
        } else if (
          (m.type === 'auth_response' && m.success !== true) ||
          (m.type === 'error' && m.request === 'subscribe')
        ) {
          // The backend was unavailable (a failover): start over, as a real client retries.
          this.errors.push(String(m.error ?? m.code));
          ws.close();
        } else if (m.type === 'subscribe_response') {
          if (this.drainedAt.length > this.resumedAt.length) this.resumedAt.push(Date.now());
          if (m.recovered === false) {
            this.told.push(`recovered:false at ${JSON.stringify(this.position)}`);
            this.rejoined = { epoch: m.epoch as string, offset: m.offset as number };
          }
          if (typeof m.epoch === 'string' && (this.position === null || m.recovered === false))
            this.position = { epoch: m.epoch, offset: m.offset as number };
        }
      });
      ws.on('close', (code) => {
        this.closes.push(code);
        if (code === 1012) this.drainedAt.push(Date.now());
        if (code === 4010) this.told.push('4010');
        if (this.stopped) return;
        setTimeout(() => void this.connect(), 100);
      });
    });
  }
}

type Ack = Delivery;

/** Publishes alert_id 1, 2, … one request at a time through rotating edges, recording acks and refusals. */
class Publisher {
  readonly acks: Ack[] = [];
  readonly refused: { id: number; status: number; error: string }[] = [];
  private stopped = false;
  private done: Promise<void> | null = null;
  private next = 1;

  constructor(
    private readonly urls: () => string[],
    private readonly pauseMs: number,
    private readonly filler = 'x'.repeat(600),
  ) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    let turn = 0;
    while (!this.stopped) {
      const id = this.next++;
      const list = this.urls();
      const url = list[turn++ % list.length]!;
      try {
        const res = await fetch(`${url}/api/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer dev-api-key' },
          body: JSON.stringify({ channel: 'alerts', data: { alert_id: id, title: this.filler } }),
          signal: AbortSignal.timeout(3000),
        });
        const body = (await res.json()) as Record<string, unknown>;
        if (res.ok) this.acks.push({ id, epoch: body.epoch as string, offset: body.offset as number });
        else this.refused.push({ id, status: res.status, error: String(body.error) });
      } catch (err) {
        this.refused.push({ id, status: 0, error: (err as Error).name });
      }
      if (this.pauseMs > 0) await sleep(this.pauseMs);
    }
  }
}

/** Deliveries at one (epoch, offset) that name different messages: an offset that named two. */
function conflicts(got: readonly Delivery[]): string[] {
  const byPos = new Map<string, number>();
  const out: string[] = [];
  for (const d of got) {
    const k = `${d.epoch}/${d.offset}`;
    const seen = byPos.get(k);
    if (seen !== undefined && seen !== d.id) out.push(`${k}: ${seen} and ${d.id}`);
    byPos.set(k, d.id);
  }
  return out;
}

function duplicates(got: readonly Delivery[]): number {
  const seen = new Set<number>();
  let dup = 0;
  for (const d of got) {
    if (seen.has(d.id)) dup++;
    seen.add(d.id);
  }
  return dup;
}

function edgeEnv(
  redisUrl: string,
  cluster: boolean,
  nodeId: string,
  sessionUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    REDIS_CLUSTER: cluster ? '1' : '0',
    NODE_ID: nodeId,
    SWITCHBOARD_SESSION_URL: sessionUrl,
    SWITCHBOARD_SHARDS: String(SHARDS),
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_HISTORY_SIZE: '100000',
    SWITCHBOARD_DRAIN_MS: '1000',
    ...extra,
  };
}

/** Writes 48 MB to `master` (keys in the channel's slot, so this master holds them). */
async function fillReplicationStream(master: RedisServer): Promise<void> {
  const client = new Redis({ host: '127.0.0.1', port: master.port, protocol: 2 });
  const tag = `{${shardOf(CHANNEL, SHARDS)}}`;
  const block = Buffer.alloc(4 * 1024 * 1024, 120);
  for (let i = 0; i < 12; i++) await client.set(`sb:${tag}:filler:${i}`, block);
  client.disconnect();
}

/** The master and replica that hold the channel's keys. */
async function holders(cluster: RedisCluster): Promise<{ master: RedisServer; replica: RedisServer }> {
  const client = new Cluster([{ host: '127.0.0.1', port: cluster.masters[0]!.port }], {
    redisOptions: { protocol: 2 },
  });
  await new Promise<void>((r) => client.once('ready', () => r()));
  const slot = slotOfKey(keys.feed(shardOf(CHANNEL, SHARDS)));
  const owners = client.slots[slot]!;
  client.disconnect();
  const port = (nodeKey: string) => Number(nodeKey.slice(nodeKey.lastIndexOf(':') + 1));
  const master = cluster.nodes.find((n) => n.port === port(owners[0]!))!;
  const replica = cluster.nodes.find((n) => owners.slice(1).some((k) => port(k) === n.port))!;
  return { master, replica };
}

interface FailoverRun {
  readonly publisher: Publisher;
  readonly subscribers: Subscriber[];
  /** The offset the channel had reached (acknowledged) when its master was killed. */
  readonly topAtKill: Delivery;
  /** The promoted replica's view of the channel afterwards. */
  readonly after: { readonly epoch: string; readonly offset: number };
}

/**
 * Steady publishing with subscribers on two edges; the channel's replica is stopped, the master killed
 * while the replica is behind, the replica resumed (and promoted); publishing goes on after the failover.
 */
async function failover(extraEnv: Record<string, string>): Promise<FailoverRun> {
  const cluster = await startRedisCluster(3, 1, 1500);
  const stops: (() => Promise<unknown>)[] = [() => cluster.stop()];
  try {
    const session = await startSwitchboard(
      BIN,
      'session',
      { REDIS_URL: cluster.url, REDIS_CLUSTER: '1' },
      30_000,
      'SESSION_PORT',
    );
    stops.unshift(() => session.stop());
    const edges: SwitchboardProcess[] = [];
    for (const id of ['edge-1', 'edge-2']) {
      const e = await startSwitchboard(
        BIN,
        'edge',
        edgeEnv(cluster.url, true, id, session.httpUrl, extraEnv),
        30_000,
      );
      edges.push(e);
      stops.unshift(() => e.stop('SIGKILL'));
    }
    const urls = () => edges.map((e) => e.httpUrl.replace('http', 'ws'));
    const { master, replica } = await holders(cluster);
    const subscribers = Array.from(
      { length: 4 },
      (_, i) => new Subscriber(() => [urls()[i % 2]!, urls()[(i + 1) % 2]!], `sub-${i}`),
    );
    for (const s of subscribers) await s.start();
    await sleep(500);
    const publisher = new Publisher(() => edges.map((e) => e.httpUrl), 5);
    publisher.start();
    await sleep(1500);
    replica.pause();
    // A stopped process still receives TCP data into its socket buffer, and would catch up on resume.
    // Fill the replication stream past those buffers first, so the writes after it really are missing.
    await fillReplicationStream(master);
    await sleep(1500);
    const last = publisher.acks[publisher.acks.length - 1]!;
    await master.kill();
    replica.resume();
    // Failover (node timeout 1.5 s, then election), then publishing on the promoted replica until every
    // subscriber follows the channel again (its Rpc and bus connections found the new master).
    await sleep(5000);
    // The dead master comes back as a replica of the promoted one (replicated publishing needs one).
    await master.restart();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !subscribers.every((s) => s.following(last))) await sleep(250);
    await sleep(3000);
    await publisher.stop();
    await sleep(2500);
    for (const s of subscribers) s.stop();
    const meta = keys.meta(shardOf(CHANNEL, SHARDS), CHANNEL);
    const field = async (f: string) => (await replica.command(`HGET ${meta} ${f}`)).split('\r\n')[1] ?? '';
    return {
      publisher,
      subscribers,
      topAtKill: last,
      after: { epoch: await field('e'), offset: Number(await field('o')) },
    };
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

describe('delivery under a Redis Cluster failover that loses acknowledged writes', () => {
  it('acks by the master: every subscriber has every acknowledged message or was told explicitly; no offset names two messages', async () => {
    const run = await failover({});
    const { publisher, subscribers } = run;
    expect(publisher.acks.length).toBeGreaterThan(200);
    const ackedIds = new Set(publisher.acks.map((a) => a.id));
    // The scenario really lost acknowledged writes and the edges noticed: the epoch was abandoned.
    const lastEpoch = publisher.acks[publisher.acks.length - 1]!.epoch;
    expect(lastEpoch).not.toBe(run.topAtKill.epoch);
    expect(subscribers.some((s) => s.told.length > 0)).toBe(true);
    for (const s of subscribers) {
      expect(conflicts(s.got), 'an offset named two messages').toEqual([]);
      const received = new Set(s.got.map((d) => d.id));
      const missing = [...ackedIds].filter((id) => !received.has(id));
      expect(s.following(run.topAtKill), 'the subscriber follows the channel again').toBe(true);
      // Never silent: whoever lacks an acknowledged message was told so.
      if (missing.length > 0)
        expect(s.told.length, `missing ${missing.length} without being told`).toBeGreaterThan(0);
      // Once told, it follows the channel again: it has every message acknowledged after where it rejoined.
      const from = s.rejoined;
      if (from) {
        expect(from.epoch).toBe(lastEpoch);
        const after = publisher.acks
          .filter((a) => a.epoch === lastEpoch && a.offset > from.offset)
          .map((a) => a.id);
        expect(after.length).toBeGreaterThan(50);
        expect(after.filter((id) => !received.has(id))).toEqual([]);
      }
      expect(duplicates(s.got)).toBe(0);
    }
  }, 120_000);

  it('acknowledged means replicated: no acknowledged message is lost at all', async () => {
    const run = await failover({
      SWITCHBOARD_PUBLISH_MIN_REPLICAS: '1',
      SWITCHBOARD_PUBLISH_REPLICA_TIMEOUT_MS: '300',
    });
    const { publisher, subscribers } = run;
    expect(publisher.acks.length).toBeGreaterThan(100);
    // While the replica was stopped, publishes were refused as not replicated, not acknowledged.
    expect(publisher.refused.filter((r) => r.error === 'not_replicated').length).toBeGreaterThan(0);
    // Publishing went on after the failover, once the old master was back as a replica.
    expect(publisher.acks.filter((a) => a.id > run.topAtKill.id).length).toBeGreaterThan(50);
    expect(run.after.epoch).toBe(run.topAtKill.epoch);
    for (const s of subscribers) {
      expect(conflicts(s.got)).toEqual([]);
      const received = new Set(s.got.map((d) => d.id));
      expect(publisher.acks.filter((a) => !received.has(a.id)).map((a) => a.id)).toEqual([]);
      expect(duplicates(s.got)).toBe(0);
    }
  }, 120_000);
});

describe('a rolling restart of three edges under load', () => {
  let redis: RedisServer | null = null;
  const procs: SwitchboardProcess[] = [];
  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await redis?.stop();
  });

  it('clients reconnecting with recover lose nothing and get nothing twice', async () => {
    redis = await startRedis();
    const session = await startSwitchboard(
      BIN,
      'session',
      { REDIS_URL: redis.url, REDIS_CLUSTER: '0' },
      30_000,
      'SESSION_PORT',
    );
    procs.push(session);
    const edges: SwitchboardProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const e = await startSwitchboard(
        BIN,
        'edge',
        edgeEnv(redis.url, false, `edge-${i}`, session.httpUrl),
        30_000,
      );
      edges.push(e);
      procs.push(e);
    }
    const wsUrls = () => edges.map((e) => e.httpUrl.replace('http', 'ws'));
    const subscribers = Array.from(
      { length: 30 },
      (_, i) => new Subscriber(() => [...wsUrls().slice(i % 3), ...wsUrls().slice(0, i % 3)], `r-${i}`),
    );
    for (const s of subscribers) await s.start();
    await sleep(500);
    const publisher = new Publisher(() => edges.map((e) => e.httpUrl), 3, 'y');
    publisher.start();
    await sleep(1000);
    for (let i = 0; i < 3; i++) {
      const old = edges[i]!;
      await old.stop('SIGTERM');
      const fresh = await startSwitchboard(
        BIN,
        'edge',
        { ...edgeEnv(redis.url, false, `edge-${i}-b`, session.httpUrl), PORT: String(old.port) },
        30_000,
      );
      edges[i] = fresh;
      procs.push(fresh);
      await sleep(700);
    }
    await sleep(500);
    await publisher.stop();
    await sleep(2000);
    for (const s of subscribers) s.stop();
    expect(publisher.acks.length).toBeGreaterThan(300);
    const first = publisher.acks[0]!.id;
    for (const s of subscribers) {
      expect(s.closes.filter((c) => c === 1012).length).toBeGreaterThan(0);
      expect(s.told).toEqual([]);
      expect(duplicates(s.got)).toBe(0);
      const received = new Set(s.got.map((d) => d.id));
      expect(publisher.acks.filter((a) => a.id >= first && !received.has(a.id)).map((a) => a.id)).toEqual([]);
    }
  }, 120_000);
});

describe('draining one of three edges under load', () => {
  let redis: RedisServer | null = null;
  const procs: SwitchboardProcess[] = [];
  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await redis?.stop();
  });

  it('SIGTERM: /readyz turns 503 at once; its clients resume elsewhere within the drain window plus 1 s; nothing lost or doubled', async () => {
    redis = await startRedis();
    const session = await startSwitchboard(
      BIN,
      'session',
      { REDIS_URL: redis.url, REDIS_CLUSTER: '0' },
      30_000,
      'SESSION_PORT',
    );
    procs.push(session);
    const edges: SwitchboardProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const e = await startSwitchboard(
        BIN,
        'edge',
        edgeEnv(redis.url, false, `drain-${i}`, session.httpUrl),
        30_000,
      );
      edges.push(e);
      procs.push(e);
    }
    const ws = edges.map((e) => e.httpUrl.replace('http', 'ws'));
    // Ten clients on the edge that will drain, with the other two to go to.
    const subscribers = Array.from(
      { length: 10 },
      (_, i) => new Subscriber(() => [ws[0]!, ws[1 + (i % 2)]!], `d-${i}`),
    );
    for (const s of subscribers) await s.start();
    await sleep(300);
    const publisher = new Publisher(() => [edges[1]!.httpUrl, edges[2]!.httpUrl], 3, 'z');
    publisher.start();
    await sleep(800);
    const termAt = Date.now();
    edges[0]!.child.kill('SIGTERM');
    await sleep(100);
    expect((await fetch(`${edges[0]!.httpUrl}/readyz`)).status).toBe(503);
    await sleep(2500);
    await publisher.stop();
    await sleep(1500);
    for (const s of subscribers) s.stop();
    expect(publisher.acks.length).toBeGreaterThan(200);
    for (const s of subscribers) {
      expect(s.closes[0]).toBe(1012);
      expect(s.resumedAt.length).toBeGreaterThanOrEqual(1);
      // SWITCHBOARD_DRAIN_MS is 1000 in these edges.
      expect(s.resumedAt[0]! - termAt).toBeLessThan(1000 + 1000);
      expect(s.told).toEqual([]);
      expect(duplicates(s.got)).toBe(0);
      const received = new Set(s.got.map((d) => d.id));
      expect(publisher.acks.filter((a) => !received.has(a.id)).map((a) => a.id)).toEqual([]);
    }
  }, 120_000);
});

describe('publishes retried through a Redis stall', () => {
  let redis: RedisServer | null = null;
  const procs: SwitchboardProcess[] = [];
  afterAll(async () => {
    redis?.resume();
    for (const p of procs) await p.stop('SIGKILL');
    await redis?.stop();
  });

  it('a retry with the same idempotency key after a 503 is delivered once, even when the first attempt committed', async () => {
    redis = await startRedis();
    const session = await startSwitchboard(
      BIN,
      'session',
      { REDIS_URL: redis.url, REDIS_CLUSTER: '0' },
      30_000,
      'SESSION_PORT',
    );
    procs.push(session);
    const edge = await startSwitchboard(
      BIN,
      'edge',
      edgeEnv(redis.url, false, 'stall-1', session.httpUrl),
      30_000,
    );
    procs.push(edge);
    const sub = new Subscriber(() => [edge.httpUrl.replace('http', 'ws')], 'stall-sub');
    await sub.start();
    await sleep(300);
    // Eight publishers, each retrying its message with the same key until it is answered 200.
    const answers503: string[] = [];
    const published: number[] = [];
    let next = 1;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const id = next++;
        for (;;) {
          const res = await fetch(`${edge.httpUrl}/api/publish`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: 'Bearer dev-api-key',
              'idempotency-key': `m-${id}`,
            },
            body: JSON.stringify({ channel: 'alerts', data: { alert_id: id } }),
          }).catch(() => null);
          if (res?.ok) break;
          if (res) answers503.push(((await res.json()) as { error: string }).error);
          await sleep(100);
        }
        published.push(id);
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    // A client authenticated before the stall subscribes during it (the edge must ask Redis for the
    // channel's position): it is told the backend is unavailable (retry), never internal_error.
    const probe = new WebSocket(`${edge.httpUrl.replace('http', 'ws')}/ws`);
    const probeFrames: Record<string, unknown>[] = [];
    probe.on('message', (raw) =>
      probeFrames.push(JSON.parse((raw as Buffer).toString()) as Record<string, unknown>),
    );
    const probeToken = await issuer.issue({ sub: 'stall-probe', ttlSec: 3600 });
    await new Promise((resolve) => probe.on('open', resolve));
    probe.send(JSON.stringify({ type: 'auth', token: probeToken }));
    await sleep(700);
    expect(probeFrames.map((m) => m.type === 'auth_response' && m.success)).toEqual([true]);
    redis.pause();
    probe.send(JSON.stringify({ type: 'subscribe', channel: 'telemetry' }));
    await sleep(3000);
    redis.resume();
    probe.terminate();
    expect(probeFrames.slice(1).map((m) => [m.type, m.code, m.request])).toEqual([
      ['error', 'unavailable', 'subscribe'],
    ]);
    await sleep(1500);
    stop = true;
    await Promise.all(workers);
    await sleep(1500);
    sub.stop();
    // The stall made publishes time out (their outcome unknown) and the retries went through.
    expect(answers503).toContain('publish_outcome_unknown');
    const ids = sub.got.map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(published.filter((id) => !ids.includes(id))).toEqual([]);
  }, 60_000);
});

describe('one edge partitioned from Redis for 10 s', () => {
  let redis: RedisServer | null = null;
  let proxy: TcpProxy | null = null;
  const procs: SwitchboardProcess[] = [];
  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await proxy?.close();
    await redis?.stop();
  });

  it('its subscribers get what was published meanwhile, in order, after the link heals: 0 lost, 0 doubled; its readiness says so', async () => {
    redis = await startRedis();
    // Edge B reaches Redis only through a proxy the test controls; edge A and the session service directly.
    proxy = await startTcpProxy({ host: '127.0.0.1', port: redis.port });
    const session = await startSwitchboard(
      BIN,
      'session',
      { REDIS_URL: redis.url, REDIS_CLUSTER: '0' },
      30_000,
      'SESSION_PORT',
    );
    procs.push(session);
    const a = await startSwitchboard(
      BIN,
      'edge',
      edgeEnv(redis.url, false, 'part-a', session.httpUrl),
      30_000,
    );
    procs.push(a);
    const b = await startSwitchboard(
      BIN,
      'edge',
      edgeEnv(proxy.url, false, 'part-b', session.httpUrl),
      30_000,
    );
    procs.push(b);
    const subscribers = Array.from(
      { length: 10 },
      (_, i) => new Subscriber(() => [b.httpUrl.replace('http', 'ws')], `part-${i}`),
    );
    for (const s of subscribers) await s.start();
    await sleep(500);
    const publisher = new Publisher(() => [a.httpUrl], 10, 'p');
    publisher.start();
    await sleep(1000);
    const before = publisher.acks.length;
    expect(before).toBeGreaterThan(10);
    for (const s of subscribers) expect(s.got.length).toBeGreaterThan(0);

    proxy.cut();
    const readiness: number[] = [];
    for (let t = 0; t < 10; t++) {
      await sleep(1000);
      readiness.push((await fetch(`${b.httpUrl}/readyz`, { signal: AbortSignal.timeout(2000) })).status);
    }
    const duringCut = publisher.acks.length - before;
    proxy.heal();
    // Everything acknowledged while B was cut off (about 10 s of it) reaches B's subscribers once it heals.
    const deadline = Date.now() + 15_000;
    const acked = () => new Set(publisher.acks.map((x) => x.id));
    while (Date.now() < deadline) {
      const want = acked();
      if (subscribers.every((s) => s.got.filter((d) => want.has(d.id)).length >= want.size)) break;
      await sleep(200);
    }
    await publisher.stop();
    await sleep(1000);
    for (const s of subscribers) s.stop();

    // Publishing through edge A never stopped, and B told its load balancer it was not ready meanwhile.
    expect(duringCut).toBeGreaterThan(200);
    expect(readiness.slice(1, 9).every((st) => st === 503)).toBe(true);
    expect((await fetch(`${b.httpUrl}/readyz`)).status).toBe(200);
    for (const s of subscribers) {
      expect(s.told).toEqual([]);
      expect(duplicates(s.got)).toBe(0);
      const offsets = s.got.map((d) => d.offset);
      expect(offsets.every((o, i) => i === 0 || o === offsets[i - 1]! + 1)).toBe(true);
      const received = new Set(s.got.map((d) => d.id));
      expect(publisher.acks.filter((x) => !received.has(x.id)).map((x) => x.id)).toEqual([]);
    }
  }, 90_000);
});
