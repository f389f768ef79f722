/** The performance targets of the benchmark, checked against one run's figures. */
import type { StepResult } from './generator.js';
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

/** Evaluates every target that the run measured. */
export function evaluate(r: {
  broadcast?: Record<string, SystemResult[]>;
  cluster?: { max: StepResult | undefined; atHalf: StepResult | undefined; steps: StepResult[] };
  socketioCluster?: SystemResult;
  clusterCommonRate?: number;
  filtered?: SystemResult;
  idle?: IdleResult;
}): TargetLine[] {
  const lines: TargetLine[] = [];
  for (const [c, systems] of Object.entries(r.broadcast ?? {})) {
    const [bare, ours, sio] = systems;
    lines.push(ratioLine(`broadcast, ${c} subscribers: max sustained ≥ 80 % of bare uWS`, ours?.max, bare?.max, 0.8));
    lines.push(ratioLine(`broadcast, ${c} subscribers: max sustained ≥ 8× Socket.IO (1 node)`, ours?.max, sio?.max, 8));
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
  if (r.cluster) {
    lines.push(ratioLine('cluster: max sustained ≥ 6× Socket.IO + redis-streams-adapter (2 nodes)', r.cluster.max, r.socketioCluster?.max, 6));
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
    lines.push({ target: 'cluster: p99 ≤ 30 ms at 50 % of max', measured: half ? `${f(half.p99Ms, 1)} ms at ${f(half.rate)} msg/s` : 'not measured', pass: !!half && half.p99Ms <= 30 });
  }
  if (r.idle) {
    const kb = r.idle.bytesPerConnection / 1024;
    lines.push({ target: 'idle: ≤ 8 KB RSS per connection', measured: `${f(kb, 2)} KB over ${f(r.idle.connections)} connections`, pass: kb <= 8 });
  }
  const all: StepResult[] = [
    ...Object.values(r.broadcast ?? {}).flatMap((s) => s.flatMap((x) => x.steps)),
    ...(r.cluster?.steps ?? []),
    ...(r.filtered?.steps ?? []),
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
