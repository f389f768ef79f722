/** The performance targets of the benchmark, checked against one run's figures. */
import type { StepResult } from './generator.js';
import type { ChannelsResult } from './scenario-channels.js';
import type { GroupsResult } from './scenario-groups.js';
import type { PublishSingleResult } from './scenario-publish.js';
import type { RedisPublishResult, RedisTargetRuns } from './scenario-redis.js';
import type { ReplicasResult } from './scenario-replicas.js';
import type { SlowResult } from './scenario-slow.js';
import { cpuPerMillion, type IdleResult, type SystemResult } from './scenarios.js';

/** One target and whether this run met it. */
export interface TargetLine {
  readonly target: string;
  readonly measured: string;
  readonly pass: boolean;
}

const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');

function ratioLine(target: string, ours: StepResult | undefined, peer: StepResult | undefined, min: number): TargetLine {
  if (!ours || !peer) return { target, measured: 'not measured (no sustained step)', pass: false };
  const r = ours.deliveredPerSec / peer.deliveredPerSec;
  return { target, measured: `${f(ours.deliveredPerSec)} vs ${f(peer.deliveredPerSec)} deliveries/s = ${f(r, 2)}×`, pass: r >= min };
}

/**
 * The generator's own latency at about the same load: bare uWS's p99 in this run at its sustained step
 * nearest in deliveries/s to `step` (the generator shares the machine, so its p99 is a floor for everyone's).
 */
export function latencyFloor(step: StepResult, bareSteps: readonly StepResult[] | undefined): string {
  let best: StepResult | undefined;
  for (const b of bareSteps ?? []) {
    if (!b.sustained) continue;
    if (!best || Math.abs(Math.log(b.deliveredPerSec / step.deliveredPerSec)) < Math.abs(Math.log(best.deliveredPerSec / step.deliveredPerSec))) best = b;
  }
  if (!best) return '';
  return ` (${f(step.deliveredPerSec)} deliveries/s; bare uWS with the same generator at ${f(best.deliveredPerSec)} deliveries/s: p99 ${f(best.p99Ms, 1)} ms)`;
}

/** The best closed-loop rate of a deployment's drivers, and which driver it was. */
export function bestRun(t: RedisTargetRuns): { driver: string; perSec: number; redisCpuUsPerMessage: number; edgeCores: number } {
  const best = [...t.runs].sort((a, b) => b.perSec - a.perSec)[0];
  if (!best) return { driver: 'none', perSec: NaN, redisCpuUsPerMessage: NaN, edgeCores: NaN };
  const redisCpu = Object.entries(best.cpuSec).filter(([k]) => k.startsWith('redis')).reduce((a, [, v]) => a + v, 0);
  return { driver: best.driver, perSec: best.perSec, redisCpuUsPerMessage: (redisCpu / best.messages) * 1e6, edgeCores: (best.cpuSec.edge ?? NaN) / best.seconds };
}

/**
 * The idle figures of the last full run (docs/bench/idle.json, written by `npm run bench`): the quick run's
 * idle lines are checked against them (the same figure ±10 % in both).
 */
export interface IdleReference {
  /** When the full run measured them (ISO date). */
  readonly date: string;
  readonly dialects: Readonly<Record<string, { readonly rssPerConnection: number; readonly counts: readonly [number, number] }>>;
}

/** Everything one run may hold. */
export interface RunResults {
  broadcast?: Record<string, SystemResult[]>;
  publishSingle?: PublishSingleResult;
  cluster?: { max: StepResult | undefined; atHalf: StepResult | undefined; steps: StepResult[] };
  socketioCluster?: SystemResult;
  clusterCommonRate?: number;
  filtered?: SystemResult;
  groups?: GroupsResult;
  channels?: ChannelsResult;
  redis?: RedisPublishResult;
  idle?: IdleResult[];
  /** The quick run only: the last full run's idle figures, to agree with. */
  idleReference?: IdleReference;
  replicas?: ReplicasResult;
  slow?: SlowResult;
}

/** Evaluates every target that the run measured. */
export function evaluate(r: RunResults): TargetLine[] {
  const lines: TargetLine[] = [];
  for (const [c, systems] of Object.entries(r.broadcast ?? {})) {
    const [bare, ours, sio] = systems;
    lines.push(ratioLine(`broadcast (batched publishes), ${c} subscribers: max sustained ≥ 80 % of bare uWS`, ours?.max, bare?.max, 0.8));
    lines.push(ratioLine(`broadcast (batched publishes), ${c} subscribers: max sustained ≥ 8× Socket.IO (1 node)`, ours?.max, sio?.max, 8));
    if (ours?.common && bare?.common) {
      const o = cpuPerMillion(ours.common);
      const b = cpuPerMillion(bare.common);
      lines.push({
        target: `broadcast, ${c} subscribers: server CPU-s per million deliveries ≤ 1.25× bare uWS (at ${f(ours.common.rate)} msg/s)`,
        measured: `${f(o, 2)} vs ${f(b, 2)} CPU-s = ${f(o / b, 2)}×`,
        pass: o / b <= 1.25,
      });
    } else lines.push({ target: `broadcast, ${c} subscribers: CPU-s per million deliveries ≤ 1.25× bare uWS`, measured: 'not measured', pass: false });
  }
  if (r.publishSingle) {
    const p = r.publishSingle;
    const by = (id: string) => p.systems.find((s) => (s as SystemResult & { id?: string }).id === id)?.max;
    const c = `${f(p.connections)} subscribers`;
    lines.push(ratioLine(`publish one message per request (${p.inFlight} in flight), ${c}: Switchboard 1 node ≥ 0.8× bare uWS`, by('node-http'), by('bare'), 0.8));
    lines.push(ratioLine(`publish one message per request, ${c}: Switchboard 1 node ≥ 8× Socket.IO 1 node`, by('node-http'), by('sio'), 8));
    lines.push(ratioLine(`publish one message per request, ${c}: Switchboard 2 edges + Redis ≥ 6× Socket.IO + Redis Streams adapter (2 nodes)`, by('cluster-http'), by('sio-cluster'), 6));
    const half = p.clusterAtHalf;
    lines.push({
      target: 'publish one message per request: 2 edges, p99 ≤ 30 ms at 50 % of max',
      measured: half ? `${f(half.p99Ms, 1)} ms at ${f(half.rate)} msg/s${latencyFloor(half, p.systems.find((s) => (s as SystemResult & { id?: string }).id === 'bare')?.steps)}` : 'not measured',
      pass: !!half && half.sustained && half.p99Ms <= 30,
    });
    lines.push(ratioLine(`persistent publish socket, ${c}: Switchboard 1 node ≥ 0.9× bare uWS`, by('node-socket'), by('bare'), 0.9));
  }
  if (r.cluster) {
    lines.push(ratioLine('cluster (batched publishes): max sustained ≥ 6× Socket.IO + redis-streams-adapter (2 nodes)', r.cluster.max, r.socketioCluster?.max, 6));
    const rate = r.clusterCommonRate ?? 0;
    const ours = r.cluster.steps.find((s) => s.rate === rate);
    const sio = r.socketioCluster?.steps.find((s) => s.rate === rate);
    if (ours && sio) {
      const o = cpuPerMillion(ours);
      const p = cpuPerMillion(sio);
      lines.push({
        target: `cluster (context): server CPU-s per million deliveries vs Socket.IO cluster, at ${f(rate)} msg/s`,
        measured: `${f(o, 2)} vs ${f(p, 2)} CPU-s — Socket.IO costs ${f(p / o, 2)}× ours`,
        pass: p > o,
      });
    }
    const half = r.cluster.atHalf;
    // The broadcast scenario's bare uWS with its fewest subscribers (1,000; batched publishes) is the nearest in shape.
    const fewest = Object.keys(r.broadcast ?? {}).sort((a, b) => Number(a) - Number(b))[0];
    const bare = fewest === undefined ? undefined : r.broadcast![fewest]![0]?.steps;
    lines.push({
      target: 'cluster (batched publishes): p99 ≤ 30 ms at 50 % of max',
      measured: half ? `${f(half.p99Ms, 1)} ms at ${f(half.rate)} msg/s${latencyFloor(half, bare)}` : 'not measured',
      pass: !!half && half.p99Ms <= 30,
    });
  }
  if (r.groups && r.groups.points.length >= 2) {
    const pts = [...r.groups.points].sort((a, b) => a.groups - b.groups);
    const lo = pts[0]!;
    const hi = pts[pts.length - 1]!;
    const ratio = hi.netCpuUsPerMessage / lo.netCpuUsPerMessage;
    // Bare uWS doing the same sends to as many sockets: the growth that is not the hub's.
    const bare = [...(r.groups.bare ?? [])].sort((a, b) => a.groups - b.groups);
    const bareLo = bare[0];
    const bareHi = bare[bare.length - 1];
    const bareText = bareLo && bareHi && bare.length >= 2 ? `; bare uWS, ws.send to one of ${f(bareHi.groups)} vs ${f(bareLo.groups)} sockets: ${f(bareHi.netCpuUsPerMessage, 1)} vs ${f(bareLo.netCpuUsPerMessage, 1)} µs = ${f(bareHi.netCpuUsPerMessage / bareLo.netCpuUsPerMessage, 2)}×` : '';
    lines.push({
      target: `filtered, one matching group per message: CPU per message with ${f(hi.groups)} groups ≤ 1.2× with ${f(lo.groups)}`,
      measured: `${f(hi.netCpuUsPerMessage, 1)} vs ${f(lo.netCpuUsPerMessage, 1)} µs = ${f(ratio, 2)}× (at ${f(r.groups.rate)} msg/s, net of idle)${bareText}`,
      pass: ratio <= 1.2 && hi.step.lost === 0 && lo.step.lost === 0,
    });
  }
  if (r.channels) {
    const ch = r.channels;
    lines.push(ratioLine(`many channels (${f(ch.channels)}, one subscriber each): deliveries/s ≥ 0.8× bare uWS per-socket sends`, ch.switchboard.max, ch.bare.max, 0.8));
    lines.push({
      target: 'many channels: ≤ 1 KB edge memory (RSS) per idle channel subscription',
      measured: `${f(ch.rssPerChannelBytes / 1024, 2)} KB RSS (${f(ch.heapPerChannelBytes / 1024, 2)} KB JS heap) per channel`,
      pass: ch.rssPerChannelBytes <= 1024,
    });
  }
  if (r.redis) {
    const one = bestRun(r.redis.single);
    const three = bestRun(r.redis.cluster);
    lines.push({
      target: 'publish API through one Redis ≥ 50 % of redis-benchmark XADD (same run)',
      // Where the limit is: Redis's CPU per message against its CPU per XADD says what one Redis core could
      // carry; the edge's cores say whether the edge (one process) ran out first.
      measured: `${f(one.perSec)} msg/s (${one.driver}) vs XADD ${f(r.redis.xaddPerSec)} req/s = ${f((100 * one.perSec) / r.redis.xaddPerSec)} %; Redis CPU ${f(one.redisCpuUsPerMessage, 2)} µs per message vs ${f(r.redis.xaddRedisCpuUsPerOp, 2)} per XADD (one Redis core would carry ${f((100 * r.redis.xaddRedisCpuUsPerOp) / one.redisCpuUsPerMessage)} % of the XADD rate), edge ${f(one.edgeCores, 2)} cores busy`,
      pass: one.perSec >= 0.5 * r.redis.xaddPerSec,
    });
    lines.push({
      target: 'publish API through a 3-master Redis Cluster ≥ 2.5× one master',
      measured: `${f(three.perSec)} vs ${f(one.perSec)} msg/s = ${f(three.perSec / one.perSec, 2)}× (best driver each; one edge publishing, ${f(three.edgeCores, 2)} and ${f(one.edgeCores, 2)} cores busy)`,
      pass: three.perSec >= 2.5 * one.perSec,
    });
  }
  for (const idle of r.idle ?? []) {
    const kb = idle.rssPerConnection / 1024;
    lines.push({
      target: `idle (${idle.dialect}): ≤ 5 KB RSS per connection (slope between two counts)`,
      measured: `${f(kb, 2)} KB RSS, ${f(idle.heapPerConnection / 1024, 2)} KB JS heap, between ${f(idle.counts[0])} and ${f(idle.counts[1])} connections`,
      pass: kb <= 5,
    });
    const ref = r.idleReference?.dialects[idle.dialect];
    if (ref) {
      const diff = idle.rssPerConnection / ref.rssPerConnection - 1;
      lines.push({
        target: `idle (${idle.dialect}): the quick run's RSS per connection within ±10 % of the last full run's`,
        measured: `${f(kb, 2)} vs ${f(ref.rssPerConnection / 1024, 2)} KB (full run of ${r.idleReference!.date}, between ${f(ref.counts[0])} and ${f(ref.counts[1])}) = ${diff >= 0 ? '+' : ''}${f(100 * diff, 1)} %`,
        pass: Math.abs(diff) <= 0.1,
      });
    }
  }
  if (r.slow) {
    const s = r.slow;
    const mib = (b: number) => f(b / 2 ** 20, 1);
    lines.push({
      target: `slow consumers: ${s.readers} paused readers cost ≤ 50 MB of peak RSS over the same flood without them (median of rounds)`,
      measured: `+${mib(s.medianCostBytes)} MiB (with readers ${s.rounds.map((x) => `+${mib(x.withReaders.peakDeltaBytes)}`).join(', ')}; without ${s.rounds.map((x) => `+${mib(x.alone.peakDeltaBytes)}`).join(', ')} MiB)`,
      pass: s.medianCostBytes <= 50 * 2 ** 20,
    });
    const short = s.rounds.filter((x) => x.withReaders.healthyReceived < x.withReaders.published || x.alone.healthyReceived < x.alone.published);
    lines.push({
      target: 'slow consumers: the reader that keeps reading gets every message',
      measured: `${s.rounds.length - short.length} of ${s.rounds.length} rounds complete (${f(s.rounds.reduce((a, x) => a + x.withReaders.published, 0))} messages with readers paused)`,
      pass: short.length === 0,
    });
  }
  const all: StepResult[] = [
    ...Object.values(r.broadcast ?? {}).flatMap((s) => s.flatMap((x) => x.steps)),
    ...(r.publishSingle?.systems.flatMap((s) => s.steps) ?? []),
    ...(r.cluster?.steps ?? []),
    ...(r.filtered?.steps ?? []),
    ...[...(r.groups?.points ?? []), ...(r.groups?.bare ?? [])].map((p) => p.step),
    ...(r.channels ? [...r.channels.switchboard.steps, ...r.channels.bare.steps] : []),
    ...(r.replicas?.points.map((p) => p.step) ?? []),
  ];
  const sustained = all.filter((s) => s.sustained);
  const bad = sustained.filter((s) => s.lost > 0 || s.duplicatesOrReordered > 0);
  const dupAnywhere = all.filter((s) => s.duplicatesOrReordered > 0).length;
  lines.push({
    target: 'zero messages lost, duplicated or reordered in every sustained step',
    measured: `${sustained.length} sustained steps, ${bad.length} with loss/dup/reorder; duplicates or reorders in any step: ${dupAnywhere}`,
    pass: bad.length === 0,
  });
  return lines;
}
