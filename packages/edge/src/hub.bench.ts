/**
 * Fan-out micro-benchmark: the hub dispatching one telemetry message to 1 / 1k / 10k subscribers in
 * 1 / 10 / 100 groups over real uWS sockets, side by side with bare uWS `app.publish` of a pre-rendered
 * frame to one topic (the upper line of this stack), measured before and after the hub cases so that
 * the spread between the two shows the noise of the run.
 *
 * The clock is this process's CPU time (user + system, `process.cpuUsage`), not wall time: the
 * subscribers are read by a separate sink process on the same machine, and what matters is what the
 * server pays per message. One iteration is one bus-sized batch of {@link BATCH} messages plus one
 * event-loop turn, in which uWS drains its topic queues into the sockets, so each sample carries its own
 * socket writes. When sample sockets back up, the loop waits (idle, not counted) for the sink, so uWS
 * never starts skipping sockets and every message is really written.
 * The last group of cases is the IoT shape: one group per device, one subscriber each, every message
 * naming one device — 100 groups against 10,000, next to bare uWS `ws.send` to one socket per message.
 * `npm run bench` runs this and writes docs/benchmarks.md.
 */
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { MemoryBroker } from '@switchboard/bus';
import { createLogger, createMetricsRegistry, type Envelope } from '@switchboard/core';
import { startWsSink, type WsSink } from '@switchboard/testkit';
import { Hub, type GroupSpec, type HubConnection } from './hub.js';
import { EdgeMetrics } from './metrics.js';
import { ParsedDataCache, renderValtronicsUpdate } from '@switchboard/protocol';
import { uWS, type WebSocket, type us_listen_socket } from './uws.js';

const MAX_SUBSCRIBERS = 10_000;
/** Messages per iteration: what one bus read typically hands the hub under load. */
export const BATCH = 10;
/** Pause the loop when a sample socket holds this much unsent data. */
const BACKLOG_BYTES = 256 * 1024;

interface Conn extends HubConnection {
  ws: WebSocket<Conn>;
}

const app = uWS.App();
const conns: Conn[] = [];
let listen: us_listen_socket | null = null;
let sink: WsSink | null = null;
const broker = new MemoryBroker({ historySize: 0, historyTtlSec: 60 });
const bus = broker.node();
const cache = new ParsedDataCache();
const CHANNEL = 'valtronics:default:telemetry';
const hub = new Hub({
  bus,
  // What the valtronics dialect's renderer does for a telemetry group.
  renderer: (spec) => (env) => renderValtronicsUpdate('telemetry', env, spec.projection, cache),
  metrics: new EdgeMetrics(createMetricsRegistry({ processMetrics: false })),
  logger: createLogger({ name: 'bench', level: 'silent' }),
});

app.ws<Conn>('/bench', {
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  upgrade: (res, req, ctx) => {
    res.upgrade({ closed: false, subs: new Map(), app }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), ctx);
  },
  open: (ws) => {
    const c = ws.getUserData();
    c.ws = ws;
    conns.push(c);
  },
  close: (ws) => {
    ws.getUserData().closed = true;
  },
});

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let offset = 0;
const data = JSON.stringify({ temperature: { value: 23.5, unit: '°C' }, humidity: { value: 45.2, unit: '%' } });
function nextBatch(): Envelope[] {
  const batch: Envelope[] = [];
  const ts = Date.now();
  for (let i = 0; i < BATCH; i++) batch.push({ channel: CHANNEL, offset: ++offset, epoch: 'bench', ts, attrs: { device_id: 1 }, data });
  return batch;
}
const BARE_FRAME = `{"type":"telemetry_update","channel":"telemetry","device_id":1,"telemetry":${data},"offset":1,"epoch":"bench"}`;

let samples: Conn[] = [];
/**
 * One event-loop turn (uWS drains its topic queues into the sockets), then idle-waits while the sink is
 * behind, so no socket passes uWS's limit and nothing is skipped.
 */
async function turn(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  while (samples.some((c) => c.ws.getBufferedAmount() > BACKLOG_BYTES)) await sleep(1);
}

async function arrangeHub(subscribers: number, groups: number, projected: boolean): Promise<void> {
  await reset();
  for (let i = 0; i < subscribers; i++) {
    const g = i % groups;
    // Every group matches device 1; groups differ by a second device (and, projected, by metrics).
    const spec: GroupSpec = {
      dialect: 'valtronics',
      channel: CHANNEL,
      filter: { device_id: ['1', `x${g}`] },
      projection: projected ? ['temperature', `m${g}`] : null,
      frequencyMs: 0,
      conflateBy: 'device_id',
      render: { key: 'telemetry', context: 'telemetry' },
    };
    await hub.subscribe(conns[i]!, 'telemetry', spec, null, () => {});
  }
  samples = pickSamples(subscribers);
}

/** One group per device: subscriber i filtered to device `d<i>`, for the first `groups` connections. */
async function arrangeDeviceGroups(groups: number): Promise<void> {
  await reset();
  for (let i = 0; i < groups; i++) {
    const spec: GroupSpec = {
      dialect: 'valtronics',
      channel: CHANNEL,
      filter: { device_id: [`d${i}`] },
      projection: null,
      frequencyMs: 0,
      conflateBy: 'device_id',
      render: { key: 'telemetry', context: 'telemetry' },
    };
    await hub.subscribe(conns[i]!, 'telemetry', spec, null, () => {});
  }
  samples = pickSamples(groups);
}

let device = 0;
/** A batch of messages for consecutive devices of `groups`: each matches exactly one group. */
function deviceBatch(groups: number): Envelope[] {
  const batch: Envelope[] = [];
  const ts = Date.now();
  for (let i = 0; i < BATCH; i++) batch.push({ channel: CHANNEL, offset: ++offset, epoch: 'bench', ts, attrs: { device_id: `d${device++ % groups}` }, data });
  return batch;
}

async function arrangeBare(subscribers: number): Promise<void> {
  await reset();
  for (let i = 0; i < subscribers; i++) conns[i]!.ws.subscribe('bare');
  samples = pickSamples(subscribers);
}

function pickSamples(n: number): Conn[] {
  return Array.from({ length: Math.min(8, n) }, (_, k) => conns[Math.floor((k * n) / Math.min(8, n))]!);
}

async function reset(): Promise<void> {
  for (const c of conns) {
    hub.unsubscribe(c, 'telemetry');
    c.ws.unsubscribe('bare');
  }
  while (conns.some((c) => c.ws.getBufferedAmount() > 0)) await sleep(5);
}

beforeAll(async () => {
  await new Promise<void>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (ls) => {
      if (!ls) reject(new Error('listen failed'));
      else {
        listen = ls;
        resolve();
      }
    }),
  );
  sink = await startWsSink(uWS.us_socket_local_port(listen!), '/bench', MAX_SUBSCRIBERS);
  while (conns.length < MAX_SUBSCRIBERS) await sleep(10);
}, 120_000);

afterAll(async () => {
  await reset();
  await sink?.close();
  if (listen) uWS.us_listen_socket_close(listen);
  hub.close();
  broker.close();
});

/** `npm run bench -- --quick` sets BENCH_QUICK for a smoke figure in seconds. */
const QUICK = process.env.BENCH_QUICK === '1';

const options = (arrange: () => Promise<void>) => ({
  now: cpuMs,
  time: QUICK ? 300 : 1500,
  warmupTime: QUICK ? 100 : 300,
  setup: async (_task: unknown, mode: 'warmup' | 'run') => {
    if (mode === 'warmup') await arrange();
  },
});

const CASES: [number, number, boolean][] = [
  [1, 1, false],
  [1000, 1, false],
  [1000, 10, false],
  [1000, 100, false],
  [10_000, 1, false],
  [10_000, 10, false],
  [10_000, 100, false],
  [10_000, 100, true],
];

for (const subscribers of [1, 1000, 10_000]) {
  describe(`fan-out to ${subscribers} subscribers: ${BATCH} messages per iteration, server CPU time`, () => {
    bench(
      `bare uWS app.publish, 1 topic (run first), ${subscribers} subs`,
      async () => {
        for (let i = 0; i < BATCH; i++) app.publish('bare', BARE_FRAME, false, false);
        await turn();
      },
      options(() => arrangeBare(subscribers)),
    );
    for (const [s, groups, projected] of CASES) {
      if (s !== subscribers) continue;
      bench(
        `hub.dispatch, ${groups} group${groups > 1 ? 's' : ''}${projected ? ' (each its own projection)' : ''}, ${subscribers} subs`,
        async () => {
          hub.dispatch(nextBatch());
          await turn();
        },
        options(() => arrangeHub(subscribers, groups, projected)),
      );
    }
    bench(
      `bare uWS app.publish, 1 topic (run last), ${subscribers} subs`,
      async () => {
        for (let i = 0; i < BATCH; i++) app.publish('bare', BARE_FRAME, false, false);
        await turn();
      },
      options(() => arrangeBare(subscribers)),
    );
  });
}

for (const groups of [100, 10_000]) {
  // Bare uWS over the same number of sockets: touching 100 or 10,000 distinct sockets costs the kernel and
  // the caches differently, whatever the hub does; the hub's own growth is its ratio to this line.
  describe(`filtered groups, one delivery per message, ${groups} groups: ${BATCH} messages per iteration, server CPU time`, () => {
    let bareTo = 0;
    const bareSend = async () => {
      for (let i = 0; i < BATCH; i++) conns[bareTo++ % groups]!.ws.send(BARE_FRAME, false, false);
      await turn();
    };
    const arrangeSockets = async () => {
      await reset();
      samples = pickSamples(groups);
    };
    bench(`bare uWS ws.send to one of ${groups.toLocaleString('en-US')} sockets per message (run first)`, bareSend, options(arrangeSockets));
    bench(
      `hub.dispatch, ${groups.toLocaleString('en-US')} groups (one per device), each message matches one`,
      async () => {
        hub.dispatch(deviceBatch(groups));
        await turn();
      },
      options(() => arrangeDeviceGroups(groups)),
    );
    bench(`bare uWS ws.send to one of ${groups.toLocaleString('en-US')} sockets per message (run last)`, bareSend, options(arrangeSockets));
  });
}
