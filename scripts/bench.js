// `npm run bench`: runs the benchmarks and writes docs/benchmarks.md with the figures, the command that
// produced them and the machine they ran on. Peers are measured side by side in the same run.
//
//   npm run bench                      the full run (writes docs/benchmarks.md and docs/bench/*.svg)
//   npm run bench -- --quick           smoke figures in a few minutes
//   npm run bench -- --only a,b        only these load scenarios (names in loadtest/src/bench.ts); --no-hub skips the hub micro-benchmark
//   npm run bench -- --doc <file>      write the report elsewhere (charts go to <its folder>/bench/)
//   node scripts/bench.js --render-only  re-render from the last full run's results in .bench-out (with --quick: the last quick run's)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { seriesOf, staircaseChart } from './bench-chart.js';

const root = join(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'render-only': { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-hub': { type: 'boolean', default: false },
    doc: { type: 'string' },
  },
});
const quick = opts.quick;
// A quick run keeps its results apart: it must not replace the full run's that `--render-only` re-renders.
const out = join(root, '.bench-out', quick ? 'quick' : '');
mkdirSync(out, { recursive: true });
// Re-renders docs/benchmarks.md from the last run's results in .bench-out without measuring again.
const renderOnly = opts['render-only'];
const docPath = resolve(root, opts.doc ?? join('docs', 'benchmarks.md'));
const chartDir = join(dirname(docPath), 'bench');

function run(cmd, cmdArgs) {
  process.stdout.write(`\n$ ${cmd} ${cmdArgs.join(' ')}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: { ...process.env, BENCH_QUICK: quick ? '1' : '' } });
  if (r.status !== 0) {
    process.stderr.write(`bench: ${cmd} failed with ${r.status}\n`);
    process.exit(r.status ?? 1);
  }
}

const hubJson = join(out, 'hub.json');
/** The last full run's idle figures (committed beside the charts): what the quick run must agree with. */
const idleReferencePath = join(root, 'docs', 'bench', 'idle.json');
const loadJson = join(out, 'loadtest.json');
if (!renderOnly) {
  if (!opts['no-hub']) run('npx', ['vitest', 'bench', '--run', 'packages/edge/src/hub.bench.ts', '--outputJson', hubJson]);
  // The quick run's idle figures are checked against the last full run's (the same ±10 % in both).
  const idleRef = ['--idle-reference', idleReferencePath];
  run('node', ['loadtest/dist/bench.js', '--out', loadJson, ...(quick ? ['--quick', ...idleRef] : []), ...(opts.only ? ['--only', opts.only] : [])]);
}

const fmt = (x, digits = 0) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function hubSection() {
  if (!existsSync(hubJson)) return '';
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
  let explained = false;
  for (const file of data.files) {
    for (const group of file.groups) {
      const perIter = Number(/(\d+) messages per iteration/.exec(group.fullName)?.[1] ?? 1);
      const subs = Number(/to (\d+) subscribers/.exec(group.fullName)?.[1] ?? 1);
      const bares = group.benchmarks.filter((b) => b.name.startsWith('bare uWS'));
      const bareMean = bares.reduce((sum, b) => sum + b.mean, 0) / Math.max(1, bares.length);
      const deviceGroups = /one delivery per message, (\d+) groups/.exec(group.fullName);
      if (deviceGroups && explained) lines.push(`### Filtered groups: ${Number(deviceGroups[1]).toLocaleString('en-US')} groups, one per device, each message matches one`, '');
      else if (deviceGroups) {
        explained = true;
        lines.push(
          `### Filtered groups: ${Number(deviceGroups[1]).toLocaleString('en-US')} groups, one per device, each message matches one`,
          '',
          'Subscriber i is filtered to device `d<i>` (one group each); every message names the next device, so it',
          'reaches exactly one subscriber. With groups indexed by attribute the hub\'s cost per message should not grow',
          'with the number of groups. Bare uWS sends the same frame with `ws.send` to one of as many sockets per message:',
          'writing to 10,000 distinct sockets costs the kernel and the caches more than to 100, whatever the hub does, so',
          'the hub\'s own growth is the change in "vs bare uWS" between the two group counts.',
          '',
        );
      }
      else lines.push(`### ${subs.toLocaleString('en-US')} subscriber${subs > 1 ? 's' : ''}`, '');
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
      `| ${fmt(s.rate)} | ${fmt(fanout)} | ${fmt(s.deliveredPerSec)} | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${ms(s.maxMs)} | ${fmt(s.lost)} | ${fmt(s.duplicatesOrReordered)} | ${cpuCell(s.cpuSec)} | ${genCell(s)} | ${s.sustained ? (s.retry ? 'yes (second try)' : 'yes') : s.fellBehind ? 'no (publisher behind)' : 'no'}${!s.sustained && s.retry ? ' (second try)' : ''} |`,
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
    `- **Redis's own XADD** (\`redis-benchmark -c 50 -P 16\`, same server, same payload): ${fmt(c.redisXaddPerSec)} req/s — our single path reaches ${fmt((100 * c.busPublishPerSec) / c.redisXaddPerSec, 1)} % of it, the batched path ${c.busBatchPublishPerSec ? fmt((100 * c.busBatchPublishPerSec) / c.redisXaddPerSec, 1) : '–'} %. A run of one channel's messages from one publish call is one history entry and one feed entry (up to 64 messages or ~16 KB) plus the offset, inside one atomic script.`,
    '',
  );
  if (sio) lines.push(systemBlock(sio, 'Peer: Socket.IO 4 + `@socket.io/redis-streams-adapter` on 2 nodes + Redis, same subscribers, publishing through node A:'));
  lines.push(chart('cluster', `Cluster (batched publishes), ${fmt(c.connections)} subscribers`, [{ name: 'Switchboard (2 edges + Redis)', fanout: c.connections, steps: c.steps }, sio], load.lagLimitsMs?.default), '');
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
    lines.push(chart(`broadcast-${c}`, `Broadcast (batched publishes), ${fmt(Number(c))} subscribers`, systems, Number(c) >= 10_000 ? load.lagLimitsMs?.['10000+'] : load.lagLimitsMs?.default), '');
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

function idleSection(list) {
  // Older results hold one figure; these hold a slope per dialect.
  const all = Array.isArray(list) ? list : list ? [] : [];
  if (all.length === 0) return '';
  const lines = [
    '## Idle connections (`idleScenario` in `loadtest/src/scenarios.ts`)',
    '',
    'Connections on one `switchboard edge` (with Redis and a session service, as deployed). Memory per connection is the',
    '**slope between two connection counts**, each read after a full GC (through the V8 inspector), so the fixed growth of a',
    'fresh process (V8\'s young generation sizing up during the first burst of connections) is not divided among the',
    'connections and a quick run measures what a full one does. RSS and the JS heap are reported apart: the difference is',
    'native memory (uWS sockets and buffers, the allocator).',
    '',
    '| dialect | a connection is | counts | RSS: none → first → second | JS heap after GC | RSS per connection | JS heap per connection | RSS per connection from none |',
    '| --- | --- | --- | --- | --- | ---: | ---: | ---: |',
  ];
  for (const i of all)
    lines.push(
      `| ${i.dialect} | ${i.what} | ${fmt(i.counts[0])} → ${fmt(i.counts[1])} | ${mib(i.rssBytes[0])} → ${mib(i.rssBytes[1])} → ${mib(i.rssBytes[2])} MiB | ${mib(i.heapBytes[0])} → ${mib(i.heapBytes[1])} → ${mib(i.heapBytes[2])} MiB | **${kb(i.rssPerConnection)} KB** | ${kb(i.heapPerConnection)} KB | ${kb(i.rssPerConnectionFromZero)} KB |`,
    );
  lines.push('', `This machine allows ${fmt(all[0].fdLimit)} open files per process, which caps the second count.`, '');
  return lines.join('\n');
}

function slowSection(s) {
  if (!s) return '';
  const lines = [
    '## Slow consumers (`slowConsumersScenario` in `loadtest/src/scenario-slow.ts`)',
    '',
    `${s.readers} valtronics readers subscribe to one channel next to one healthy reader, then stop reading (their TCP sockets paused)`,
    `while ${fmt(s.messagesPerSec)} messages/s of ${fmt(s.messageBytes)} B go to the channel for ${s.floodSeconds} s (${s.messagesPerRequest} per \`POST /api/publish\`).`,
    'Each round runs the same flood on a fresh `switchboard start` node twice, with the paused readers and without them; the',
    "readers' cost is the difference of the two peak RSS increases (sampled every 20 ms), since the flood alone grows the",
    `JS heap. Node-wide send-buffer budget: ${mib(s.budgetBytes)} MiB (the default).`,
    '',
    '| round | peak RSS: with readers | without | cost of the readers | RSS 2 s after: with / without | readers dropped (stalled) / closed 4008 | all gone after | healthy reader |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  s.rounds.forEach((r, i) => {
    const w = r.withReaders;
    lines.push(
      `| ${i + 1} | +${mib(w.peakDeltaBytes)} MiB | +${mib(r.alone.peakDeltaBytes)} MiB | **+${mib(w.peakDeltaBytes - r.alone.peakDeltaBytes)} MiB** | +${mib(w.afterDeltaBytes)} / +${mib(r.alone.afterDeltaBytes)} MiB | ${fmt(w.disconnects.stalled ?? 0)} / ${fmt(w.disconnects.slow ?? 0)} | ${w.allClosedMs === null ? 'n/a' : `${fmt(w.allClosedMs / 1000, 1)} s`} | ${fmt(w.healthyReceived)} of ${fmt(w.published)} |`,
    );
  });
  lines.push('', `Median cost: **+${mib(s.medianCostBytes)} MiB**.`, '');
  return lines.join('\n');
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

if (!existsSync(loadJson)) {
  process.stderr.write(`bench: no results in ${relative(root, loadJson)}: run \`npm run bench${quick ? ' -- --quick' : ''}\` first\n`);
  process.exit(1);
}
const load = JSON.parse(readFileSync(loadJson, 'utf8'));
if (renderOnly) {
  // The targets are judged again by the current loadtest/dist/targets.js: a re-render shows today's
  // wording and context lines for the figures that were measured.
  const { evaluate } = await import('../loadtest/dist/targets.js');
  load.targets = evaluate(load);
}
if (!renderOnly && !load.quick && Array.isArray(load.idle) && load.idle.length > 0) {
  const dialects = Object.fromEntries(load.idle.map((i) => [i.dialect, { rssPerConnection: i.rssPerConnection, counts: i.counts }]));
  mkdirSync(dirname(idleReferencePath), { recursive: true });
  writeFileSync(idleReferencePath, `${JSON.stringify({ date: load.startedAt.slice(0, 10), dialects }, null, 2)}\n`);
}

/** Writes a staircase chart and returns the markdown line that shows it. */
function chart(name, title, systems, limitMs) {
  const series = seriesOf(systems);
  if (series.length === 0) return '';
  mkdirSync(chartDir, { recursive: true });
  const file = join(chartDir, `${name}.svg`);
  writeFileSync(file, staircaseChart(title, series, limitMs));
  return `![${title}](${relative(dirname(docPath), file).split('\\').join('/')})`;
}

const cpuTotal = (c) => Object.values(c).reduce((a, x) => a + x, 0);
const perMillion = (s) => (s && s.delivered > 0 ? (cpuTotal(s.cpuSec) / s.delivered) * 1e6 : NaN);
const kb = (b) => fmt(b / 1024, 2);
const mib = (b) => fmt(b / 2 ** 20, 1);

function publishSingleSection(p) {
  if (!p) return '';
  const lines = [
    '## Publish, one message per request, 16 in flight (`loadtest/src/scenario-publish.ts`)',
    '',
    `The common way a backend publishes: one event per \`POST\`, keep-alive, at most ${p.inFlight} requests in flight`,
    `(a lean HTTP/1.1 client, so the generator costs less than the servers). ${fmt(p.connections)} subscribers of one channel, ~100-byte`,
    'payloads, the same staircase for every system. Bare uWebSockets.js is fed its best way: one message per frame over',
    'one WebSocket, unacknowledged. Switchboard\'s persistent publish socket (`/api/publish/ws`: one message per frame,',
    'each acknowledged with its position, many in flight) is measured on the same node after its HTTP staircase.',
    'Socket.IO 4 (one node, and two nodes with `@socket.io/redis-streams-adapter`) takes the same `POST`s on its own',
    'HTTP server; the 2-node peers are published to through node A, Switchboard\'s 2 edges through both.',
    '',
    '| system | max sustained deliveries/s | at msg/s | p99 ms there | CPU-s per million deliveries' + (p.commonRate ? ` (at ${fmt(p.commonRate)} msg/s)` : '') + ' |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const r of p.systems) {
    const cpm = perMillion(r.common);
    lines.push(`| ${r.name} | ${r.max ? fmt(r.max.deliveredPerSec) : 'none sustained'} | ${r.max ? fmt(r.max.rate) : '–'} | ${r.max ? ms(r.max.p99Ms) : '–'} | ${Number.isFinite(cpm) ? fmt(cpm, 2) : '–'} |`);
  }
  lines.push('');
  if (p.clusterAtHalf) {
    const h = p.clusterAtHalf;
    lines.push(`Switchboard on 2 edges at half its maximum (${fmt(h.rate)} msg/s): p50 ${ms(h.p50Ms)} ms, p99 ${ms(h.p99Ms)} ms, lost ${fmt(h.lost)}.`, '');
  }
  lines.push(chart('publish-single', `One message per request, ${p.inFlight} in flight, ${p.connections} subscribers`, p.systems, load.lagLimitsMs?.default), '');
  for (const r of p.systems) lines.push(`<details><summary>${r.name}: every step</summary>`, '', ...stepsTable(r.steps, r.fanout), '', '</details>', '');
  return lines.join('\n');
}

function groupsSection(g) {
  if (!g) return '';
  const lines = [
    '## Filtered fan-out: one group per device (`loadtest/src/scenario-groups.ts`)',
    '',
    'One node (`switchboard start`); G valtronics subscribers of `telemetry`, each filtered to its own device (G groups);',
    `every message names one device, so it matches one group and reaches one subscriber. Batched publishes at ${fmt(g.rate)} msg/s,`,
    'the same for both nodes, measured in alternation; the CPU of the idle node over as long is measured just before each',
    'step and subtracted ("net"), and the lower of the rounds is kept. Bare uWebSockets.js, measured in the same',
    'alternation, sends each message of the same batches with `ws.send` to one of G sockets in turn: what writing to',
    '100 times as many sockets costs with nothing in between.',
    '',
    '| system | groups (sockets) | CPU µs per message | net of idle | idle cores | delivered/s | p99 ms | lost | rounds |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const rows = [...g.points.map((pt) => ['Switchboard (1 node)', pt]), ...(g.bare ?? []).map((pt) => ['bare uWebSockets.js', pt])];
  for (const [name, pt] of rows)
    lines.push(`| ${name} | ${fmt(pt.groups)} | ${fmt(pt.cpuUsPerMessage, 1)} | ${fmt(pt.netCpuUsPerMessage, 1)} | ${fmt(pt.idleCores, 3)} | ${fmt(pt.step.deliveredPerSec)} | ${ms(pt.step.p99Ms)} | ${fmt(pt.step.lost)} | ${pt.rounds} |`);
  lines.push('');
  return lines.join('\n');
}

function channelsSection(c) {
  if (!c) return '';
  const sub = c.subscribe;
  const subCpu = cpuTotal(sub.cpuSec);
  const lines = [
    '## Many channels, one subscriber each (`loadtest/src/scenario-channels.ts`)',
    '',
    `${fmt(c.connections)} valtronics connections, each with a tenant of its own, so that each of its subscriptions (\`alerts\`, then`,
    `\`devices\` and \`telemetry\`) is a bus channel of its own: **${fmt(c.channels)} channels**, one subscriber each, on two edges`,
    '(an edge holds fewer than this machine\'s 20,000 open files) with a session service and one Redis.',
    '',
    `- **Connect + auth + first subscribe** of all ${fmt(c.connections)} connections: ${fmt(c.openSec, 1)} s.`,
    `- **Subscribe cost**: ${fmt(sub.count)} more subscribes (two per connection, already open) in ${fmt(sub.seconds, 1)} s = ${fmt(sub.count / sub.seconds)}/s; p50 ${ms(sub.p50Ms)} ms, p99 ${ms(sub.p99Ms)} ms; server CPU ${fmt((subCpu / sub.count) * 1e6, 1)} µs per subscribe (${cpuCell(sub.cpuSec)} CPU-s).`,
    `- **Edge memory per idle channel subscription** (slope from one to three channels per connection, after a full GC): **${fmt(c.rssPerChannelBytes)} B RSS**, ${fmt(c.heapPerChannelBytes)} B JS heap.`,
    `- **Redis**: ${fmt((c.redisBytes[2] - c.redisBytes[1]) / (c.connections * 2))} B \`used_memory\` per added subscription (the session's record of it); ${fmt((c.redisBytes[3] - c.redisBytes[2]) / c.channels)} B per channel once it has one message (position, history, feed entry). One channel's keys: ${Object.entries(c.redisKeysOfOneChannel).map(([k, v]) => `${k} ${fmt(v)} B`).join(', ') || '–'}.`,
    `- **Bus interest**: each edge reads ${c.shardsRead.map((x) => fmt(x)).join(' and ')} shards; during the staircase they handed ${c.busRead.map((x) => fmt(x)).join(' and ')} feed entries to their hubs and read and skipped ${c.busSkipped.map((x) => fmt(x)).join(' and ')} more (entries of channels with no subscriber on that edge).`,
    '',
    '| edge | connections | RSS: none → 1 channel each → 3 | JS heap after GC: none → 1 → 3 |',
    '| --- | ---: | --- | --- |',
    ...c.edges.map((e) => `| ${e.name} | ${fmt(e.connections)} | ${mib(e.rssBytes[0])} → ${mib(e.rssBytes[1])} → ${mib(e.rssBytes[2])} MiB | ${mib(e.heapBytes[0])} → ${mib(e.heapBytes[1])} → ${mib(e.heapBytes[2])} MiB |`),
    '',
  ];
  if (c.heapGrowth) {
    lines.push(
      `What the JS heap holds per channel (heap snapshots of one edge before and after ${fmt(c.heapGrowth.channels)} more channels on ${fmt(c.heapGrowth.connections)} connections; the largest growths):`,
      '',
      '| kind | objects per channel | bytes per channel |',
      '| --- | ---: | ---: |',
      ...c.heapGrowth.top.map((g) => `| ${g.name.replace(/\|/g, '\\|')} | ${fmt(g.countPerUnit, 2)} | ${fmt(g.bytesPerUnit)} |`),
      '',
      'Native memory (uWS topics and socket buffers) is in the RSS, not in these rows.',
      '',
    );
  }
  lines.push(
    `Deliveries with publishes spread over every channel (batched \`POST\`s through both edges, each message to its own channel), next to bare uWebSockets.js sending each message with \`ws.send\` to one socket of its own:`,
    '',
    '| system | max sustained deliveries/s | at msg/s | p99 ms there |',
    '| --- | ---: | ---: | ---: |',
    ...[c.switchboard, c.bare].map((r) => `| ${r.name} | ${r.max ? fmt(r.max.deliveredPerSec) : 'none sustained'} | ${r.max ? fmt(r.max.rate) : '–'} | ${r.max ? ms(r.max.p99Ms) : '–'} |`),
    '',
    chart('channels', `${fmt(c.channels)} channels, one subscriber each`, [c.switchboard, c.bare], load.lagLimitsMs?.default),
    '',
  );
  for (const r of [c.switchboard, c.bare]) lines.push(`<details><summary>${r.name}: every step</summary>`, '', ...stepsTable(r.steps, r.fanout), '', '</details>', '');
  return lines.join('\n');
}

function redisSection(r) {
  if (!r) return '';
  const lines = [
    '## Publishing through Redis (`loadtest/src/scenario-redis.ts`)',
    '',
    `One edge and a session service publishing through one Redis master, then through a 3-master Redis Cluster; no subscribers.`,
    `Closed-loop drivers (as fast as acknowledgements come back), ${r.channels} channels, ~${r.payloadBytes}-byte payloads, ${r.seconds} s each.`,
    `Redis's own rate in the same run: \`redis-benchmark\` XADD (50 clients, pipeline 16, same payload) on the single master: **${fmt(r.xaddPerSec)} req/s**,`,
    `${fmt(r.xaddRedisCpuUsPerOp, 2)} µs of Redis CPU per XADD. A run of one channel's messages from one publish call is one history entry and one feed entry (up to 64 messages or ~16 KB) plus its offset, in one script.`,
    '',
    '| Redis | driver | msg/s acknowledged | vs XADD | server CPU-s (per process) | Redis CPU µs per message |',
    '| --- | --- | ---: | ---: | --- | ---: |',
  ];
  for (const t of [r.single, r.cluster]) {
    for (const run of t.runs) {
      const redisCpu = Object.entries(run.cpuSec).filter(([k]) => k.startsWith('redis')).reduce((a, [, v]) => a + v, 0);
      lines.push(
        `| ${t.target} | ${run.driver} | ${fmt(run.perSec)}${run.errors ? ` (${fmt(run.errors)} refused)` : ''} | ${fmt((100 * run.perSec) / r.xaddPerSec)} % | ${cpuCell(run.cpuSec)} | ${run.messages ? fmt((redisCpu / run.messages) * 1e6, 2) : '–'} |`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

function replicasSection(r) {
  if (!r) return '';
  const lines = [
    '## Acknowledged means replicated (`loadtest/src/scenario-replicas.ts`)',
    '',
    'A Redis master with one replica, one edge, a session service. `SWITCHBOARD_PUBLISH_MIN_REPLICAS=1` answers a publish only once',
    'the replica has it (the publish script, `WAIT 1`, then the announce that makes the messages visible); `0` answers on the',
    `master's write. At ${fmt(r.rate)} msg/s, one message per \`POST\`, 16 in flight, ${fmt(r.subscribers)} subscribers: the acknowledgement latency`,
    `(request written → response read) and publish → delivery latency. Then the most acknowledged per second, closed-loop for ${r.seconds} s.`,
    '',
    '| min replicas | ack p50 ms | ack p99 ms | delivery p50 ms | delivery p99 ms | lost | max msg/s, one per POST (16 in flight) | max msg/s, publish socket (1,024 in flight) | replica waits ok / failed |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const p of r.points)
    lines.push(
      `| ${p.minReplicas} | ${ms(p.ackP50Ms)} | ${ms(p.ackP99Ms)} | ${ms(p.step.p50Ms)} | ${ms(p.step.p99Ms)} | ${fmt(p.step.lost)} | ${fmt(p.maxHttp.perSec)}${p.maxHttp.errors ? ` (${fmt(p.maxHttp.errors)} refused)` : ''} | ${fmt(p.maxSocket.perSec)}${p.maxSocket.errors ? ` (${fmt(p.maxSocket.errors)} refused)` : ''} | ${fmt(p.replicated)} / ${fmt(p.notReplicated)} |`,
    );
  const [a, b] = [r.points.find((p) => p.minReplicas === 0), r.points.find((p) => p.minReplicas === 1)];
  if (a && b)
    lines.push(
      '',
      `Replicated acks add ${ms(b.ackP50Ms - a.ackP50Ms)} ms to the p50 acknowledgement and ${ms(b.step.p50Ms - a.step.p50Ms)} ms to the p50 delivery, and carry ${fmt((100 * b.maxHttp.perSec) / a.maxHttp.perSec)} % (one per POST) and ${fmt((100 * b.maxSocket.perSec) / a.maxSocket.perSec)} % (socket) of the master-acked rate.`,
    );
  lines.push('');
  return lines.join('\n');
}

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
  ...(load.rerun ? ['', `Re-run alone (\`node loadtest/dist/bench.js --only ${load.rerun.scenarios.join(',')}\`, merged into this run's results) at ${String(load.rerun.startedAt).slice(0, 16).replace('T', ' ')} UTC: ${load.rerun.why}.`] : []),
  '',
  `Generator: ${load.generatorProcesses} worker processes on the same machine; a step counts as sustained when nothing was lost,`,
  `duplicated or reordered, the publisher kept its rate and the p99 stayed under ${load.lagLimitsMs ? `${load.lagLimitsMs.default} ms (${load.lagLimitsMs['10000+']} ms from 10 000 subscribers)` : 'the lag limit'}.`,
  `A rate fails when two steps at it in a row are not sustained (every system gets the second try; both are in the tables).`,
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
  publishSingleSection(load.publishSingle),
  broadcastSection(load.broadcast),
  filteredSection(load.filtered),
  groupsSection(load.groups),
  clusterSection(load.cluster, load.socketioCluster),
  channelsSection(load.channels),
  redisSection(load.redis),
  replicasSection(load.replicas),
  idleSection(load.idle),
  slowSection(load.slow),
  sessionSection(load.session),
  storeSection(load.store),
  notes(),
].join('\n');
mkdirSync(dirname(docPath), { recursive: true });
writeFileSync(docPath, doc);
process.stdout.write(`\n${relative(root, docPath)} written\n`);
