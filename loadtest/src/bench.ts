/**
 * `node loadtest/dist/bench.js [--quick] [--only a,b] [--out file]`: runs the load scenarios and writes
 * their results as JSON (scripts/bench.js turns them into docs/benchmarks.md). Loopback only, bounded
 * in time, stops by itself.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clusterScenario } from './scenario-cluster.js';
import { sessionScenario } from './scenario-session.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, out: { type: 'string' } },
});
const quick = values.quick;
const only = values.only ? new Set(values.only.split(',')) : null;
const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'switchboard.js');
const threads = Math.max(1, Math.min(4, cpus().length - 1));
const results: Record<string, unknown> = { quick, startedAt: new Date().toISOString() };

function log(msg: string): void {
  process.stdout.write(`[bench] ${msg}\n`);
}

if (!only || only.has('cluster')) {
  log('cluster: 2 edges + Redis');
  const connections = quick ? 200 : 1000;
  results.cluster = await clusterScenario({
    bin,
    connections,
    rates: quick ? [200, 1000, 2000] : [250, 500, 1000, 2000, 4000, 8000],
    stepMs: quick ? 2000 : 4000,
    payloadBytes: 100,
    lagLimitMs: 100,
    threads,
  });
  log(JSON.stringify(results.cluster).slice(0, 300));
}

if (!only || only.has('session')) {
  log('session: session service + edge + Redis');
  results.session = await sessionScenario({ bin, seconds: quick ? 2 : 5, connects: quick ? 20 : 100 });
  log(JSON.stringify(results.session).slice(0, 300));
}

const out = values.out ?? join(root, '.bench-out', 'loadtest.json');
writeFileSync(out, JSON.stringify(results, null, 2));
log(`results written to ${out}`);
