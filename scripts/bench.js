// `npm run bench`: runs the benchmarks and writes docs/benchmarks.md with the figures, the command that
// produced them and the machine they ran on. Peers are measured side by side in the same run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const out = join(root, '.bench-out');
mkdirSync(out, { recursive: true });
const args = process.argv.slice(2);
const quick = args.includes('--quick');
// Re-renders docs/benchmarks.md from the last run's results in .bench-out without measuring again.
const renderOnly = args.includes('--render-only');

function run(cmd, cmdArgs) {
  process.stdout.write(`\n$ ${cmd} ${cmdArgs.join(' ')}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: { ...process.env, BENCH_QUICK: quick ? '1' : '' } });
  if (r.status !== 0) {
    process.stderr.write(`bench: ${cmd} failed with ${r.status}\n`);
    process.exit(r.status ?? 1);
  }
}

const hubJson = join(out, 'hub.json');
const loadJson = join(out, 'loadtest.json');
if (!renderOnly) {
  run('npx', ['vitest', 'bench', '--run', 'packages/edge/src/hub.bench.ts', '--outputJson', hubJson]);
  run('node', ['loadtest/dist/bench.js', '--out', loadJson, ...(quick ? ['--quick'] : [])]);
}

const fmt = (x, digits = 0) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function hubSection() {
  const data = JSON.parse(readFileSync(hubJson, 'utf8'));
  const lines = [
    '## Hub fan-out (`packages/edge/src/hub.bench.ts`)',
    '',
    'One telemetry update (130-byte frame) dispatched by `hub.dispatch` to N real WebSocket subscribers',
    'in G groups, next to bare uWebSockets.js `app.publish` of the same pre-rendered frame to one topic.',
    'Subscribers are raw sockets read by a separate sink process. The clock is the **server process CPU',
    'time** (user + system), so the figures are what the server pays, whatever the sink costs. An iteration',
    'is one bus-sized batch of messages plus one event-loop turn in which uWS writes them to the sockets.',
    'Groups all match the message (they differ by a second device id); in the "projection" case each',
    'group also has its own metrics projection, so the message is rendered once per group.',
    '',
  ];
  for (const file of data.files) {
    for (const group of file.groups) {
      const perIter = Number(/(\d+) messages per iteration/.exec(group.fullName)?.[1] ?? 1);
      const subs = Number(/to (\d+) subscribers/.exec(group.fullName)?.[1] ?? 1);
      const bares = group.benchmarks.filter((b) => b.name.startsWith('bare uWS'));
      const bareMean = bares.reduce((sum, b) => sum + b.mean, 0) / Math.max(1, bares.length);
      lines.push(`### ${subs.toLocaleString('en-US')} subscriber${subs > 1 ? 's' : ''}`, '');
      lines.push('| case | CPU µs per message | deliveries per CPU-second | vs bare uWS | ± | samples |');
      lines.push('| --- | ---: | ---: | ---: | ---: | ---: |');
      for (const b of group.benchmarks) {
        const usPerMsg = (b.mean * 1000) / perIter;
        const deliveriesPerCpuSec = (subs * 1e6) / usPerMsg;
        const ratio = bares.length ? bareMean / b.mean : 1;
        lines.push(
          `| ${b.name.replace(/, \d+ subs$/, '')} | ${fmt(usPerMsg, usPerMsg < 10 ? 2 : 1)} | ${fmt(deliveriesPerCpuSec)} | ${fmt(ratio * 100)} % | ${fmt(b.rme, 1)} % | ${b.sampleCount} |`,
        );
      }
      lines.push('');
    }
  }
  lines.push(
    '"vs bare uWS" is the throughput of the case relative to bare `app.publish` in the same run (the mean',
    'of its two runs, before and after the hub cases; 100 % = as cheap as uWS itself). The difference',
    'between the two bare runs shows the noise of the run. The hub adds per message one filter match and',
    'one publish per group and one render per distinct projection; the per-subscriber work is uWS\'s',
    'native topic fan-out.',
    'The ± column is the spread within one run; between runs on a small shared machine the figures at',
    '1k/10k subscribers move by up to ±20 % (the sink competes for the same cores), so differences',
    'between those cases that are smaller than that are noise. At one subscriber the hub\'s own cost',
    '(channel lookup, duplicate check, group loop, render, counters) is visible: about 1 µs per message.',
    '',
  );
  return lines.join('\n');
}

const ms = (x) => (Number.isFinite(x) ? fmt(x, x < 10 ? 2 : 1) : '–');
const cpuCell = (c) => Object.entries(c).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ');
const genCell = (s) => (s.generatorCpuSec !== undefined ? fmt(s.generatorCpuSec / s.durationSec, 2) : '–');

function stepsTable(steps, fanout) {
  const lines = [
    '| published msg/s | fan-out | delivered/s | p50 ms | p99 ms | max ms | lost | dup/reorder | server CPU-s | generator cores | sustained |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |',
  ];
  for (const s of steps) {
    lines.push(
      `| ${fmt(s.rate)} | ${fmt(fanout)} | ${fmt(s.deliveredPerSec)} | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${ms(s.maxMs)} | ${fmt(s.lost)} | ${fmt(s.duplicatesOrReordered)} | ${cpuCell(s.cpuSec)} | ${genCell(s)} | ${s.sustained ? 'yes' : s.fellBehind ? 'no (publisher behind)' : 'no'} |`,
    );
  }
  return lines;
}

function clusterSection(c, sio) {
  if (!c) return '';
  const lines = [
    '## Cluster: 2 edges + Redis (`loadtest/src/scenario-cluster.ts`)',
    '',
    `Two \`switchboard edge\` processes, one \`switchboard session\` and one redis-server, ${fmt(c.connections)} valtronics`,
    'subscribers of `alerts` split across both edges, publishing through either edge\'s HTTP API (batches),',
    `~${c.payloadBytes}-byte payloads stamped with their send time.`,
    '',
    ...stepsTable(c.steps, c.connections),
    '',
  ];
  if (c.max) lines.push(`- **Max sustained: ${fmt(c.max.deliveredPerSec)} deliveries/s** (${fmt(c.max.rate)} published msg/s × ${fmt(c.connections)} subscribers).`);
  if (c.atHalf) lines.push(`- **At 50 % of it** (${fmt(c.atHalf.rate)} msg/s): p50 ${ms(c.atHalf.p50Ms)} ms, p99 ${ms(c.atHalf.p99Ms)} ms publish→client, lost ${fmt(c.atHalf.lost)}.`);
  lines.push(
    `- **Publish through one Redis**, bus API, no HTTP: ${fmt(c.busPublishPerSec)} msg/s one message per Lua call (256 in flight); ${c.busBatchPublishPerSec ? fmt(c.busBatchPublishPerSec) : '–'} msg/s in batches of 100 of one channel (\`publishBatch\`, one Lua call per batch, 16 in flight).`,
    `- **Redis's own XADD** (\`redis-benchmark -c 50 -P 16\`, same server, same payload): ${fmt(c.redisXaddPerSec)} req/s — our single path reaches ${fmt((100 * c.busPublishPerSec) / c.redisXaddPerSec, 1)} % of it, the batched path ${c.busBatchPublishPerSec ? fmt((100 * c.busBatchPublishPerSec) / c.redisXaddPerSec, 1) : '–'} %. Each of our messages is two XADDs (history and feed) plus the offset, inside one atomic script.`,
    '',
  );
  if (sio) lines.push(systemBlock(sio, 'Peer: Socket.IO 4 + `@socket.io/redis-streams-adapter` on 2 nodes + Redis, same subscribers, publishing through node A:'));
  return lines.join('\n');
}

function systemBlock(r, title) {
  const lines = [title, '', ...stepsTable(r.steps, r.fanout), ''];
  lines.push(r.max ? `Max sustained: **${fmt(r.max.deliveredPerSec)} deliveries/s**.` : 'No step was sustained.', '');
  return lines.join('\n');
}

function broadcastSection(b) {
  if (!b) return '';
  const lines = [
    '## Broadcast on one node: Switchboard vs bare uWebSockets.js vs Socket.IO',
    '',
    'One channel, C subscribers, ~100-byte payloads, measured one system after the other with the same',
    'generator. Switchboard is the all-in-one process (`switchboard start`, embedded backends): valtronics',
    'auth, one subscription per client, the publish API, the hub. Bare uWS (`loadtest/src/peers/bare-uws.ts`)',
    'subscribes every socket to one topic and `app.publish`es — no auth, no filters, no offsets stored.',
    'Socket.IO 4 (`peers/socketio.ts`) joins every socket to one room and emits to it.',
    '',
  ];
  for (const [c, systems] of Object.entries(b)) {
    lines.push(`### ${fmt(Number(c))} subscribers`, '');
    lines.push('| system | max sustained deliveries/s | at msg/s | p99 ms there | CPU-s per million deliveries (common rate) |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    for (const r of systems) {
      const cpm = r.common ? Object.values(r.common.cpuSec).reduce((a, x) => a + x, 0) / r.common.delivered * 1e6 : NaN;
      lines.push(`| ${r.name} | ${r.max ? fmt(r.max.deliveredPerSec) : 'none sustained'} | ${r.max ? fmt(r.max.rate) : '–'} | ${r.max ? ms(r.max.p99Ms) : '–'} | ${Number.isFinite(cpm) ? fmt(cpm, 2) + (r.common ? ` (at ${fmt(r.common.rate)} msg/s)` : '') : '–'} |`);
    }
    lines.push('');
    for (const r of systems) lines.push(`<details><summary>${r.name}: every step</summary>`, '', ...stepsTable(r.steps, r.fanout), '', '</details>', '');
  }
  return lines.join('\n');
}

function filteredSection(f) {
  if (!f) return '';
  return [
    '## Filtered fan-out on one node',
    '',
    `${fmt(f.connections)} valtronics subscribers of \`telemetry\`, each filtered to one of 100 devices and projected to one of`,
    '10 metric sets: 1,000 subscriber groups; each message goes to the 100 subscribers of its device, rendered',
    'once per group. Offsets seen by one subscriber skip the other devices\' messages, so here loss is',
    'counted from deliveries against the expected fan-out, not from skipped offsets.',
    '',
    ...stepsTable(f.steps, f.fanout),
    '',
    f.max ? `Max sustained: **${fmt(f.max.deliveredPerSec)} deliveries/s**.` : 'No step was sustained.',
    '',
  ].join('\n');
}

function idleSection(i) {
  if (!i) return '';
  return [
    '## Idle connections',
    '',
    `${fmt(i.connections)} authenticated valtronics connections with one subscription each on one \`switchboard edge\``,
    '(with Redis and a session service, as deployed). RSS of the edge process before and after',
    `(this machine allows ${fmt(i.fdLimit)} open files per process, which caps the count):`,
    '',
    `- RSS ${fmt(i.rssBeforeBytes / 2 ** 20, 1)} MiB → ${fmt(i.rssAfterBytes / 2 ** 20, 1)} MiB: **${fmt(i.bytesPerConnection / 1024, 2)} KB per connection**`,
    '',
  ].join('\n');
}

function targetsSection(t) {
  if (!t) return '';
  const lines = ['## Targets', '', '| target | measured | result |', '| --- | --- | --- |'];
  for (const x of t) lines.push(`| ${x.target} | ${x.measured} | ${x.pass ? 'PASS' : 'FALL SHORT'} |`);
  lines.push('');
  return lines.join('\n');
}

function sessionSection(r) {
  if (!r) return '';
  const row = (name, o, rate = true) =>
    `| ${name} | ${rate ? fmt(o.perSec) : '–'} | ${ms(o.p50Ms)} | ${ms(o.p99Ms)} | ${fmt(o.count)} |`;
  const added = r.connectResume.p50Ms - r.connectFresh.p50Ms;
  return [
    '## Session service (`loadtest/src/scenario-session.ts`)',
    '',
    'One redis-server, one `switchboard session` and one `switchboard edge` process on this machine.',
    'Logins go to the edge\'s `POST /v1/login` and over the Rpc seam (Redis Streams) to the service,',
    'scrypt (N=16384) included — they are deliberately expensive. Admissions are the `admit` + `release`',
    'Rpc pair (atomic Lua in Redis), 64 in flight.',
    '',
    '| operation | per second | p50 ms | p99 ms | samples |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('login (16 concurrent)', r.logins),
    row('admission (admit + release, 64 concurrent)', r.admissions),
    row('connect + auth, fresh session', r.connectFresh, false),
    row('connect + auth resuming a session with 3 subscriptions (until restored)', r.connectResume, false),
    row('connect + auth + 3 subscribes sent by the client', r.connectResubscribe, false),
    '',
    `A session resume adds ${ms(added)} ms (p50) to a fresh connect, and restores 3 subscriptions in ${ms(r.connectResume.p50Ms)} ms against ${ms(r.connectResubscribe.p50Ms)} ms for a client that resubscribes itself.`,
    '',
  ].join('\n');
}

const load = JSON.parse(readFileSync(loadJson, 'utf8'));

/** Hand-written findings kept in docs/benchmark-notes.md, appended to every generated report. */
function storeSection(r) {
  if (!r) return '';
  return [
    '## Object store: versioned merges next to plain publishes (`loadtest/src/scenario-store.ts`)',
    '',
    `One redis-server. **Throughput, no edge:** ${r.inFlight} lanes in flight over ${r.channels} channels, ~${r.payloadBytes}-byte field values, ${r.seconds} s each:`,
    '',
    '| operation | per second |',
    '| --- | ---: |',
    `| \`RedisObjectStore.merge\` with \`expectV\` (compare \`v\`, write, bump, change event to history and feed: one Lua script) | ${fmt(r.storeMergesPerSec)} |`,
    `| \`RedisStreamsBus.publish\` (history and feed: one Lua script) | ${fmt(r.busPublishPerSec)} |`,
    '',
    `Versioned merges reach ${fmt((100 * r.storeMergesPerSec) / r.busPublishPerSec)} % of the plain publishes' rate.`,
    '',
    `**Latency across edges**, real processes (two edges, a session service, Redis), ${fmt(r.rate)} per second for ${r.latencySeconds} s:`,
    '',
    '| path | sent | received | p50 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| Fleet Freedom \`mergeAsset\` on edge A → \`assetGeneralMerged\` on edge B | ${fmt(r.merge.sent)} | ${fmt(r.merge.received)} | ${ms(r.merge.p50Ms)} | ${ms(r.merge.p99Ms)} | ${ms(r.merge.maxMs)} |`,
    `| \`POST /api/publish\` on edge A → valtronics \`alert\` on edge B | ${fmt(r.publish.sent)} | ${fmt(r.publish.received)} | ${ms(r.publish.p50Ms)} | ${ms(r.publish.p99Ms)} | ${ms(r.publish.maxMs)} |`,
    '',
    'Both are measured from the client\'s send to the other client\'s receipt, on one machine with one clock.',
    '',
  ].join('\n');
}

function notes() {
  try {
    return readFileSync(join(root, 'docs', 'benchmark-notes.md'), 'utf8');
  } catch {
    return '';
  }
}

const cpu = cpus();
const uwsVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'uWebSockets.js', 'package.json'), 'utf8')).version;
const doc = [
  '# Benchmarks',
  '',
  `<!-- Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` (scripts/bench.js). Do not edit by hand. -->`,
  '',
  `Produced by \`npm run bench${quick ? ' -- --quick' : ''}\` (run started ${String(load.startedAt).slice(0, 16).replace('T', ' ')} UTC).`,
  '',
  `Generator: ${load.generatorProcesses} worker processes on the same machine; a step counts as sustained when nothing was lost,`,
  `duplicated or reordered, the publisher kept its rate and the p99 stayed under ${load.lagLimitsMs ? `${load.lagLimitsMs.default} ms (${load.lagLimitsMs['10000+']} ms from 10 000 subscribers)` : 'the lag limit'}.`,
  `Server CPU is read from \`/proc/<pid>/stat\` of`,
  'the server processes (Redis included where used); RSS from `/proc/<pid>/status`.',
  '',
  '| machine | |',
  '| --- | --- |',
  `| CPU | ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} |`,
  `| memory | ${fmt(totalmem() / 2 ** 30, 1)} GiB |`,
  `| Node.js | ${process.version} |`,
  `| uWebSockets.js | ${uwsVersion} |`,
  '',
  'Speed targets live here, never in timed tests.',
  '',
  hubSection(),
  targetsSection(load.targets),
  broadcastSection(load.broadcast),
  filteredSection(load.filtered),
  clusterSection(load.cluster, load.socketioCluster),
  idleSection(load.idle),
  sessionSection(load.session),
  storeSection(load.store),
  notes(),
].join('\n');
writeFileSync(join(root, 'docs', 'benchmarks.md'), doc);
process.stdout.write('\ndocs/benchmarks.md written\n');
