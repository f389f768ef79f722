/**
 * Scenarios measured side by side with the same generator: broadcast on one node (Switchboard,
 * bare uWebSockets.js, Socket.IO), filtered fan-out, idle connections, and the horizontally scaled
 * Socket.IO peer (2 nodes + Redis Streams adapter).
 */
import { readFileSync } from 'node:fs';
import { DEV_API_KEY } from '@switchboard/core';
import { startRedis, startSwitchboard } from '@switchboard/testkit';
import { rssBytes } from './cpu.js';
import { LoadGenerator, maxSustained, runStep, staircase, type SendFn, type StepResult } from './generator.js';
import { startPeer } from './peers/index.js';
import { wallMs, type SubscriberSpec, type WireProtocol } from './protocol.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, devTokens, httpPublisher, stampedPayload } from './switchboard.js';

/** A system under test, ready for subscribers. */
interface System {
  readonly name: string;
  /** HTTP base URL of the (first) node. */
  readonly url: string;
  readonly targets: SubscriberSpec['targets'];
  readonly protocol: WireProtocol;
  readonly subscriptions: readonly Record<string, unknown>[];
  readonly send: SendFn;
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

async function bareUws(payloadBytes: number): Promise<System> {
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

async function socketIo(payloadBytes: number): Promise<System> {
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
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.command('INFO server'))?.[1] ?? 0);
  return {
    name: 'Socket.IO 4 + redis-streams-adapter (2 nodes)',
    url: a.httpUrl,
    targets: [a, b].map((p) => ({ host: '127.0.0.1', port: p.port, path: SIO_PATH })),
    protocol: 'socketio',
    subscriptions: [{}],
    send: peerPublisher(a.httpUrl, payloadBytes),
    pids: { 'sio-a': a.child.pid!, 'sio-b': b.child.pid!, redis: redisPid },
    stop: async () => {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    },
  };
}

/** Opens subscribers on a system, runs a staircase, and optionally a step at a common rate. */
async function measure(
  sys: System,
  o: RunOptions,
  connections: number,
  fanout: number,
  rates: readonly number[],
  skipsAreLoss: boolean,
  log: (m: string) => void,
): Promise<{ result: SystemResult; gen: LoadGenerator }> {
  const tokens = sys.protocol === 'valtronics' ? await devTokens(Math.ceil(connections / 5000) + 1) : [];
  const t0 = wallMs();
  const gen = await LoadGenerator.start(
    { targets: sys.targets, protocol: sys.protocol, tokens, subscriptions: sys.subscriptions, latencyEvery: Math.max(1, Math.floor(connections / 100)) },
    connections,
    o.processes,
  );
  log(`${sys.name}: ${connections} subscribers up in ${((wallMs() - t0) / 1000).toFixed(1)} s`);
  const steps = await staircase(rates, async (rate) => {
    const r = await runStep({ gen, send: sys.send, rate, durationMs: o.stepMs, fanout, pids: sys.pids, lagLimitMs: o.lagLimitMs, skipsAreLoss });
    log(`${sys.name}: ${rate} msg/s → ${Math.round(r.deliveredPerSec)} deliveries/s, p99 ${r.p99Ms.toFixed(1)} ms, lost ${r.lost}${r.sustained ? '' : ' (not sustained)'}`);
    return r;
  });
  return { result: { name: sys.name, connections, fanout, steps, max: maxSustained(steps) }, gen };
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
      const res = await fetch(`${sys.url}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
        body: JSON.stringify({ messages }),
      });
      if (!res.ok) throw new Error(`publish ${res.status}`);
      await res.arrayBuffer();
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

/** Results of the idle scenario. */
export interface IdleResult {
  readonly connections: number;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly bytesPerConnection: number;
  readonly fdLimit: number;
}

function fdLimit(): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

/**
 * Idle connections on one edge (with Redis and a session service, as deployed): each authenticated
 * with one subscription; RSS growth of the edge per connection.
 */
export async function idleScenario(o: RunOptions, wanted: number, log: (m: string) => void): Promise<IdleResult> {
  // An edge needs a few descriptors besides its sockets; this machine's per-process limit caps it.
  const limit = fdLimit();
  const connections = Math.min(wanted, limit - 500);
  const redis = await startRedis();
  const session = await startSwitchboard(o.bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'idle-session' }, 20_000, 'SESSION_PORT');
  const edge = await startSwitchboard(o.bin, 'edge', { ...LOAD_EDGE_ENV, REDIS_URL: redis.url, SWITCHBOARD_SESSION_URL: session.httpUrl, NODE_ID: 'idle-edge' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssBytes(edge.child.pid!);
    const t0 = wallMs();
    const gen = await LoadGenerator.start(
      {
        targets: [{ host: '127.0.0.1', port: edge.port, path: '/ws' }],
        protocol: 'valtronics',
        tokens: await devTokens(Math.ceil(connections / 5000) + 1),
        subscriptions: [{ channel: 'alerts' }],
        latencyEvery: connections,
      },
      connections,
      Math.max(o.processes, Math.ceil(connections / 5000)),
    );
    log(`idle: ${connections} connections up in ${((wallMs() - t0) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 3000));
    const after = rssBytes(edge.child.pid!);
    await gen.close();
    return { connections, rssBeforeBytes: before, rssAfterBytes: after, bytesPerConnection: (after - before) / connections, fdLimit: limit };
  } finally {
    await edge.stop();
    await session.stop();
    await redis.stop();
  }
}
