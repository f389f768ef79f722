/**
 * `node loadtest/dist/admin-view-cost.js [--connections 2000] [--streams-per-connection 5] [--streams 1000]`:
 * measures the two ways a cluster-wide channel view can be kept (docs/architecture.md, "Channel admin
 * queries"), on a real redis-server and two real edge processes:
 *
 * - on demand (what is built): nothing is written per open or close; a query asks every live edge over
 *   the control plane and merges. Measured: Redis commands per open (the subscribe itself, for
 *   reference), and per query its latency and Redis commands, with C connections × k streams open;
 * - incremental in Redis (the alternative): every open and close also updates per-edge hashes (a channel
 *   count and the subscriber itself), a query reads every live edge's hashes and merges. Measured on the
 *   same redis-server with the same pairs: the extra Redis time per open/close, and the query latency.
 *
 * Loopback only; prints a Markdown table. Not part of `npm run bench`: run it when the decision is revisited.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import { TestClient, startRedis, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { commandStats } from './cpu.js';
import { percentile } from './generator.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '2000' },
    'streams-per-connection': { type: 'string', default: '5' },
    streams: { type: 'string', default: '1000' },
    queries: { type: 'string', default: '30' },
  },
});
const C = Number(values.connections);
const K = Number(values['streams-per-connection']);
const S = Number(values.streams);
const Q = Number(values.queries);
const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'switchboard.js');
const out = (s: string) => process.stdout.write(`${s}\n`);

/** Total calls and microseconds of every command so far (INFO commandstats). */
async function commandTotals(r: Redis): Promise<{ calls: number; usec: number }> {
  let calls = 0;
  let usec = 0;
  for (const v of commandStats(await r.info('commandstats')).values()) {
    calls += v.calls;
    usec += v.usec;
  }
  return { calls, usec };
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const f = (v: number) => (v < 1 ? `${Math.round(v * 1000)} µs` : `${v.toFixed(1)} ms`);
  return `p50 ${f(percentile(s, 50))}, p95 ${f(percentile(s, 95))}, max ${f(s[s.length - 1]!)}`;
}

async function timed(n: number, op: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op();
    ms.push(performance.now() - t);
  }
  return ms;
}

async function adminFrame(edge: SwitchboardProcess, token: string, query: string): Promise<string> {
  const c = await TestClient.connect(`${edge.wsUrl}/fme?access_token=${token}`);
  c.send({ ws_op: 'admin', ws_msg: query });
  const f = await c.nextFrame(() => true, 10_000);
  c.ws.terminate();
  return f.text;
}

const redis = await startRedis();
const admin = new Redis(redis.url);
const env = (node: string) => ({
  REDIS_URL: redis.url,
  NODE_ID: node,
  SWITCHBOARD_SHARDS: '64',
  FME_ADMIN_QUERIES_PER_SEC: '1000',
  // Each admin query here is a new connection with a token (admitted like any other).
  SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
  FME_CHANNEL_INFO_MAX: '1000',
});
const session = await startSwitchboard(bin, 'session', { REDIS_URL: redis.url, SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0' }, 20_000, 'SESSION_PORT');
const edges = await Promise.all(['edge-a', 'edge-b'].map((n) => startSwitchboard(bin, 'edge', { ...env(n), SWITCHBOARD_SESSION_URL: session.httpUrl })));
const token = await hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' }).issue({ sub: 'measure', roles: ['admin'], ttlSec: 3600 });
await new Promise((r) => setTimeout(r, 2500));

out(`# Channel view cost: ${C} connections × ${K} streams = ${C * K} (connection, stream) pairs over ${S} streams, 2 edges`);
const pairs: { edge: number; stream: string; conn: number }[] = [];
const sockets: TestClient[] = [];
const before = await commandTotals(admin);
for (let i = 0; i < C; i++) {
  const edge = i % 2;
  const ws = await TestClient.connect(`${edges[edge]!.wsUrl}/fme`);
  const streams = Array.from({ length: K }, (_, j) => `stream-${(i * K + j) % S}`);
  ws.send({ ws_op: 'open', ws_stream_ids: streams });
  for (const stream of streams) pairs.push({ edge, stream, conn: i });
  sockets.push(ws);
}
const want = `"numchannels":"${C * K}"`;
for (;;) {
  if ((await adminFrame(edges[0]!, token, 'getnumchannels()')).includes(want)) break;
  await new Promise((r) => setTimeout(r, 200));
}
const afterOpen = await commandTotals(admin);
out(`\n## On demand (built)\n`);
out(`- Redis commands per stream opened (the subscription itself; nothing for the view): ${((afterOpen.calls - before.calls) / pairs.length).toFixed(2)} (includes this script's polling queries)`);
for (const [name, op] of [
  ['GET /admin/channels?limit=100', () => fetch(`${edges[0]!.httpUrl}/admin/channels?limit=100`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text())],
  ['GET /admin/nodes', () => fetch(`${edges[0]!.httpUrl}/admin/nodes`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text())],
  ['FME getnumchannels()', () => adminFrame(edges[1]!, token, 'getnumchannels()')],
  ['FME getchannelinfo() (cap 1000)', () => adminFrame(edges[1]!, token, 'getchannelinfo()')],
] as const) {
  const s0 = await commandTotals(admin);
  const sample = await op();
  const ms = await timed(Q, op);
  const s1 = await commandTotals(admin);
  if (!sample.startsWith('{"numchannels"') && !sample.startsWith('{"scope"')) throw new Error(`${name} failed: ${sample.slice(0, 300)}`);
  out(`- ${name}: ${stats(ms)}; ${((s1.calls - s0.calls) / (Q + 1)).toFixed(1)} Redis commands and ${((s1.usec - s0.usec) / (Q + 1) / 1000).toFixed(2)} ms of Redis time per query; answer ${sample.length} bytes`);
}

out(`\n## Incremental in Redis (the alternative, simulated with the same pairs)\n`);
// Per open: the channel's count on the edge and the subscriber itself; per close: the inverse. One
// pipeline per event, awaited, as an edge would do on the open's path.
const countKey = (e: number) => `measure:{adm}:n:${e}:ch`;
const memberKey = (e: number) => `measure:{adm}:n:${e}:m`;
let openIndex = 0;
let closeIndex = 0;
const i0 = await commandTotals(admin);
const openMs = await timed(pairs.length, () => {
  const p = pairs[openIndex++]!;
  return admin.multi().hincrby(countKey(p.edge), `fme:default:${p.stream}`, 1).hset(memberKey(p.edge), `${p.conn}|${p.stream}`, `127.0.0.1|8000`).exec();
});
const i1 = await commandTotals(admin);
out(`- per open: ${stats(openMs)} (round trip), ${((i1.usec - i0.usec) / pairs.length).toFixed(1)} µs of Redis time, ${((i1.calls - i0.calls) / pairs.length).toFixed(0)} commands`);
const queryMs = await timed(Q, async () => {
  const [c0, c1, m0, m1] = await Promise.all([admin.hgetall(countKey(0)), admin.hgetall(countKey(1)), admin.hgetall(memberKey(0)), admin.hgetall(memberKey(1))]);
  const merged = new Map<string, number>();
  for (const h of [c0, c1]) for (const [k, v] of Object.entries(h)) merged.set(k, (merged.get(k) ?? 0) + Number(v));
  return [...merged].sort((a, b) => b[1] - a[1]).length + Object.keys(m0).length + Object.keys(m1).length;
});
const i2 = await commandTotals(admin);
out(`- per query (read both edges' hashes, merge): ${stats(queryMs)}; ${((i2.usec - i1.usec) / Q / 1000).toFixed(2)} ms of Redis time per query`);
out(`- memory: ${(await admin.memory('USAGE', memberKey(0))) ?? 0} + ${(await admin.memory('USAGE', memberKey(1))) ?? 0} bytes of subscriber hashes, ${(await admin.memory('USAGE', countKey(0))) ?? 0} + ${(await admin.memory('USAGE', countKey(1))) ?? 0} of count hashes`);
const closeMs = await timed(pairs.length, () => {
  const p = pairs[closeIndex++]!;
  return admin.multi().hincrby(countKey(p.edge), `fme:default:${p.stream}`, -1).hdel(memberKey(p.edge), `${p.conn}|${p.stream}`).exec();
});
out(`- per close: ${stats(closeMs)} (round trip)`);

for (const ws of sockets) ws.ws.terminate();
admin.disconnect();
await Promise.all(edges.map((e) => e.stop()));
await session.stop();
await redis.stop();
