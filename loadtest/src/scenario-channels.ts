/**
 * Many channels with one subscriber each (per-device channels). Each valtronics connection has its own
 * tenant, so each of its subscriptions (`alerts`, then `devices` and `telemetry`) is a bus channel of its
 * own: C connections hold 3·C channels. An edge holds fewer than this machine's 20,000 open files, so
 * 100,000 channels live on two edges (with a session service and one Redis, as deployed).
 *
 * Measured: the subscribe cost (2·C subscribes sent to C connections that are already up: rate, latency,
 * server CPU), the edge memory per idle channel subscription (the RSS and post-GC JS heap slope from one
 * to three channels per connection, read through the V8 inspector), Redis memory per subscription and per
 * channel once it has a message, what the bus reads (shards, and feed entries each edge reads only to skip
 * them), and deliveries/s with publishes spread over every channel, next to bare uWebSockets.js sending
 * each message to one socket of its own. A separate small run takes heap snapshots before and after the
 * extra subscribes and lists what holds the memory per channel.
 */
import { DEV_JWT_SECRET } from '@switchboard/core';
import { scrapeMetric, startRedis, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { writeFileSync } from 'node:fs';
import { commandStats, cpuSeconds, rssBytes } from './cpu.js';
import { selfTimes } from './cpuprofile-top.js';
import { LoadGenerator, maxSustained, percentile, runStep, staircase, type SendFn } from './generator.js';
import { growth, inspectOptions, Inspector, type HeapGrowth } from './inspector.js';
import { startPeer } from './peers/index.js';
import { wallMs, type SubscriberSpec } from './protocol.js';
import { redisPid, type RunOptions, type SystemResult } from './scenarios.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, nodeOptions, postMessages, stampedPayload } from './switchboard.js';

/** The valtronics channels each connection subscribes to, in order (the first when it opens). */
const CHANNELS = ['alerts', 'devices', 'telemetry'] as const;

/** Memory of one edge at each point. */
export interface EdgeMemory {
  readonly name: string;
  readonly connections: number;
  /** Before any connection, with one channel per connection, with three. */
  readonly rssBytes: readonly [number, number, number];
  readonly heapBytes: readonly [number, number, number];
}

/** Results of the scenario. */
export interface ChannelsResult {
  readonly connections: number;
  readonly channels: number;
  readonly edges: readonly EdgeMemory[];
  /** Connect + auth + first subscribe of every connection. */
  readonly openSec: number;
  readonly subscribe: {
    readonly count: number;
    readonly failed: number;
    readonly seconds: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    /** Server CPU-s during the subscribes, per process. */
    readonly cpuSec: Record<string, number>;
  };
  /** Edge memory per added channel subscription (mean over the edges). */
  readonly rssPerChannelBytes: number;
  readonly heapPerChannelBytes: number;
  /** Redis `used_memory`: before, after the first subscriptions, after all, after one message on every channel. */
  readonly redisBytes: readonly [number, number, number, number];
  /** `MEMORY USAGE` of one channel's keys after its first message. */
  readonly redisKeysOfOneChannel: Record<string, number>;
  /** Shards each edge reads once every channel is subscribed. */
  readonly shardsRead: readonly number[];
  /** Feed entries each edge handed to its hub / read and skipped (no subscriber there) during the staircase. */
  readonly busRead: readonly number[];
  readonly busSkipped: readonly number[];
  readonly switchboard: SystemResult;
  readonly bare: SystemResult;
  /** From the small heap-snapshot run: what grew per channel. */
  readonly heapGrowth: { readonly connections: number; readonly channels: number; readonly top: HeapGrowth[] } | null;
}

async function usedMemory(redis: { command(c: string): Promise<string> }): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.command('INFO memory'))?.[1] ?? 0);
}

/** RSS after a full GC and the post-GC heap of an inspected process. */
async function memoryOf(pid: number, ins: Inspector): Promise<{ rss: number; heap: number }> {
  const heap = await ins.heapUsedAfterGc();
  await new Promise((r) => setTimeout(r, 500));
  return { rss: rssBytes(pid), heap };
}

function spreadSender(edges: readonly SwitchboardProcess[], connections: number, payloadBytes: number): SendFn {
  const payload = stampedPayload(payloadBytes);
  let j = 0;
  let e = 0;
  return async (n) => {
    const messages = [];
    for (let i = 0; i < n; i++, j++) {
      const channel = CHANNELS[Math.floor(j / connections) % CHANNELS.length]!;
      messages.push({ tenant: `c${j % connections}`, channel, attrs: { device_id: 'x' }, data: payload() });
    }
    await postMessages(edges[e++ % edges.length]!.httpUrl, messages);
  };
}

function subscriberSpec(edges: readonly SwitchboardProcess[], connections: number): SubscriberSpec {
  return {
    targets: edges.map((e) => ({ host: '127.0.0.1', port: e.port, path: '/ws' })),
    protocol: 'valtronics',
    tokens: [],
    subscriptions: [{ channel: CHANNELS[0] }],
    latencyEvery: Math.max(1, Math.floor(connections / 1000)),
    mint: { secret: DEV_JWT_SECRET, users: connections, tenantPrefix: 'c' },
    laneMarker: '"channel":"',
  };
}

async function startStack(
  bin: string,
  edgeCount: number,
): Promise<{ redis: Awaited<ReturnType<typeof startRedis>>; session: SwitchboardProcess; sessionInspector: Inspector | null; edges: SwitchboardProcess[]; inspectors: Inspector[]; stop: () => Promise<void> }> {
  // As dev-cluster and the manifests run it (docs/operations.md, "Redis memory per channel").
  const redis = await startRedis({ args: ['--stream-node-max-bytes', '1024'] });
  // CHANNELS_PROFILE_SESSION=1: the session service's CPU profile over the subscribes (the profile behind a fix).
  const sessionInsp = process.env.CHANNELS_PROFILE_SESSION ? await inspectOptions() : null;
  const session = await startSwitchboard(bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'channels-session', ...nodeOptions(sessionInsp?.nodeOptions ?? '') }, 20_000, 'SESSION_PORT');
  const sessionInspector = sessionInsp ? await Inspector.connect(sessionInsp.port) : null;
  const edges: SwitchboardProcess[] = [];
  const inspectors: Inspector[] = [];
  const stop = async () => {
    sessionInspector?.close();
    for (const i of inspectors) i.close();
    await Promise.all(edges.map((e) => e.stop()));
    await session.stop();
    await redis.stop();
  };
  try {
    for (let i = 0; i < edgeCount; i++) {
      const insp = await inspectOptions();
      const edge = await startSwitchboard(bin, 'edge', {
        ...LOAD_EDGE_ENV,
        REDIS_URL: redis.url,
        SWITCHBOARD_SESSION_URL: session.httpUrl,
        NODE_ID: `channels-${String.fromCharCode(97 + i)}`,
        ...nodeOptions(insp.nodeOptions),
      });
      edges.push(edge);
      inspectors.push(await Inspector.connect(insp.port));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { redis, session, sessionInspector, edges, inspectors, stop };
}

/** The small run: heap snapshots of one edge before and after 2 more channels per connection. */
export async function channelsHeapGrowth(bin: string, connections: number, processes: number): Promise<{ connections: number; channels: number; top: HeapGrowth[] }> {
  const stack = await startStack(bin, 1);
  try {
    const gen = await LoadGenerator.start(subscriberSpec(stack.edges, connections), connections, processes);
    try {
      const ins = stack.inspectors[0]!;
      const before = await ins.heapSummary();
      const sub = await gen.subscribe(CHANNELS.slice(1).map((channel) => ({ channel })));
      if (sub.failed > 0) throw new Error(`subscribes refused: ${sub.firstError}`);
      // Let what a subscribe leaves in flight (session checkpoints, timers) settle, as the main run does.
      await new Promise((r) => setTimeout(r, 2000));
      const after = await ins.heapSummary();
      const channels = connections * (CHANNELS.length - 1);
      return { connections, channels, top: growth(before, after, channels) };
    } finally {
      await gen.close();
    }
  } finally {
    await stack.stop();
  }
}

/** Runs the scenario: `connections` subscribers over 2 edges, 3 channels each. */
export async function channelsScenario(
  o: RunOptions,
  connections: number,
  rates: readonly number[],
  payloadBytes: number,
  heapRunConnections: number,
  log: (m: string) => void,
): Promise<ChannelsResult> {
  const stack = await startStack(o.bin, 2);
  const { redis, session, sessionInspector, edges, inspectors } = stack;
  const rpid = await redisPid(redis);
  const pids: Record<string, number> = { 'edge-a': edges[0]!.child.pid!, 'edge-b': edges[1]!.child.pid!, session: session.child.pid!, redis: rpid };
  const mem: { rss: number; heap: number }[][] = edges.map(() => []);
  const redisMem: number[] = [];
  const snap = async () => {
    for (let i = 0; i < edges.length; i++) mem[i]!.push(await memoryOf(edges[i]!.child.pid!, inspectors[i]!));
    redisMem.push(await usedMemory(redis));
  };
  let switchboard: SystemResult;
  let subscribe: ChannelsResult['subscribe'];
  let openSec: number;
  let shardsRead: number[];
  const busRead: number[] = [];
  const busSkipped: number[] = [];
  const redisKeysOfOneChannel: Record<string, number> = {};
  try {
    await new Promise((r) => setTimeout(r, 1000));
    await snap();
    const t0 = wallMs();
    const gen = await LoadGenerator.start(subscriberSpec(edges, connections), connections, Math.max(o.processes, Math.ceil(connections / 8000))).catch((err: unknown) => {
      // What the servers said is the first thing to read when subscribers are refused.
      for (const p of [...edges, session]) process.stderr.write(`--- ${p.httpUrl} log tail ---\n${p.logs().slice(-4000)}\n`);
      throw err;
    });
    try {
      openSec = (wallMs() - t0) / 1000;
      log(`channels: ${connections} connections (own tenant each) with one channel each, up in ${openSec.toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, 2000));
      await snap();
      const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
      const s0 = wallMs();
      if (sessionInspector) await sessionInspector.startProfiling();
      const sub = await gen.subscribe(CHANNELS.slice(1).map((channel) => ({ channel })));
      const seconds = (wallMs() - s0) / 1000;
      if (sessionInspector) {
        const profile = (await sessionInspector.stopProfiling()) as Parameters<typeof selfTimes>[0];
        writeFileSync(process.env.CHANNELS_PROFILE_SESSION_OUT ?? 'session.cpuprofile', JSON.stringify(profile));
        const t = selfTimes(profile);
        const text = await (await fetch(`${session.httpUrl}/metrics`)).text();
        log(`channels: session RPCs so far:\n${text.split('\n').filter((l) => l.startsWith('switchboard_session_rpc_duration_seconds_count') || l.startsWith('switchboard_session_rpc_duration_seconds_sum')).join('\n')}`);
        log(`channels: the session service's profile over the subscribes\n${[...t.byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, us]) => `${((100 * us) / t.totalUs).toFixed(1).padStart(5)} %  ${name}`).join('\n')}`);
      }
      if (sub.failed > 0) throw new Error(`subscribes refused: ${sub.firstError}`);
      sub.latenciesMs.sort((a, b) => a - b);
      subscribe = {
        count: sub.ok,
        failed: sub.failed,
        seconds,
        p50Ms: percentile(sub.latenciesMs, 50),
        p99Ms: percentile(sub.latenciesMs, 99),
        cpuSec: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) - cpu0[k]!])),
      };
      log(`channels: ${sub.ok} more subscribes in ${seconds.toFixed(1)} s (p50 ${subscribe.p50Ms.toFixed(1)} ms, p99 ${subscribe.p99Ms.toFixed(1)} ms): ${connections * CHANNELS.length} channels`);
      await new Promise((r) => setTimeout(r, 2000));
      await snap();
      shardsRead = await Promise.all(edges.map((e) => scrapeMetric(e.httpUrl, 'switchboard_bus_shards_read')));

      // One message on every channel: what a channel costs in Redis once it has a position and history.
      // Gently (each message is a script of its own), and a refused batch is counted, not fatal.
      const prime = spreadSender(edges, connections, payloadBytes);
      const total = connections * CHANNELS.length;
      let refused = 0;
      await gen.window();
      for (let sent = 0; sent < total; ) {
        const wave = [];
        for (let k = 0; k < 2 && sent < total; k++) {
          const n = Math.min(250, total - sent);
          sent += n;
          wave.push(prime(n).catch(() => (refused += n)));
        }
        await Promise.all(wave);
      }
      if (refused > 0) log(`channels: ${refused} of the priming messages were refused`);
      let got = 0;
      for (let idle = 0; got < total && idle < 20; ) {
        await new Promise((r) => setTimeout(r, 100));
        const w = await gen.window();
        got += w.received;
        idle = w.received > 0 ? 0 : idle + 1;
      }
      log(`channels: one message on each of ${total} channels, ${got} delivered`);
      redisMem.push(await usedMemory(redis));
      const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        for (const key of await client.keys('*valtronics:c0:alerts*')) {
          const kind = /:(meta|h|idem[^:]*):/.exec(key)?.[1] ?? key;
          redisKeysOfOneChannel[kind] = Number(await client.call('MEMORY', 'USAGE', key));
        }
      } finally {
        client.disconnect();
      }

      const read0 = await Promise.all(edges.map((e) => scrapeMetric(e.httpUrl, 'switchboard_bus_messages_read_total')));
      const skip0 = await Promise.all(edges.map((e) => scrapeMetric(e.httpUrl, 'switchboard_bus_messages_skipped_total')));
      const send = spreadSender(edges, connections, payloadBytes);
      const steps = await staircase(rates, async (rate) => {
        const r = await runStep({ gen, send, rate, durationMs: o.stepMs, fanout: 1, pids, lagLimitMs: o.lagLimitMs, skipsAreLoss: true });
        log(`channels (Switchboard): ${rate} msg/s → ${Math.round(r.deliveredPerSec)} deliveries/s, p99 ${r.p99Ms.toFixed(1)} ms, lost ${r.lost}${r.sustained ? '' : ' (not sustained)'}`);
        return r;
      }, o.refine);
      switchboard = { name: `Switchboard (2 edges + Redis), ${connections * CHANNELS.length} channels`, connections, fanout: 1, steps, max: maxSustained(steps) };
      // For the profile behind a fix (docs/benchmark-notes.md): CHANNELS_PROFILE=<msg/s> records edge-a's CPU
      // profile over one more step at that rate and prints where its time went.
      const profileRate = Number(process.env.CHANNELS_PROFILE ?? 0);
      if (profileRate > 0) {
        const stats0 = commandStats(await redis.command('INFO commandstats'));
        await inspectors[0]!.startProfiling();
        const r = await runStep({ gen, send, rate: profileRate, durationMs: o.stepMs, fanout: 1, pids, lagLimitMs: o.lagLimitMs, skipsAreLoss: true });
        const profile = (await inspectors[0]!.stopProfiling()) as Parameters<typeof selfTimes>[0];
        // Where Redis's time went over the same step (its own accounting, per command).
        const stats1 = commandStats(await redis.command('INFO commandstats'));
        const messages = profileRate * (o.stepMs / 1000);
        const redisTop = [...stats1]
          .map(([cmd, v]) => [cmd, v.usec - (stats0.get(cmd)?.usec ?? 0), v.calls - (stats0.get(cmd)?.calls ?? 0)] as const)
          .filter(([, usec]) => usec > 0)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 12);
        log(`channels: Redis time per published message at ${profileRate} msg/s, by command (INFO commandstats):\n${redisTop.map(([cmd, usec, calls]) => `${(usec / messages).toFixed(2).padStart(7)} µs  ${cmd} (${calls} calls, ${(usec / Math.max(1, calls)).toFixed(1)} µs each)`).join('\n')}`);
        const out = process.env.CHANNELS_PROFILE_OUT ?? 'channels.cpuprofile';
        writeFileSync(out, JSON.stringify(profile));
        const t = selfTimes(profile);
        const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, us]) => `${((100 * us) / t.totalUs).toFixed(1).padStart(5)} %  ${name}`).join('\n');
        await inspectors[0]!.startAllocationSampling();
        const ra = await runStep({ gen, send, rate: profileRate, durationMs: o.stepMs, fanout: 1, pids, lagLimitMs: o.lagLimitMs, skipsAreLoss: true });
        const allocated = await inspectors[0]!.stopAllocationSampling();
        const totalBytes = allocated.reduce((a, x) => a + x[1], 0);
        log(`channels: edge-a allocated ${(totalBytes / 2 ** 20).toFixed(1)} MiB over ${Math.round(ra.deliveredPerSec * (o.stepMs / 1000))} deliveries; the largest:\n${allocated.slice(0, 25).map(([name, b]) => `${((100 * b) / totalBytes).toFixed(1).padStart(5)} %  ${name}`).join('\n')}`);
        log(`channels: profile of edge-a at ${profileRate} msg/s (${Math.round(r.deliveredPerSec)} deliveries/s, CPU ${JSON.stringify(r.cpuSec)}) in ${out}\n-- by module\n${top(t.byModule)}\n-- by function\n${top(t.byFunction)}`);
      }
      const read1 = await Promise.all(edges.map((e) => scrapeMetric(e.httpUrl, 'switchboard_bus_messages_read_total')));
      const skip1 = await Promise.all(edges.map((e) => scrapeMetric(e.httpUrl, 'switchboard_bus_messages_skipped_total')));
      for (let i = 0; i < edges.length; i++) {
        busRead.push(read1[i]! - read0[i]!);
        busSkipped.push(skip1[i]! - skip0[i]!);
      }
    } finally {
      await gen.close();
    }
  } finally {
    await stack.stop();
  }

  // Bare uWS: the same messages, each sent to one socket of its own (`ws.send`); one process holds as many
  // sockets as one edge does.
  const bareSockets = Math.ceil(connections / 2);
  const peer = await startPeer('bare-uws');
  let bare: SystemResult;
  try {
    const gen = await LoadGenerator.start({ targets: [{ host: '127.0.0.1', port: peer.port, path: '/bare' }], protocol: 'plain', tokens: [], subscriptions: [{}], latencyEvery: Math.max(1, Math.floor(bareSockets / 1000)) }, bareSockets, o.processes);
    try {
      const payload = stampedPayload(payloadBytes);
      let to = 0;
      const send: SendFn = async (n) => {
        const messages = [];
        for (let i = 0; i < n; i++) messages.push({ to: to++ % bareSockets, data: payload() });
        const res = await fetch(`${peer.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) });
        if (!res.ok) throw new Error(`publish ${res.status}`);
        await res.arrayBuffer();
      };
      const steps = await staircase(rates, async (rate) => {
        const r = await runStep({ gen, send, rate, durationMs: o.stepMs, fanout: 1, pids: { 'bare-uws': peer.child.pid! }, lagLimitMs: o.lagLimitMs, skipsAreLoss: true });
        log(`channels (bare uWS, ${bareSockets} sockets): ${rate} msg/s → ${Math.round(r.deliveredPerSec)} deliveries/s, p99 ${r.p99Ms.toFixed(1)} ms, lost ${r.lost}${r.sustained ? '' : ' (not sustained)'}`);
        return r;
      }, o.refine);
      bare = { name: `bare uWebSockets.js, ws.send to one of ${bareSockets} sockets`, connections: bareSockets, fanout: 1, steps, max: maxSustained(steps) };
    } finally {
      await gen.close();
    }
  } finally {
    await peer.stop();
  }

  log(`channels: heap snapshots of one edge, ${heapRunConnections} connections × 2 more channels`);
  const heapGrowth = heapRunConnections > 0 ? await channelsHeapGrowth(o.bin, heapRunConnections, o.processes) : null;

  const added = CHANNELS.length - 1;
  const perEdge = edges.map((e, i) => ({
    name: `edge-${String.fromCharCode(97 + i)}`,
    connections: Math.floor(connections / edges.length) + (i < connections % edges.length ? 1 : 0),
    rssBytes: [mem[i]![0]!.rss, mem[i]![1]!.rss, mem[i]![2]!.rss] as const,
    heapBytes: [mem[i]![0]!.heap, mem[i]![1]!.heap, mem[i]![2]!.heap] as const,
  }));
  const mean = (f: (e: EdgeMemory) => number) => perEdge.reduce((a, e) => a + f(e), 0) / perEdge.length;
  return {
    connections,
    channels: connections * CHANNELS.length,
    edges: perEdge,
    openSec,
    subscribe,
    rssPerChannelBytes: mean((e) => (e.rssBytes[2] - e.rssBytes[1]) / (e.connections * added)),
    heapPerChannelBytes: mean((e) => (e.heapBytes[2] - e.heapBytes[1]) / (e.connections * added)),
    redisBytes: [redisMem[0]!, redisMem[1]!, redisMem[2]!, redisMem[3]!],
    redisKeysOfOneChannel,
    shardsRead,
    busRead,
    busSkipped,
    switchboard,
    bare,
    heapGrowth,
  };
}
