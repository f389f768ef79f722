/**
 * The load generator: subscriber connections spread over worker processes, a publisher that keeps a
 * target rate, and steps that measure what arrived against what was sent.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackChild } from '@switchboard/testkit';
import { cpuSeconds, rssBytes } from './cpu.js';
import { wallMs, type SubscribeStats, type SubscriberSpec, type WindowStats } from './protocol.js';

type Reply = { cmd: string; ok?: boolean; error?: string; stats?: WindowStats; sub?: SubscribeStats };

function ask(w: ChildProcess, cmd: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const on = (m: Reply) => {
      if (m.cmd !== cmd) return;
      w.off('message', on);
      w.off('exit', gone);
      resolve(m);
    };
    const gone = (code: number | null) => reject(new Error(`load worker exited with ${code}`));
    w.on('message', on);
    w.once('exit', gone);
    w.send({ cmd, ...extra });
  });
}

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** Subscriber connections in worker processes. */
export class LoadGenerator {
  private constructor(private readonly workers: ChildProcess[]) {}

  /**
   * Opens `connections` subscribers over `processes` workers and waits until all are subscribed. Their
   * global indexes (which pick tokens, tenants, targets) start at `firstIndex`.
   */
  static async start(spec: SubscriberSpec, connections: number, processes: number, firstIndex = 0): Promise<LoadGenerator> {
    const workers: ChildProcess[] = [];
    const per = Math.ceil(connections / processes);
    for (let first = 0; first < connections; first += per) {
      const init = { spec, first: firstIndex + first, count: Math.min(per, connections - first) };
      const w = fork(WORKER, [], { serialization: 'advanced', stdio: 'inherit' });
      trackChild(w);
      w.send({ cmd: 'init', init });
      workers.push(w);
    }
    const gen = new LoadGenerator(workers);
    const replies = await Promise.all(workers.map((w) => ask(w, 'open')));
    const failed = replies.find((r) => !r.ok);
    if (failed) {
      await gen.close();
      throw new Error(`subscribers failed to open: ${failed.error}`);
    }
    await gen.window();
    return gen;
  }

  /** Stats since the previous call, summed over workers. */
  async window(): Promise<WindowStats> {
    const all = await Promise.all(this.workers.map((w) => ask(w, 'stats')));
    const out: WindowStats = { received: 0, duplicatesOrReordered: 0, skipped: 0, latenciesMs: [], open: 0, closed: 0 };
    for (const r of all) {
      const s = r.stats!;
      out.received += s.received;
      out.duplicatesOrReordered += s.duplicatesOrReordered;
      out.skipped += s.skipped;
      out.open += s.open;
      out.closed += s.closed;
      for (const l of s.latenciesMs) out.latenciesMs.push(l);
    }
    return out;
  }

  /** Sends every connection each of `subscriptions` (more subscribes) and waits for the answers. */
  async subscribe(subscriptions: readonly Record<string, unknown>[]): Promise<SubscribeStats> {
    const all = await Promise.all(this.workers.map((w) => ask(w, 'subscribe', { subscriptions })));
    const failed = all.find((r) => !r.ok);
    if (failed) throw new Error(`subscribe failed: ${failed.error}`);
    const out = { ok: 0, failed: 0, latenciesMs: [] as number[], firstError: undefined as string | undefined };
    for (const r of all) {
      out.ok += r.sub!.ok;
      out.failed += r.sub!.failed;
      for (const l of r.sub!.latenciesMs) out.latenciesMs.push(l);
      out.firstError ??= r.sub!.firstError;
    }
    return { ok: out.ok, failed: out.failed, latenciesMs: out.latenciesMs, ...(out.firstError !== undefined ? { firstError: out.firstError } : {}) };
  }

  /** CPU seconds the generator's worker processes used so far. */
  cpuSeconds(): number {
    return this.workers.reduce((sum, w) => sum + cpuSeconds(w.pid!), 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => ask(w, 'close').catch(() => undefined)));
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exitCode !== null) return resolve();
            w.once('exit', () => resolve());
            w.kill();
          }),
      ),
    );
  }
}

/** Publishes `n` messages stamped with the current {@link wallMs}. */
export type SendFn = (n: number) => Promise<void>;

/** What a rate-controlled publishing run achieved. */
export interface PublishRun {
  readonly sent: number;
  readonly errors: number;
  readonly elapsedMs: number;
  /** The publisher could not keep the rate (too many requests in flight, or under 95 % of it). */
  readonly fellBehind: boolean;
}

/**
 * Publishes at `ratePerSec` for `durationMs`: every 5 ms tick, and every time a request completes, the
 * messages due by then are sent in requests of at most `maxBatch`, at most `maxInFlight` requests at once
 * (with `maxBatch` 1 and 16 in flight: one message per request, 16 in flight, as most backends publish).
 * A request that completes frees its slot for the next due message at once, not at the next tick.
 */
export async function publishAtRate(send: SendFn, ratePerSec: number, durationMs: number, maxBatch = 500, maxInFlight = 32): Promise<PublishRun> {
  const start = wallMs();
  let sent = 0;
  let errors = 0;
  let inFlight = 0;
  let stopped = false;
  const pending = new Set<Promise<void>>();
  const pump = (): void => {
    if (stopped) return;
    const elapsed = wallMs() - start;
    if (elapsed >= durationMs) return;
    const due = Math.floor((ratePerSec * elapsed) / 1000);
    while (sent < due && inFlight < maxInFlight) {
      const n = Math.min(maxBatch, due - sent);
      sent += n;
      inFlight++;
      const p: Promise<void> = send(n).then(
        () => {
          inFlight--;
          pending.delete(p);
          pump();
        },
        () => {
          errors += n;
          inFlight--;
          pending.delete(p);
          pump();
        },
      );
      pending.add(p);
    }
  };
  while (wallMs() - start < durationMs) {
    pump();
    await new Promise((r) => setTimeout(r, 5));
  }
  stopped = true;
  const target = (ratePerSec * durationMs) / 1000;
  // What was still due but never sent when the time was up: the publisher could not keep the rate.
  const backlog = Math.floor(target) - sent;
  while (pending.size > 0) await Promise.all([...pending]);
  const elapsedMs = wallMs() - start;
  // One message of slack: at a few messages per second the tick schedule alone rounds one away.
  return { sent, errors, elapsedMs, fellBehind: sent < 0.95 * target - 1 || backlog > Math.max(1, ratePerSec * 0.05) };
}

/** Percentile of sorted values (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The measurements of one step of a staircase. */
export interface StepResult {
  readonly rate: number;
  readonly sent: number;
  readonly expected: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicatesOrReordered: number;
  readonly deliveredPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** CPU seconds per server process during the step. */
  readonly cpuSec: Record<string, number>;
  /** CPU seconds of the load generator's own worker processes during the step. */
  readonly generatorCpuSec: number;
  readonly durationSec: number;
  readonly rssBytes: Record<string, number>;
  readonly fellBehind: boolean;
  readonly sustained: boolean;
  /** A second try at a rate whose first try was not sustained (see {@link staircase}). */
  readonly retry?: boolean;
}

/** Options of {@link runStep}. */
export interface StepOptions {
  readonly gen: LoadGenerator;
  readonly send: SendFn;
  readonly rate: number;
  readonly durationMs: number;
  /** Subscribers that receive each published message. */
  readonly fanout: number;
  /** Server processes to account CPU and RSS for. */
  readonly pids: Record<string, number>;
  /** A step whose p99 passes this is not sustained. */
  readonly lagLimitMs: number;
  /** Whether skipped offsets are loss (every connection should see every offset). */
  readonly skipsAreLoss: boolean;
  /** Most messages per request (default 500: the batched publisher). */
  readonly maxBatch?: number;
  /** Most requests in flight (default 32). */
  readonly maxInFlight?: number;
}

/** Publishes at a rate for a while, waits for the deliveries to settle, and measures. */
export async function runStep(o: StepOptions): Promise<StepResult> {
  const cpu0 = Object.fromEntries(Object.entries(o.pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const gen0 = o.gen.cpuSeconds();
  await o.gen.window();
  const run = await publishAtRate(o.send, o.rate, o.durationMs, o.maxBatch, o.maxInFlight);
  const sent = run.sent - run.errors;
  const expected = sent * o.fanout;
  const acc = { received: 0, dup: 0, skipped: 0, lat: [] as number[] };
  let idleSince = wallMs();
  // Let the deliveries drain: stop when everything arrived, or nothing arrived for a second.
  for (;;) {
    const w = await o.gen.window();
    acc.received += w.received;
    acc.dup += w.duplicatesOrReordered;
    acc.skipped += w.skipped;
    for (const l of w.latenciesMs) acc.lat.push(l);
    if (w.received > 0) idleSince = wallMs();
    if (acc.received >= expected || wallMs() - idleSince > 1000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const cpuSec = Object.fromEntries(Object.entries(o.pids).map(([k, pid]) => [k, cpuSeconds(pid) - cpu0[k]!]));
  const rss = Object.fromEntries(Object.entries(o.pids).map(([k, pid]) => [k, rssBytes(pid)]));
  acc.lat.sort((a, b) => a - b);
  const lost = Math.max(0, expected - acc.received);
  const p99 = percentile(acc.lat, 99);
  const sustained = lost === 0 && acc.dup === 0 && (!o.skipsAreLoss || acc.skipped === 0) && p99 <= o.lagLimitMs && !run.fellBehind && run.errors === 0;
  return {
    rate: o.rate,
    sent,
    expected,
    delivered: acc.received,
    lost,
    duplicatesOrReordered: acc.dup,
    deliveredPerSec: acc.received / (run.elapsedMs / 1000),
    p50Ms: percentile(acc.lat, 50),
    p99Ms: p99,
    maxMs: acc.lat.length ? acc.lat[acc.lat.length - 1]! : NaN,
    cpuSec,
    generatorCpuSec: o.gen.cpuSeconds() - gen0,
    durationSec: run.elapsedMs / 1000,
    rssBytes: rss,
    fellBehind: run.fellBehind,
    sustained,
  };
}

/**
 * Runs steps at increasing rates until one is not sustained (or the rates run out), then narrows the
 * maximum down: `refine` more steps at the midpoint between the last sustained rate and the first
 * failed one, so that a doubling staircase does not report half the real maximum. When the first rate
 * already fails, it halves it until a step holds (at most four times).
 *
 * A rate counts as failed only when `tries` steps at it in a row are not sustained. Near its limit a
 * system on a machine it shares with the load generator can tip into a state that feeds itself (the
 * generator falls behind reading, the server's sends shrink to one small TCP segment each and cost it
 * several times the CPU, so the generator falls further behind): bare uWS, fed the same way twice at
 * the same rate, held one step and collapsed in the next. One such collapse says more about the
 * machine than about the system; every system gets the same second try, and both are in the tables.
 */
export async function staircase(rates: readonly number[], step: (rate: number) => Promise<StepResult>, refine = 2, tries = 2): Promise<StepResult[]> {
  const results: StepResult[] = [];
  const at = async (rate: number): Promise<StepResult> => {
    let r = await step(rate);
    results.push(r);
    for (let t = 1; t < tries && !r.sustained; t++) {
      r = { ...(await step(rate)), retry: true };
      results.push(r);
    }
    return r;
  };
  let ok = 0;
  let failed = 0;
  for (const rate of rates) {
    const r = await at(rate);
    if (!r.sustained) {
      failed = rate;
      break;
    }
    ok = rate;
  }
  // The first rate is already too much: halve it (a few times) until a step holds, so the result says
  // what the system does sustain instead of nothing.
  for (let i = 0; i < 4 && ok === 0 && failed > 1; i++) {
    const lower = Math.floor(failed / 2);
    const r = await at(lower);
    if (r.sustained) ok = lower;
    else failed = lower;
  }
  for (let i = 0; i < refine && failed > 0 && ok > 0; i++) {
    const mid = Math.round((ok + failed) / 2);
    if (mid <= ok || mid >= failed) break;
    const r = await at(mid);
    if (r.sustained) ok = mid;
    else failed = mid;
  }
  return results;
}

/** The best sustained step, if any. */
export function maxSustained(steps: readonly StepResult[]): StepResult | undefined {
  return steps.filter((s) => s.sustained).sort((a, b) => b.deliveredPerSec - a.deliveredPerSec)[0];
}
