/**
 * Scenarios measured side by side with the same generator: broadcast on one node (Switchboard,
 * bare uWebSockets.js, Socket.IO), filtered fan-out, idle connections, and the horizontally scaled
 * Socket.IO peer (2 nodes + Redis Streams adapter).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_JWT_SECRET } from '@switchboard/core';
import { Inspector, inspectOptions } from './inspector.js';
import { startRedis, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { rssBytes } from './cpu.js';
import { LoadGenerator, maxSustained, runStep, staircase, type SendFn, type StepResult } from './generator.js';
import { startPeer } from './peers/index.js';
import { wallMs, type SubscriberSpec, type WireProtocol } from './protocol.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, devTokens, httpPublisher, nodeOptions, postMessages, stampedPayload } from './switchboard.js';

/** A system under test, ready for subscribers. */
export interface System {
  readonly name: string;
  /** HTTP base URL of the (first) node. */
  readonly url: string;
  readonly targets: SubscriberSpec['targets'];
  readonly protocol: WireProtocol;
  readonly subscriptions: readonly Record<string, unknown>[];
  readonly send: SendFn;
  /** Most messages per request of `send` (default 500) and requests in flight (default 32). */
  readonly maxBatch?: number;
  readonly maxInFlight?: number;
  readonly pids: Record<string, number>;
  stop(): Promise<void>;
}

/** What was measured of one system in one scenario. */
export interface SystemResult {
  readonly name: string;
  readonly connections: number;
  readonly fanout: number;
  readonly steps: StepResult[];
  readonly max: StepResult | undefined;
  /** A step at a rate every compared system sustains, for CPU per million deliveries. */
  common?: StepResult;
}

/** Common knobs of a scenario run. */
export interface RunOptions {
  readonly bin: string;
  readonly stepMs: number;
  readonly lagLimitMs: number;
  readonly processes: number;
  /** Midpoint steps after the first failed one (default 2; the quick run takes 1). */
  readonly refine?: number;
}

/** Publishes through a peer's `POST /publish`. */
function peerPublisher(url: string, payloadBytes: number): SendFn {
  const payload = stampedPayload(payloadBytes);
  return async (n) => {
    const messages = [];
    for (let i = 0; i < n; i++) messages.push({ data: payload() });
    const res = await fetch(`${url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) });
    if (!res.ok) throw new Error(`publish ${res.status}`);
    await res.arrayBuffer();
  };
}

/** The all-in-one Switchboard (embedded backends): what one node does. */
export async function switchboardNode(bin: string, payloadBytes: number, channel = 'alerts'): Promise<System> {
  const p = await startSwitchboard(bin, 'start', { ...LOAD_EDGE_ENV, NODE_ID: 'bench-node', SESSION_PORT: '0' });
  return {
    name: 'Switchboard (1 node)',
    url: p.httpUrl,
    targets: [{ host: '127.0.0.1', port: p.port, path: '/ws' }],
    protocol: 'valtronics',
    subscriptions: [{ channel }],
    send: httpPublisher([p.httpUrl], channel, payloadBytes),
    pids: { switchboard: p.child.pid! },
    stop: async () => {
      await p.stop();
    },
  };
}

/** Redis's pid, from INFO (its CPU is part of what a system over Redis costs). */
export async function redisPid(redis: { command(cmd: string): Promise<string> }): Promise<number> {
  return Number(/process_id:(\d+)/.exec(await redis.command('INFO server'))?.[1] ?? 0);
}

/** A Switchboard over Redis: `edges` edge processes, one session service and one redis-server. */
export interface SwitchboardCluster extends System {
  readonly edges: readonly SwitchboardProcess[];
  readonly redisUrl: string;
}

/** Starts 2 (or `edges`) `switchboard edge` processes, a session service and a redis-server; batches through either edge. */
export async function switchboardCluster(bin: string, payloadBytes: number, edgeEnv: Record<string, string> = {}, edgeCount = 2): Promise<SwitchboardCluster> {
  const redis = await startRedis();
  const session = await startSwitchboard(bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'bench-session' }, 20_000, 'SESSION_PORT');
  const env = { ...LOAD_EDGE_ENV, REDIS_URL: redis.url, SWITCHBOARD_SESSION_URL: session.httpUrl, ...edgeEnv };
  const edges = await Promise.all(Array.from({ length: edgeCount }, (_, i) => startSwitchboard(bin, 'edge', { ...env, NODE_ID: `bench-${String.fromCharCode(97 + i)}` })));
  const pids: Record<string, number> = {};
  edges.forEach((e, i) => (pids[`edge-${String.fromCharCode(97 + i)}`] = e.child.pid!));
  pids.redis = await redisPid(redis);
  return {
    name: `Switchboard (${edgeCount} edges + Redis)`,
    url: edges[0]!.httpUrl,
    targets: edges.map((e) => ({ host: '127.0.0.1', port: e.port, path: '/ws' })),
    protocol: 'valtronics',
    subscriptions: [{ channel: 'alerts' }],
    send: httpPublisher(edges.map((e) => e.httpUrl), 'alerts', payloadBytes),
    pids,
    edges,
    redisUrl: redis.url,
    stop: async () => {
      await Promise.all(edges.map((e) => e.stop()));
      await session.stop();
      await redis.stop();
    },
  };
}

/** Bare uWebSockets.js, fed by HTTP batches. */
export async function bareUws(payloadBytes: number): Promise<System> {
  const p = await startPeer('bare-uws');
  return {
    name: 'bare uWebSockets.js',
    url: p.httpUrl,
    targets: [{ host: '127.0.0.1', port: p.port, path: '/bare' }],
    protocol: 'plain',
    subscriptions: [{}],
    send: peerPublisher(p.httpUrl, payloadBytes),
    pids: { 'bare-uws': p.child.pid! },
    stop: () => p.stop(),
  };
}

const SIO_PATH = '/socket.io/?EIO=4&transport=websocket';

/** Socket.IO 4 on one node, fed by HTTP batches. */
export async function socketIo(payloadBytes: number): Promise<System> {
  const p = await startPeer('socketio');
  return {
    name: 'Socket.IO 4 (1 node)',
    url: p.httpUrl,
    targets: [{ host: '127.0.0.1', port: p.port, path: SIO_PATH }],
    protocol: 'socketio',
    subscriptions: [{}],
    send: peerPublisher(p.httpUrl, payloadBytes),
    pids: { socketio: p.child.pid! },
    stop: () => p.stop(),
  };
}

/** Socket.IO on 2 nodes with @socket.io/redis-streams-adapter; publishing through node A. */
export async function socketIoCluster(payloadBytes: number): Promise<System> {
  const redis = await startRedis();
  const [a, b] = await Promise.all([startPeer('socketio', [redis.url]), startPeer('socketio', [redis.url])]);
  const rpid = await redisPid(redis);
  return {
    name: 'Socket.IO 4 + redis-streams-adapter (2 nodes)',
    url: a.httpUrl,
    targets: [a, b].map((p) => ({ host: '127.0.0.1', port: p.port, path: SIO_PATH })),
    protocol: 'socketio',
    subscriptions: [{}],
    send: peerPublisher(a.httpUrl, payloadBytes),
    pids: { 'sio-a': a.child.pid!, 'sio-b': b.child.pid!, redis: rpid },
    stop: async () => {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    },
  };
}

/** Opens `connections` subscribers on a system (valtronics ones authenticated) and waits until all are subscribed. */
export async function openSubscribers(sys: System, o: RunOptions, connections: number, log: (m: string) => void): Promise<LoadGenerator> {
  const tokens = sys.protocol === 'valtronics' ? await devTokens(Math.ceil(connections / 5000) + 1) : [];
  const t0 = wallMs();
  const gen = await LoadGenerator.start(
    { targets: sys.targets, protocol: sys.protocol, tokens, subscriptions: sys.subscriptions, latencyEvery: Math.max(1, Math.floor(connections / 100)) },
    connections,
    o.processes,
  );
  log(`${sys.name}: ${connections} subscribers up in ${((wallMs() - t0) / 1000).toFixed(1)} s`);
  return gen;
}

/** Runs a staircase of publish rates against subscribers already open. */
export async function climb(
  sys: System,
  gen: LoadGenerator,
  o: RunOptions,
  connections: number,
  fanout: number,
  rates: readonly number[],
  skipsAreLoss: boolean,
  log: (m: string) => void,
): Promise<SystemResult> {
  const steps = await staircase(rates, async (rate) => {
    const r = await stepOf(sys, gen, o, rate, fanout, skipsAreLoss);
    log(`${sys.name}: ${rate} msg/s → ${Math.round(r.deliveredPerSec)} deliveries/s, p99 ${r.p99Ms.toFixed(1)} ms, lost ${r.lost}${r.sustained ? '' : r.fellBehind ? ' (not sustained: publisher behind)' : ' (not sustained)'}`);
    return r;
  }, o.refine);
  return { name: sys.name, connections, fanout, steps, max: maxSustained(steps) };
}

/** One step of a system at one rate. */
export function stepOf(sys: System, gen: LoadGenerator, o: RunOptions, rate: number, fanout: number, skipsAreLoss: boolean): Promise<StepResult> {
  return runStep({
    gen,
    send: sys.send,
    rate,
    durationMs: o.stepMs,
    fanout,
    pids: sys.pids,
    lagLimitMs: o.lagLimitMs,
    skipsAreLoss,
    ...(sys.maxBatch !== undefined ? { maxBatch: sys.maxBatch } : {}),
    ...(sys.maxInFlight !== undefined ? { maxInFlight: sys.maxInFlight } : {}),
  });
}

/** Opens subscribers on a system and runs a staircase. */
async function measure(
  sys: System,
  o: RunOptions,
  connections: number,
  fanout: number,
  rates: readonly number[],
  skipsAreLoss: boolean,
  log: (m: string) => void,
): Promise<{ result: SystemResult; gen: LoadGenerator }> {
  const gen = await openSubscribers(sys, o, connections, log);
  try {
    return { result: await climb(sys, gen, o, connections, fanout, rates, skipsAreLoss, log), gen };
  } catch (err) {
    await gen.close();
    throw err;
  }
}

/** Broadcast on one node: Switchboard, bare uWS and Socket.IO, one channel, C subscribers. */
export async function broadcastScenario(o: RunOptions, connections: number, rates: readonly number[], payloadBytes: number, log: (m: string) => void): Promise<SystemResult[]> {
  const makers = [() => bareUws(payloadBytes), () => switchboardNode(o.bin, payloadBytes), () => socketIo(payloadBytes)];
  const measured: { result: SystemResult; sys: System; gen: LoadGenerator }[] = [];
  const results: SystemResult[] = [];
  for (const make of makers) {
    const sys = await make();
    try {
      const { result, gen } = await measure(sys, o, connections, connections, rates, true, log);
      measured.push({ result, sys, gen });
      results.push(result);
    } catch (err) {
      await sys.stop();
      throw err;
    }
  }
  // CPU per delivery is compared at one rate every system sustained (half the lowest maximum of the
  // two uWS-based ones, so neither is near its limit).
  const maxes = results.slice(0, 2).map((r) => r.max?.rate ?? 0);
  const common = Math.max(1, Math.floor(Math.min(...maxes) / 2));
  for (const m of measured) {
    try {
      if (m.result.max && m.result.max.rate >= common) {
        m.result.common = await runStep({ gen: m.gen, send: m.sys.send, rate: common, durationMs: o.stepMs, fanout: connections, pids: m.sys.pids, lagLimitMs: o.lagLimitMs, skipsAreLoss: true });
        log(`${m.sys.name}: common rate ${common} msg/s → ${cpuPerMillion(m.result.common).toFixed(2)} CPU-s per million deliveries`);
      }
    } finally {
      await m.gen.close();
      await m.sys.stop();
    }
  }
  return results;
}

/** Server CPU-seconds per million deliveries in a step. */
export function cpuPerMillion(s: StepResult): number {
  const cpu = Object.values(s.cpuSec).reduce((a, b) => a + b, 0);
  return s.delivered > 0 ? (cpu / s.delivered) * 1e6 : NaN;
}

/** Filtered fan-out on one node: 100 devices × 10 metric projections = 1000 groups, 10 000 subscribers. */
export async function filteredScenario(o: RunOptions, connections: number, rates: readonly number[], log: (m: string) => void): Promise<SystemResult> {
  const devices = 100;
  const variants = 10;
  let n = 0;
  const sys = await switchboardNode(o.bin, 100, 'telemetry');
  const subscriptions: Record<string, unknown>[] = [];
  for (let v = 0; v < variants; v++) for (let d = 0; d < devices; d++) subscriptions.push({ channel: 'telemetry', device_id: d, metrics: ['s', `m${v}`] });
  const metrics = Object.fromEntries(Array.from({ length: variants }, (_, v) => [`m${v}`, { value: v }]));
  const filtered: System = {
    ...sys,
    name: `Switchboard (1 node, ${devices} devices × ${variants} projections)`,
    subscriptions,
    send: async (count) => {
      const messages = [];
      for (let i = 0; i < count; i++) messages.push({ channel: 'telemetry', attrs: { device_id: n++ % devices }, data: { ...metrics, s: wallMs() } });
      await postMessages(sys.url, messages);
    },
  };
  try {
    const { result, gen } = await measure(filtered, o, connections, connections / devices, rates, false, log);
    await gen.close();
    return result;
  } finally {
    await sys.stop();
  }
}

/** The Socket.IO cluster peer, measured like the Switchboard cluster. */
export async function socketIoClusterScenario(o: RunOptions, connections: number, rates: readonly number[], payloadBytes: number, log: (m: string) => void): Promise<SystemResult> {
  const sys = await socketIoCluster(payloadBytes);
  try {
    const { result, gen } = await measure(sys, o, connections, connections, rates, true, log);
    await gen.close();
    return result;
  } finally {
    await sys.stop();
  }
}

/** Results of the idle scenario for one dialect. */
export interface IdleResult {
  readonly dialect: string;
  /** What one connection is (for the report). */
  readonly what: string;
  /** The two connection counts the slope is taken between. */
  readonly counts: readonly [number, number];
  /** RSS of the edge with no connection, at the first count and at the second (each after a full GC). */
  readonly rssBytes: readonly [number, number, number];
  /** The JS heap in use after a full GC at the same points. */
  readonly heapBytes: readonly [number, number, number];
  /** The slope between the two counts: bytes per connection. */
  readonly rssPerConnection: number;
  readonly heapPerConnection: number;
  /** From no connection to the second count, for comparison with the older single-point figure. */
  readonly rssPerConnectionFromZero: number;
  readonly fdLimit: number;
}

function fdLimit(): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

/**
 * How idle connections of one dialect are opened: extra edge settings, and the subscriber spec for an edge
 * on `port` with `connections` connections. A dialect is added here (and in `IdleResult.dialect` readers).
 */
interface IdleDialect {
  readonly what: string;
  prepare(connections: number): Promise<{ env: Record<string, string>; spec: (port: number) => SubscriberSpec }>;
}

/** The dialects the idle scenario can measure. */
export const IDLE_DIALECTS: Record<string, IdleDialect> = {
  valtronics: {
    what: 'authenticated valtronics connections with one subscription each',
    prepare: (connections) =>
      Promise.resolve({
        env: {},
        spec: (port) => ({
          targets: [{ host: '127.0.0.1', port, path: '/ws' }],
          protocol: 'valtronics',
          tokens: [],
          mint: { secret: DEV_JWT_SECRET, users: Math.ceil(connections / 5000) + 1 },
          subscriptions: [{ channel: 'alerts' }],
          latencyEvery: connections,
        }),
      }),
  },
  oisp: {
    what: 'registered oisp devices (each its own channel, RS256 device token, admitted)',
    prepare: () => {
      // A key pair for this run only: the public half is the edge's device key, the private half signs
      // the devices' tokens in the load generator's workers.
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const publicKeyFile = join(mkdtempSync(join(tmpdir(), 'oisp-idle-')), 'public.pem');
      writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
      const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      return Promise.resolve({
        env: { OISP_DEVICE_PUBLIC_KEY_FILE: publicKeyFile },
        spec: (port) => ({
          targets: [{ host: '127.0.0.1', port, path: '/oisp' }],
          protocol: 'oisp',
          tokens: [],
          subscriptions: [{}],
          devices: { privateKeyPem, accountId: 'load-account' },
          latencyEvery: 1_000_000,
        }),
      });
    },
  },
};

/**
 * Idle connections on one edge (with Redis and a session service, as deployed). The memory per connection
 * is the slope between two connection counts (RSS and post-GC JS heap, read after a full GC through the
 * V8 inspector), so the fixed growth of a fresh process (V8's young generation sizing up during the first
 * connection burst) is not divided among the connections: a quick run with few connections and a full
 * run with many measure the same figure.
 */
export async function idleScenario(o: RunOptions, counts: readonly [number, number], log: (m: string) => void, dialect = 'valtronics'): Promise<IdleResult> {
  const d = IDLE_DIALECTS[dialect];
  if (!d) throw new Error(`idle: no dialect "${dialect}"`);
  // An edge needs a few descriptors besides its sockets; this machine's per-process limit caps it.
  const limit = fdLimit();
  const n2 = Math.min(counts[1], limit - 500);
  const n1 = Math.min(counts[0], Math.floor(n2 / 2));
  const prepared = await d.prepare(n2);
  const insp = await inspectOptions();
  const redis = await startRedis();
  const session = await startSwitchboard(o.bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'idle-session' }, 20_000, 'SESSION_PORT');
  const edge = await startSwitchboard(o.bin, 'edge', { ...LOAD_EDGE_ENV, ...prepared.env, REDIS_URL: redis.url, SWITCHBOARD_SESSION_URL: session.httpUrl, NODE_ID: 'idle-edge', ...nodeOptions(insp.nodeOptions) });
  const ins = await Inspector.connect(insp.port);
  const gens: LoadGenerator[] = [];
  const measure = async () => {
    // Settle, collect, let the allocator give pages back, then read.
    await new Promise((r) => setTimeout(r, 2000));
    const heap = await ins.heapUsedAfterGc();
    await new Promise((r) => setTimeout(r, 1000));
    return { rss: rssBytes(edge.child.pid!), heap };
  };
  try {
    const spec = prepared.spec(edge.port);
    const m0 = await measure();
    const processes = (n: number) => Math.max(o.processes, Math.ceil(n / 5000));
    let t0 = wallMs();
    gens.push(await LoadGenerator.start(spec, n1, processes(n1)));
    log(`idle (${dialect}): ${n1} connections up in ${((wallMs() - t0) / 1000).toFixed(1)} s`);
    const m1 = await measure();
    t0 = wallMs();
    gens.push(await LoadGenerator.start(spec, n2 - n1, processes(n2 - n1), n1));
    log(`idle (${dialect}): ${n2} connections up (${n2 - n1} more in ${((wallMs() - t0) / 1000).toFixed(1)} s)`);
    const m2 = await measure();
    const r: IdleResult = {
      dialect,
      what: d.what,
      counts: [n1, n2],
      rssBytes: [m0.rss, m1.rss, m2.rss],
      heapBytes: [m0.heap, m1.heap, m2.heap],
      rssPerConnection: (m2.rss - m1.rss) / (n2 - n1),
      heapPerConnection: (m2.heap - m1.heap) / (n2 - n1),
      rssPerConnectionFromZero: (m2.rss - m0.rss) / n2,
      fdLimit: limit,
    };
    log(`idle (${dialect}): ${(r.rssPerConnection / 1024).toFixed(2)} KB RSS, ${(r.heapPerConnection / 1024).toFixed(2)} KB heap per connection between ${n1} and ${n2}`);
    return r;
  } finally {
    for (const g of gens) await g.close();
    ins.close();
    await edge.stop();
    await session.stop();
    await redis.stop();
  }
}
