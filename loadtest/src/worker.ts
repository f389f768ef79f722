/**
 * A load-generator worker process: opens its share of subscriber connections, subscribes them, and
 * checks every message: offsets must increase on each connection (duplicates, reorders and skips are
 * counted); sampled connections record publish→receive latency from the message's send stamp.
 * Workers are processes, not threads: each has its own file-descriptor limit, so a few of them hold
 * tens of thousands of connections.
 */
import { RawWs } from './ws-raw.js';
import { extract, wallMs, type SubscriberSpec, type WindowStats } from './protocol.js';

interface Init {
  readonly spec: SubscriberSpec;
  /** Global index of this worker's first connection. */
  readonly first: number;
  readonly count: number;
}

const { spec, first, count } = JSON.parse(process.argv[2]!) as Init;
const post = (m: unknown) => process.send!(m);
const last = new Float64Array(count).fill(-1);
let stats: WindowStats = { received: 0, duplicatesOrReordered: 0, skipped: 0, latenciesMs: [], open: 0, closed: 0 };
const MAX_SAMPLES = 200_000;
const sockets: RawWs[] = [];

function onData(k: number, sampled: boolean, payload: Buffer): void {
  const m = extract(payload);
  if (m === null) return;
  stats.received++;
  const prev = last[k]!;
  if (prev >= 0) {
    if (m.offset <= prev) stats.duplicatesOrReordered++;
    else if (m.offset > prev + 1) stats.skipped += m.offset - prev - 1;
  }
  if (m.offset > prev) last[k] = m.offset;
  if (sampled && stats.latenciesMs.length < MAX_SAMPLES) stats.latenciesMs.push(wallMs() - m.stamp);
}

async function openOne(k: number): Promise<void> {
  const g = first + k;
  const target = spec.targets[g % spec.targets.length]!;
  const sampled = g % spec.latencyEvery === 0;
  let ready: () => void = () => {};
  let refuse: (e: Error) => void = () => {};
  const isReady = new Promise<void>((r, j) => {
    ready = r;
    refuse = j;
  });
  let subscribed = false;
  const onMessage = (payload: Buffer, ws: RawWs) => {
    if (subscribed) {
      if (spec.protocol === 'socketio' && payload.length === 1 && payload[0] === 0x32) ws.sendText('3');
      else onData(k, sampled, payload);
      return;
    }
    const text = payload.toString('utf8');
    if (spec.protocol === 'valtronics' && text.includes('"subscribe_response"')) {
      subscribed = true;
      ready();
    } else if (spec.protocol === 'socketio') {
      if (text.startsWith('0{')) ws.sendText('40');
      else if (text.startsWith('40')) {
        subscribed = true;
        ready();
      } else if (text === '2') ws.sendText('3');
    } else if (spec.protocol === 'valtronics' && (text.includes('"success":false') || text.includes('"type":"error"'))) refuse(new Error(`refused: ${text}`));
  };
  const ws = await RawWs.connect(target.host, target.port, target.path, onMessage, () => {
    stats.closed++;
  });
  sockets.push(ws);
  if (spec.protocol === 'plain') {
    subscribed = true;
    ready();
  } else if (spec.protocol === 'valtronics') {
    ws.sendText(JSON.stringify({ type: 'auth', token: spec.tokens[g % spec.tokens.length] }));
    ws.sendText(JSON.stringify({ type: 'subscribe', ...spec.subscriptions[g % spec.subscriptions.length] }));
  }
  await isReady;
  stats.open++;
}

async function openAll(): Promise<void> {
  const WAVE = 200;
  for (let i = 0; i < count; i += WAVE) {
    await Promise.all(Array.from({ length: Math.min(WAVE, count - i) }, (_, j) => openOne(i + j)));
  }
}

process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'open') {
    openAll().then(
      () => post({ cmd: 'open', ok: true, open: stats.open }),
      (err: unknown) => post({ cmd: 'open', ok: false, error: String(err) }),
    );
  } else if (msg.cmd === 'stats') {
    const out = stats;
    stats = { received: 0, duplicatesOrReordered: 0, skipped: 0, latenciesMs: [], open: out.open, closed: out.closed };
    post({ cmd: 'stats', stats: out });
  } else if (msg.cmd === 'close') {
    for (const s of sockets) s.destroy();
    post({ cmd: 'close' });
  }
});
// The generator died: do not linger holding thousands of sockets.
process.on('disconnect', () => process.exit(0));
