/**
 * `node loadtest/dist/cpuprofile-top.js <file.cpuprofile>… [--top N]`: where a process's CPU went, from
 * V8 CPU profiles (`--cpu-prof`, see `BENCH_CPU_PROF_DIR`): self time per function and per module
 * (Switchboard packages, node_modules packages, Node internals, GC, native), largest first.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The module a frame belongs to. */
export function moduleOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const pkg = /\/packages\/([^/]+)\//.exec(url);
  if (pkg && !url.includes('node_modules')) return `@switchboard/${pkg[1]}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/loadtest/')) return 'loadtest';
  return url;
}

/** Self time per function and per module of one profile, in microseconds. */
export function selfTimes(p: Profile): { totalUs: number; byFunction: Map<string, number>; byModule: Map<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    totalUs += us;
    const where = f.url ? `${f.url.replace(/^.*\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const mod = moduleOf(f.url, f.functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
  }
  return { totalUs, byFunction, byModule };
}

function top(m: Map<string, number>, total: number, n: number): string[] {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
}

if (process.argv[1]?.endsWith('cpuprofile-top.js')) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  const n = Number(values.top);
  for (const file of positionals) {
    const r = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile);
    process.stdout.write(`\n== ${file}: ${(r.totalUs / 1e6).toFixed(2)} s of CPU sampled (idle excluded)\n-- by module\n`);
    process.stdout.write(top(r.byModule, r.totalUs, n).join('\n') + '\n-- by function (self time)\n');
    process.stdout.write(top(r.byFunction, r.totalUs, n).join('\n') + '\n');
  }
}
