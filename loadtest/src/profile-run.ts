/**
 * Profiles one publish path: starts a Switchboard (`--stack node`: `switchboard start`; `--stack redis`:
 * an edge, a session service and a redis-server), optionally with subscribers, drives it with one
 * publisher for a while, and records the edge's CPU profile over exactly that time (through the V8
 * inspector). Prints the rate, the edge's CPU per message and where it went (self time per module and
 * per function), and writes the `.cpuprofile` (open it in Chrome DevTools or speedscope).
 *
 *   node loadtest/dist/profile-run.js --stack redis --driver http-single [--subscribers 1000] [--rate 2000] [--seconds 5] [--out f.cpuprofile]
 *
 * Drivers: http-single (one message per POST, 16 in flight), socket-single (publish socket, one message per
 * frame, 1,024 in flight), http-batch / socket-batch (100 messages per request or frame, 16 in flight).
 * Without `--rate` the driver runs closed-loop (as fast as acknowledgements come back).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_API_KEY, DEV_JWT_SECRET } from '@switchboard/core';
import { startRedis, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { cpuSeconds } from './cpu.js';
import { selfTimes } from './cpuprofile-top.js';
import { LoadGenerator, publishAtRate } from './generator.js';
import { inspectOptions, Inspector } from './inspector.js';
import { closedLoop, endpointOf, httpOnePerRequest, wsFrames, type Publisher } from './publishers.js';
import { LOAD_EDGE_ENV, LOAD_SESSION_ENV, nodeOptions, stampedPayload } from './switchboard.js';

const { values } = parseArgs({
  options: {
    stack: { type: 'string', default: 'redis' },
    driver: { type: 'string', default: 'http-single' },
    subscribers: { type: 'string', default: '0' },
    rate: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '5' },
    out: { type: 'string' },
    top: { type: 'string', default: '20' },
  },
});
const bin = join(import.meta.dirname, '..', '..', 'packages', 'cli', 'bin', 'switchboard.js');
const subscribers = Number(values.subscribers);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const out = values.out ?? `/tmp/${values.stack}-${values.driver}.cpuprofile`;
const AUTH = { Authorization: `Bearer ${DEV_API_KEY}` };

const stopAll: (() => Promise<unknown>)[] = [];
const insp = await inspectOptions();
let edge: SwitchboardProcess;
if (values.stack === 'node') {
  edge = await startSwitchboard(bin, 'start', { ...LOAD_EDGE_ENV, NODE_ID: 'profile', SESSION_PORT: '0', ...nodeOptions(insp.nodeOptions) });
  stopAll.push(() => edge.stop());
} else {
  const redis = await startRedis();
  stopAll.push(() => redis.stop());
  const session = await startSwitchboard(bin, 'session', { ...LOAD_SESSION_ENV, REDIS_URL: redis.url, NODE_ID: 'profile-session' }, 20_000, 'SESSION_PORT');
  stopAll.unshift(() => session.stop());
  edge = await startSwitchboard(bin, 'edge', { ...LOAD_EDGE_ENV, REDIS_URL: redis.url, SWITCHBOARD_SESSION_URL: session.httpUrl, NODE_ID: 'profile-edge', ...nodeOptions(insp.nodeOptions) });
  stopAll.unshift(() => edge.stop());
}
const ins = await Inspector.connect(insp.port);
let gen: LoadGenerator | null = null;
try {
  if (subscribers > 0) {
    gen = await LoadGenerator.start(
      { targets: [{ host: '127.0.0.1', port: edge.port, path: '/ws' }], protocol: 'valtronics', tokens: [], mint: { secret: DEV_JWT_SECRET, users: 1 }, subscriptions: [{ channel: 'alerts' }], latencyEvery: subscribers },
      subscribers,
      2,
    );
  }
  // With subscribers everything goes to their channel; without, over 16 channels (tenants).
  const payload = stampedPayload(100);
  let k = 0;
  const tenant = () => (subscribers > 0 ? '' : `"tenant":"t${k++ % 16}",`);
  const one = () => `{${tenant()}"channel":"alerts","data":${JSON.stringify(payload())}}`;
  const batch = () => `{${tenant()}"messages":[${Array.from({ length: 100 }, () => `{"channel":"alerts","data":${JSON.stringify(payload())}}`).join(',')}]}`;
  const ep = endpointOf(edge.httpUrl);
  const drivers: Record<string, () => Promise<{ pub: Publisher; perSend: number; inFlight: number; perMessage: number }>> = {
    'http-single': () => Promise.resolve({ pub: httpOnePerRequest([ep], '/api/publish', AUTH, one, 16), perSend: 1, inFlight: 16, perMessage: 1 }),
    'socket-single': async () => ({ pub: await wsFrames(ep, '/api/publish/ws', AUTH, (id) => `{"id":${id},${one().slice(1)}`, true), perSend: 64, inFlight: 16, perMessage: 1 }),
    'http-batch': () => Promise.resolve({ pub: httpOnePerRequest([ep], '/api/publish', AUTH, batch, 16), perSend: 1, inFlight: 16, perMessage: 100 }),
    'socket-batch': async () => ({ pub: await wsFrames(ep, '/api/publish/ws', AUTH, (id) => `{"id":${id},${batch().slice(1)}`, true), perSend: 1, inFlight: 16, perMessage: 100 }),
  };
  const make = drivers[values.driver];
  if (!make) throw new Error(`unknown driver ${values.driver}: ${Object.keys(drivers).join(', ')}`);
  const d = await make();
  try {
    // `rate` is messages per second; a send of a batch driver carries 100.
    const atRate = (ms: number) =>
      publishAtRate(d.pub.send, rate / d.perMessage, ms, d.perMessage === 1 ? (values.driver === 'http-single' ? 1 : 500) : 1, values.driver === 'socket-single' ? 64 : 16);
    // Warmed up the way it is measured: a closed loop in front of subscribers floods them, and the backlog
    // it leaves in their sockets would be what the measured half second after it profiles.
    if (rate > 0) await atRate(500);
    else await closedLoop(d.pub.send, d.perSend, d.inFlight, 0.5);
    const c0 = cpuSeconds(edge.child.pid!);
    await ins.startProfiling();
    let messages: number;
    let elapsed: number;
    if (rate > 0) {
      const r = await atRate(seconds * 1000);
      messages = (r.sent - r.errors) * d.perMessage;
      elapsed = r.elapsedMs / 1000;
    } else {
      const r = await closedLoop(d.pub.send, d.perSend, d.inFlight, seconds);
      messages = r.messages * d.perMessage;
      elapsed = r.seconds;
      if (r.errors) process.stdout.write(`${r.errors} refused: ${r.firstError}\n`);
    }
    const profile = await ins.stopProfiling();
    const cpu = cpuSeconds(edge.child.pid!) - c0;
    writeFileSync(out, JSON.stringify(profile));
    const s = selfTimes(profile as Parameters<typeof selfTimes>[0]);
    const top = (m: Map<string, number>) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, Number(values.top))
        .map(([name, us]) => `${((100 * us) / s.totalUs).toFixed(1).padStart(5)} %  ${name}`)
        .join('\n');
    process.stdout.write(
      `${values.stack} / ${values.driver}${subscribers ? `, ${subscribers} subscribers` : ''}: ${Math.round(messages / elapsed)} msg/s; edge CPU ${cpu.toFixed(2)} s = ${((cpu / messages) * 1e6).toFixed(1)} µs per message (${(cpu / elapsed).toFixed(2)} cores)\n` +
        `profile: ${out}\n-- self time by module\n${top(s.byModule)}\n-- self time by function\n${top(s.byFunction)}\n`,
    );
  } finally {
    d.pub.close();
  }
} finally {
  ins.close();
  await gen?.close();
  for (const stop of stopAll) await stop();
}
