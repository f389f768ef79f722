/**
 * `npm run soak [-- --minutes 10 --out file.json]`: a churn soak of a real cluster (redis-server, a session
 * service, two edges) that reports whether anything leaks. Not in CI: it runs for minutes by design.
 *
 * Load: long-lived subscribers on both edges (they check their offsets: nothing lost, doubled or out of
 * order), a churn of short-lived connections (connect, auth, subscribe with recover, read, leave: some
 * close cleanly, some drop their TCP connection), and a steady publisher, one message per request,
 * through either edge. Every 10 s it samples each server process's RSS and open file descriptors.
 *
 * Report: per process, the RSS slope over the steady part (a least-squares fit after the warm-up, in
 * KB per minute) and the file descriptors at its start and end. Exit code 1 when a process's descriptors
 * grew (more than 10 % + 20 over the steady part), its RSS kept climbing (over 1 MB per minute), or a
 * long-lived subscriber lost, doubled or reordered a message.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_API_KEY, DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import { startRedis, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { rssBytes } from './cpu.js';
import { RawWs } from './ws-raw.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV } from './switchboard.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    subscribers: { type: 'string', default: '200' },
    churn: { type: 'string', default: '20' },
    rate: { type: 'string', default: '50' },
    out: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const SUBSCRIBERS = Number(values.subscribers);
/** Short-lived connections opened (and as many closed) per second. */
const CHURN = Number(values.churn);
/** Published messages per second. */
const RATE = Number(values.rate);
const SAMPLE_MS = 10_000;
/** The first part of the run is warm-up (V8's heap and uWS's buffers grow to their working size). */
const WARMUP_FRACTION = 0.3;

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'switchboard.js');
const issuer = hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) =>
  process.stdout.write(`[soak +${Math.round((Date.now() - started) / 1000)}s] ${msg}\n`);
const started = Date.now();

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** A long-lived subscriber of `alerts` that checks continuity by offset. */
class Watcher {
  last: { epoch: string; offset: number } | null = null;
  received = 0;
  gaps = 0;
  doubled = 0;
  ws: RawWs | null = null;

  constructor(
    readonly edge: SwitchboardProcess,
    readonly user: string,
  ) {}

  async open(): Promise<void> {
    const token = await issuer.issue({ sub: this.user, ttlSec: 24 * 3600 });
    this.ws = await RawWs.connect('127.0.0.1', this.edge.port, '/ws', (payload) => this.onFrame(payload));
    this.ws.sendText(JSON.stringify({ type: 'auth', token }));
    this.ws.sendText(JSON.stringify({ type: 'subscribe', channel: 'alerts' }));
  }

  private onFrame(payload: Buffer): void {
    const m = JSON.parse(payload.toString('utf8')) as { type?: string; epoch?: string; offset?: number };
    if (m.type !== 'alert' || typeof m.offset !== 'number' || typeof m.epoch !== 'string') return;
    this.received++;
    const last = this.last;
    if (last !== null && last.epoch === m.epoch) {
      if (m.offset <= last.offset) this.doubled++;
      else if (m.offset !== last.offset + 1) this.gaps++;
    }
    this.last = { epoch: m.epoch, offset: m.offset };
  }
}

/** One short-lived connection: auth, subscribe (with recover from a recent position), read a while, leave. */
async function churnOne(
  edge: SwitchboardProcess,
  n: number,
  position: { epoch: string; offset: number } | null,
): Promise<void> {
  const token = await issuer.issue({ sub: `churn-${n % 500}`, ttlSec: 600 });
  const ws = await RawWs.connect('127.0.0.1', edge.port, '/ws', () => {});
  ws.sendText(JSON.stringify({ type: 'auth', token }));
  ws.sendText(
    JSON.stringify({
      type: 'subscribe',
      channel: 'alerts',
      ...(position ? { recover: { epoch: position.epoch, offset: Math.max(0, position.offset - 20) } } : {}),
    }),
  );
  ws.sendText(
    JSON.stringify({
      type: 'subscribe',
      channel: 'telemetry',
      device_id: [n % 10],
      metrics: ['temperature'],
    }),
  );
  await sleep(200 + (n % 7) * 100);
  // Half leave with a close frame, half drop their connection (a client that vanishes).
  if (n % 2 === 0) ws.close(1000);
  else ws.destroy();
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

interface Sample {
  readonly atMin: number;
  readonly rssKb: Record<string, number>;
  readonly fds: Record<string, number>;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const procs: Record<string, SwitchboardProcess> = {};
  let failed = false;
  try {
    procs.session = await startSwitchboard(
      bin,
      'session',
      { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'soak-session' },
      30_000,
      'SESSION_PORT',
    );
    for (const name of ['edge-a', 'edge-b']) {
      procs[name] = await startSwitchboard(bin, 'edge', {
        ...LOAD_EDGE_ENV,
        REDIS_URL: redis.url,
        NODE_ID: name,
        SWITCHBOARD_SESSION_URL: procs.session.httpUrl,
      });
    }
    const edges = [procs['edge-a']!, procs['edge-b']!];
    log(
      `cluster up: redis ${redis.port}, session ${procs.session.httpUrl}, edges ${edges.map((e) => e.port).join(', ')}; ${minutes} min, ${SUBSCRIBERS} subscribers, ${CHURN} connections/s churn, ${RATE} msg/s`,
    );

    const watchers = Array.from({ length: SUBSCRIBERS }, (_, i) => new Watcher(edges[i % 2]!, `watch-${i}`));
    for (const w of watchers) await w.open();
    await sleep(1000);

    const endAt = Date.now() + minutes * 60_000;
    let published = 0;
    let publishErrors = 0;
    const publisher = (async () => {
      let i = 0;
      while (Date.now() < endAt) {
        const t0 = Date.now();
        for (let k = 0; k < RATE / 10; k++) {
          const url = edges[i++ % 2]!.httpUrl;
          void fetch(`${url}/api/publish`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
            body: JSON.stringify({ channel: 'alerts', data: { alert_id: i, title: 'soak' } }),
          }).then(
            async (res) => {
              await res.arrayBuffer();
              if (res.ok) published++;
              else publishErrors++;
            },
            () => publishErrors++,
          );
        }
        await sleep(Math.max(0, 100 - (Date.now() - t0)));
      }
    })();

    let churned = 0;
    let churnErrors = 0;
    const churner = (async () => {
      while (Date.now() < endAt) {
        const t0 = Date.now();
        for (let k = 0; k < CHURN; k++) {
          const n = churned++;
          churnOne(edges[n % 2]!, n, watchers[0]!.last).catch(() => churnErrors++);
        }
        await sleep(Math.max(0, 1000 - (Date.now() - t0)));
      }
    })();

    const samples: Sample[] = [];
    const sample = () => {
      const rssKb: Record<string, number> = {};
      const fds: Record<string, number> = {};
      for (const [name, p] of Object.entries(procs)) {
        rssKb[name] = Math.round(rssBytes(p.child.pid!) / 1024);
        fds[name] = openFds(p.child.pid!);
      }
      samples.push({ atMin: (Date.now() - started) / 60_000, rssKb, fds });
      log(
        `${Object.keys(procs)
          .map((n) => `${n} ${(rssKb[n]! / 1024).toFixed(1)} MiB ${fds[n]} fds`)
          .join(
            ' · ',
          )} · published ${published} (${publishErrors} refused) · churned ${churned} (${churnErrors} failed)`,
      );
    };
    while (Date.now() < endAt) {
      sample();
      await sleep(Math.min(SAMPLE_MS, Math.max(0, endAt - Date.now())));
    }
    await Promise.all([publisher, churner]);
    await sleep(3000);
    sample();

    const steady = samples.slice(Math.floor(samples.length * WARMUP_FRACTION));
    const report: Record<string, unknown> = {
      minutes,
      subscribers: SUBSCRIBERS,
      churnPerSec: CHURN,
      ratePerSec: RATE,
      published,
      publishErrors,
      churned,
      churnErrors,
      processes: {},
    };
    for (const name of Object.keys(procs)) {
      const rssSlopeKbPerMin = slope(
        steady.map((s) => s.atMin),
        steady.map((s) => s.rssKb[name]!),
      );
      const fdStart = steady[0]!.fds[name]!;
      const fdEnd = steady[steady.length - 1]!.fds[name]!;
      const leak = fdEnd > fdStart * 1.1 + 20 || rssSlopeKbPerMin > 1024;
      if (leak) failed = true;
      (report.processes as Record<string, unknown>)[name] = {
        rssSlopeKbPerMin: Math.round(rssSlopeKbPerMin),
        rssStartKb: steady[0]!.rssKb[name],
        rssEndKb: steady[steady.length - 1]!.rssKb[name],
        fdStart,
        fdEnd,
        leak,
      };
      log(
        `${name}: RSS slope ${Math.round(rssSlopeKbPerMin)} KB/min over the steady part (${(steady[0]!.rssKb[name]! / 1024).toFixed(1)} → ${(steady[steady.length - 1]!.rssKb[name]! / 1024).toFixed(1)} MiB), fds ${fdStart} → ${fdEnd}${leak ? '  ← LEAK?' : ''}`,
      );
    }
    const gaps = watchers.reduce((a, w) => a + w.gaps, 0);
    const doubled = watchers.reduce((a, w) => a + w.doubled, 0);
    const minReceived = Math.min(...watchers.map((w) => w.received));
    report.watchers = { gaps, doubled, minReceived };
    log(
      `long-lived subscribers: ${gaps} gaps, ${doubled} doubled, the least received ${minReceived} of ${published} published`,
    );
    if (gaps > 0 || doubled > 0) failed = true;
    report.samples = samples;
    if (values.out) writeFileSync(values.out, JSON.stringify(report, null, 2));
    log(failed ? 'FAIL' : 'PASS: no descriptor growth, no RSS climb, nothing lost or doubled');
    for (const w of watchers) w.ws?.destroy();
  } finally {
    for (const p of Object.values(procs)) await p.stop('SIGTERM');
    await redis.stop();
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
