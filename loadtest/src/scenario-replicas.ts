/**
 * The cost of acknowledged-means-replicated publishing (`SWITCHBOARD_PUBLISH_MIN_REPLICAS`): a Redis
 * master with one replica, one edge and a session service, measured with 0 (the master's ack) and with 1
 * (the publish script, then `WAIT 1` for the replica, then the announce that makes it visible).
 *
 * At one fixed rate, one message per `POST` with 16 in flight: the publish's acknowledgement latency
 * (p50/p99, request written → response read) and the publish → delivery latency at subscribers. Then the
 * most the edge acknowledges per second, closed-loop: one message per `POST` (16 in flight) and through
 * the publish socket (1,024 frames in flight, coalesced into one script and one `WAIT` per channel run).
 */
import { DEV_API_KEY } from '@switchboard/core';
import { scrapeMetric, startRedis, startRedisReplica, startSwitchboard } from '@switchboard/testkit';
import { LoadGenerator, percentile, runStep, type StepResult } from './generator.js';
import { closedLoop, endpointOf, httpOnePerRequest, wsFrames, type LoopRun } from './publishers.js';
import { redisPid } from './scenarios.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, devTokens, stampedPayload } from './switchboard.js';

/** The figures of one setting. */
export interface ReplicaPoint {
  readonly minReplicas: number;
  readonly ackP50Ms: number;
  readonly ackP99Ms: number;
  /** Delivery latency, loss, CPU at the fixed rate. */
  readonly step: StepResult;
  readonly maxHttp: LoopRun;
  readonly maxSocket: LoopRun;
  /** Script runs that waited for the replica, by outcome. */
  readonly replicated: number;
  readonly notReplicated: number;
}

/** Results of the scenario. */
export interface ReplicasResult {
  readonly rate: number;
  readonly subscribers: number;
  readonly seconds: number;
  readonly points: ReplicaPoint[];
}

const AUTH = { Authorization: `Bearer ${DEV_API_KEY}` };

/** Runs the scenario: `rate` msg/s for `stepMs`, then closed-loop runs of `seconds`. */
export async function replicasScenario(
  o: { bin: string; stepMs: number; lagLimitMs: number; processes: number },
  rate: number,
  subscribers: number,
  seconds: number,
  payloadBytes: number,
  log: (m: string) => void,
): Promise<ReplicasResult> {
  const master = await startRedis();
  const replica = await startRedisReplica(master).catch(async (err: unknown) => {
    await master.stop();
    throw err;
  });
  const points: ReplicaPoint[] = [];
  try {
    const session = await startSwitchboard(o.bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: master.url, NODE_ID: 'replicas-session' }, 20_000, 'SESSION_PORT');
    try {
      const pids = { redis: await redisPid(master), replica: await redisPid(replica) };
      const payload = stampedPayload(payloadBytes);
      const body = () => `{"channel":"alerts","data":${JSON.stringify(payload())}}`;
      for (const minReplicas of [0, 1]) {
        const edge = await startSwitchboard(o.bin, 'edge', {
          ...LOAD_EDGE_ENV,
          REDIS_URL: master.url,
          SWITCHBOARD_SESSION_URL: session.httpUrl,
          SWITCHBOARD_PUBLISH_MIN_REPLICAS: String(minReplicas),
          NODE_ID: `replicas-${minReplicas}`,
        });
        try {
          const gen = await LoadGenerator.start(
            { targets: [{ host: '127.0.0.1', port: edge.port, path: '/ws' }], protocol: 'valtronics', tokens: await devTokens(1), subscriptions: [{ channel: 'alerts' }], latencyEvery: 1 },
            subscribers,
            Math.min(2, o.processes),
          );
          const ep = endpointOf(edge.httpUrl);
          const http = httpOnePerRequest([ep], '/api/publish', AUTH, body, 16);
          let step: StepResult;
          let acks: number[];
          let maxHttp: LoopRun;
          let maxSocket: LoopRun;
          try {
            // Warm-up: connections, scripts, JIT.
            await closedLoop(http.send, 1, 16, 0.3);
            http.takeLatencies();
            step = await runStep({ gen, send: http.send, rate, durationMs: o.stepMs, fanout: subscribers, pids: { edge: edge.child.pid!, ...pids }, lagLimitMs: o.lagLimitMs, skipsAreLoss: true, maxBatch: 1, maxInFlight: 16 });
            acks = http.takeLatencies().sort((a, b) => a - b);
          } finally {
            await gen.close();
          }
          try {
            maxHttp = await closedLoop(http.send, 1, 16, seconds);
          } finally {
            http.close();
          }
          const sock = await wsFrames(ep, '/api/publish/ws', AUTH, (id) => `{"id":${id},${body().slice(1)}`, true);
          try {
            maxSocket = await closedLoop(sock.send, 64, 16, seconds);
          } finally {
            sock.close();
          }
          const point: ReplicaPoint = {
            minReplicas,
            ackP50Ms: percentile(acks, 50),
            ackP99Ms: percentile(acks, 99),
            step,
            maxHttp,
            maxSocket,
            replicated: await scrapeMetric(edge.httpUrl, 'switchboard_bus_replica_waits_total', { outcome: 'replicated' }),
            notReplicated: await scrapeMetric(edge.httpUrl, 'switchboard_bus_replica_waits_total', { outcome: 'not_replicated' }),
          };
          points.push(point);
          log(
            `replicas: min ${minReplicas}: ack p50 ${point.ackP50Ms.toFixed(2)} / p99 ${point.ackP99Ms.toFixed(2)} ms, delivery p50 ${step.p50Ms.toFixed(2)} / p99 ${step.p99Ms.toFixed(2)} ms at ${rate} msg/s (lost ${step.lost}); max ${Math.round(maxHttp.perSec)} msg/s one per POST, ${Math.round(maxSocket.perSec)} msg/s over the socket${maxHttp.errors + maxSocket.errors ? ` (${maxHttp.errors + maxSocket.errors} refused: ${maxHttp.firstError ?? maxSocket.firstError})` : ''}`,
          );
        } finally {
          await edge.stop();
        }
      }
    } finally {
      await session.stop();
    }
  } finally {
    await replica.stop();
    await master.stop();
  }
  return { rate, subscribers, seconds, points };
}
