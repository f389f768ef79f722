/**
 * Publishing through Redis: how many messages per second the publish API gets acknowledged through one
 * Redis master, next to Redis's own XADD rate measured in the same run (`redis-benchmark`), and through a
 * 3-master Redis Cluster with the same edge and the same publishers. No subscribers: this is the write
 * path alone. Every driver runs closed-loop (as fast as acknowledgements come back) over 16 channels:
 *
 * - one message per `POST`, 16 in flight;
 * - the persistent publish socket, one message per frame, 1,024 frames in flight (coalesced by the bus);
 * - the publish socket, batches of 100 messages of one channel per frame, 16 frames in flight;
 * - `POST` batches of 100 messages of one channel, 16 in flight.
 *
 * Server CPU per process is recorded for each run, so where the limit is (the edge, Redis, the machine)
 * shows, and Redis's CPU per message is compared with its CPU per XADD.
 */
import { DEV_API_KEY } from '@switchboard/core';
import { startRedis, startRedisCluster, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { cpuSeconds } from './cpu.js';
import { closedLoop, endpointOf, httpOnePerRequest, wsFrames, type LoopRun, type Publisher } from './publishers.js';
import { redisBenchmarkXadd } from './scenario-cluster.js';
import { redisPid } from './scenarios.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, stampedPayload } from './switchboard.js';

/** One driver's run. */
export interface RedisDriverRun extends LoopRun {
  readonly driver: string;
  /** CPU-s per process during the run. */
  readonly cpuSec: Record<string, number>;
}

/** One Redis deployment's runs. */
export interface RedisTargetRuns {
  readonly target: string;
  readonly masters: number;
  readonly runs: RedisDriverRun[];
}

/** Results of the scenario. */
export interface RedisPublishResult {
  readonly seconds: number;
  readonly channels: number;
  readonly payloadBytes: number;
  /** `redis-benchmark` XADD requests/s on the single master, and that server's CPU-s per million XADDs. */
  readonly xaddPerSec: number;
  readonly xaddRedisCpuUsPerOp: number;
  readonly single: RedisTargetRuns;
  readonly cluster: RedisTargetRuns;
}

const CHANNELS = 16;
const AUTH = { Authorization: `Bearer ${DEV_API_KEY}` };

interface Driver {
  readonly name: string;
  readonly perSend: number;
  readonly inFlight: number;
  make(edge: SwitchboardProcess): Promise<Publisher>;
}

function drivers(payloadBytes: number): Driver[] {
  const payload = stampedPayload(payloadBytes);
  let k = 0;
  const one = () => `{"tenant":"t${k++ % CHANNELS}","channel":"alerts","data":${JSON.stringify(payload())}}`;
  const batch = () => {
    const tenant = `t${k++ % CHANNELS}`;
    return JSON.stringify({ tenant, messages: Array.from({ length: 100 }, () => ({ channel: 'alerts', data: payload() })) });
  };
  return [
    { name: 'POST, one message per request, 16 in flight', perSend: 1, inFlight: 16, make: (e) => Promise.resolve(httpOnePerRequest([endpointOf(e.httpUrl)], '/api/publish', AUTH, one, 16)) },
    { name: 'publish socket, one message per frame, 1,024 in flight', perSend: 64, inFlight: 16, make: (e) => wsFrames(endpointOf(e.httpUrl), '/api/publish/ws', AUTH, (id) => `{"id":${id},${one().slice(1)}`, true) },
    {
      name: 'publish socket, 100 messages per frame, 16 in flight',
      perSend: 100,
      inFlight: 16,
      make: async (e) => {
        const ws = await wsFrames(endpointOf(e.httpUrl), '/api/publish/ws', AUTH, (id) => `{"id":${id},${batch().slice(1)}`, true);
        // One frame carries 100 messages: send(100) is one frame.
        return { ...ws, send: (n) => ws.send(n / 100) };
      },
    },
    {
      name: 'POST, 100 messages per request, 16 in flight',
      perSend: 100,
      inFlight: 16,
      make: (e) => {
        const p = httpOnePerRequest([endpointOf(e.httpUrl)], '/api/publish', AUTH, batch, 16);
        return Promise.resolve({ ...p, send: (n) => p.send(n / 100) });
      },
    },
  ];
}

async function runDrivers(bin: string, target: { url: string; cluster: boolean; pids: Record<string, number> }, seconds: number, payloadBytes: number, log: (m: string) => void, label: string): Promise<RedisDriverRun[]> {
  const clusterEnv: Record<string, string> = target.cluster ? { REDIS_CLUSTER: 'true' } : {};
  const session = await startSwitchboard(bin, 'session', { ...LOAD_SESSION_ENV, ...clusterEnv, REDIS_URL: target.url, NODE_ID: 'redis-session' }, 30_000, 'SESSION_PORT');
  const edge = await startSwitchboard(bin, 'edge', { ...LOAD_EDGE_ENV, ...clusterEnv, REDIS_URL: target.url, SWITCHBOARD_SESSION_URL: session.httpUrl, NODE_ID: 'redis-edge' }, 30_000);
  const pids = { edge: edge.child.pid!, ...target.pids };
  const runs: RedisDriverRun[] = [];
  try {
    for (const d of drivers(payloadBytes)) {
      const pub = await d.make(edge);
      try {
        // A short warm-up: connections opened, scripts loaded, JIT warm.
        await closedLoop(pub.send, d.perSend, d.inFlight, 0.3);
        const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
        const r = await closedLoop(pub.send, d.perSend, d.inFlight, seconds);
        const cpuSec = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) - cpu0[k]!]));
        runs.push({ driver: d.name, ...r, cpuSec });
        log(`redis (${label}): ${d.name} → ${Math.round(r.perSec)} msg/s${r.errors ? `, ${r.errors} refused (${r.firstError})` : ''}; CPU ${Object.entries(cpuSec).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
      } finally {
        pub.close();
      }
    }
  } finally {
    await edge.stop();
    await session.stop();
  }
  return runs;
}

/** Runs the scenario: each driver for `seconds` on one master, then on a 3-master cluster. */
export async function redisPublishScenario(bin: string, seconds: number, payloadBytes: number, xaddRequests: number, log: (m: string) => void): Promise<RedisPublishResult> {
  const redis = await startRedis();
  let single: RedisTargetRuns;
  let xaddPerSec: number;
  let xaddRedisCpuUsPerOp: number;
  try {
    const pid = await redisPid(redis);
    const c0 = cpuSeconds(pid);
    xaddPerSec = await redisBenchmarkXadd(redis.port, payloadBytes, xaddRequests);
    xaddRedisCpuUsPerOp = ((cpuSeconds(pid) - c0) / xaddRequests) * 1e6;
    log(`redis: redis-benchmark XADD ${Math.round(xaddPerSec)} req/s (${xaddRedisCpuUsPerOp.toFixed(2)} µs Redis CPU each)`);
    await redis.command('FLUSHALL');
    single = { target: 'one Redis master', masters: 1, runs: await runDrivers(bin, { url: redis.url, cluster: false, pids: { redis: pid } }, seconds, payloadBytes, log, 'one master') };
  } finally {
    await redis.stop();
  }
  const cluster = await startRedisCluster(3);
  let clusterRuns: RedisTargetRuns;
  try {
    const pids: Record<string, number> = {};
    for (let i = 0; i < cluster.masters.length; i++) pids[`redis-${i + 1}`] = await redisPid(cluster.masters[i]!);
    clusterRuns = { target: '3-master Redis Cluster', masters: 3, runs: await runDrivers(bin, { url: cluster.url, cluster: true, pids }, seconds, payloadBytes, log, '3-master cluster') };
  } finally {
    await cluster.stop();
  }
  return { seconds, channels: CHANNELS, payloadBytes, xaddPerSec, xaddRedisCpuUsPerOp, single, cluster: clusterRuns };
}
