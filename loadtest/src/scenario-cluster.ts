/**
 * The cluster scenario: a real Redis and two edge processes, subscribers split across both, publishing
 * through either. Measures the max sustained delivery rate (staircase), latency at 50 % of it, the bus
 * publish rate through one Redis, and Redis's own XADD rate (redis-benchmark) in the same run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisStreamsBus } from '@switchboard/bus';
import { createLogger } from '@switchboard/core';
import { startRedis, startSwitchboard } from '@switchboard/testkit';
import { LoadGenerator, maxSustained, runStep, staircase, type StepResult } from './generator.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, devTokens, httpPublisher, stampedPayload } from './switchboard.js';
import { wallMs } from './protocol.js';

const run = promisify(execFile);

/** Results of the cluster scenario. */
export interface ClusterResult {
  readonly connections: number;
  readonly payloadBytes: number;
  readonly steps: StepResult[];
  readonly max: StepResult | undefined;
  readonly atHalf: StepResult | undefined;
  /** Messages/s through our publish Lua (bus publish, 256 in flight), no HTTP. */
  readonly busPublishPerSec: number;
  /** Messages/s through the batch Lua (publishBatch of 100 messages of one channel, 16 in flight). */
  readonly busBatchPublishPerSec: number;
  /** redis-benchmark XADD requests/s (pipelined 16, 50 clients) against the same Redis. */
  readonly redisXaddPerSec: number;
}

/** Runs `redis-benchmark` XADD (50 clients, pipeline 16) against a server and returns its requests/s. */
export async function redisBenchmarkXadd(port: number, payloadBytes: number, requests: number): Promise<number> {
  const { stdout } = await run(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(port), '-c', '50', '-P', '16', '-n', String(requests), '-q', 'XADD', 'bench:xadd', 'MAXLEN', '~', '10000', '*', 'p', 'x'.repeat(payloadBytes)],
    { timeout: 120_000 },
  );
  const m = /([\d.]+) requests per second/.exec(stdout);
  if (!m) throw new Error(`unexpected redis-benchmark output: ${stdout}`);
  return Number(m[1]);
}

async function busPublishRate(url: string, seconds: number, payloadBytes: number, batch: number): Promise<number> {
  const bus = await RedisStreamsBus.connect({
    target: { url, cluster: false },
    shards: 64,
    feedMaxLen: 10_000,
    blockMs: 2000,
    readCount: 1000,
    historySize: 1000,
    historyTtlSec: 600,
    logger: createLogger({ name: 'bench', level: 'silent' }),
    nodeId: 'bench-publisher',
  });
  const payload = stampedPayload(payloadBytes);
  let done = 0;
  const end = wallMs() + seconds * 1000;
  const lane = async (k: number) => {
    const channel = `bench.bus.${k % 16}`;
    while (wallMs() < end) {
      if (batch === 1) await bus.publish({ channel, attrs: {}, data: JSON.stringify(payload()) });
      else await bus.publishBatch(Array.from({ length: batch }, () => ({ channel, attrs: {}, data: JSON.stringify(payload()) })));
      done += batch;
    }
  };
  const t0 = wallMs();
  await Promise.all(Array.from({ length: batch === 1 ? 256 : 16 }, (_, k) => lane(k)));
  const rate = done / ((wallMs() - t0) / 1000);
  await bus.close();
  return rate;
}

/** Runs the cluster scenario with the switchboard binary at `bin`. */
export async function clusterScenario(o: { bin: string; connections: number; rates: number[]; stepMs: number; payloadBytes: number; lagLimitMs: number; processes: number }): Promise<ClusterResult> {
  const redis = await startRedis();
  const session = await startSwitchboard(o.bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'bench-session' }, 20_000, 'SESSION_PORT');
  const env = { ...LOAD_EDGE_ENV, REDIS_URL: redis.url, SWITCHBOARD_SESSION_URL: session.httpUrl };
  const edges = await Promise.all([
    startSwitchboard(o.bin, 'edge', { ...env, NODE_ID: 'bench-a' }),
    startSwitchboard(o.bin, 'edge', { ...env, NODE_ID: 'bench-b' }),
  ]);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.command('INFO server'))?.[1] ?? 0);
  try {
    const tokens = await devTokens(Math.ceil(o.connections / 1000) + 1);
    const gen = await LoadGenerator.start(
      {
        targets: edges.map((e) => ({ host: '127.0.0.1', port: e.port, path: '/ws' })),
        protocol: 'valtronics',
        tokens,
        subscriptions: [{ channel: 'alerts' }],
        latencyEvery: Math.max(1, Math.floor(o.connections / 50)),
      },
      o.connections,
      o.processes,
    );
    const send = httpPublisher(edges.map((e) => e.httpUrl), 'alerts', o.payloadBytes);
    const pids = { 'edge-a': edges[0].child.pid!, 'edge-b': edges[1].child.pid!, redis: redisPid };
    const step = (rate: number) =>
      runStep({ gen, send, rate, durationMs: o.stepMs, fanout: o.connections, pids, lagLimitMs: o.lagLimitMs, skipsAreLoss: true });
    const steps = await staircase(o.rates, step);
    const max = maxSustained(steps);
    const atHalf = max ? await step(Math.max(1, Math.round(max.rate / 2))) : undefined;
    await gen.close();
    const busPublishPerSec = await busPublishRate(redis.url, o.stepMs / 1000, o.payloadBytes, 1);
    const busBatchPublishPerSec = await busPublishRate(redis.url, o.stepMs / 1000, o.payloadBytes, 100);
    const redisXaddPerSec = await redisBenchmarkXadd(redis.port, o.payloadBytes, 200_000);
    return { connections: o.connections, payloadBytes: o.payloadBytes, steps, max, atHalf, busPublishPerSec, busBatchPublishPerSec, redisXaddPerSec };
  } finally {
    await Promise.all(edges.map((e) => e.stop()));
    await session.stop();
    await redis.stop();
  }
}
