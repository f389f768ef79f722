/**
 * A load-generator worker thread: opens its share of subscriber connections, subscribes them, and
 * checks every message: offsets must increase on each connection (duplicates, reorders and skips are
 * counted); sampled connections record publish→receive latency from the message's send stamp.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RawWs } from './ws-raw.js';
import { extract, wallMs, type SubscriberSpec, type WindowStats } from './protocol.js';

interface Init {
  readonly spec: SubscriberSpec;
  /** Global index of this worker's first connection. */
  readonly first: number;
  readonly count: number;
}

const { spec, first, count } = workerData as Init;
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
  const isReady = new Promise<void>((r) => (ready = r));
  let subscribed = false;
  let ws: RawWs | null = null;
  const onMessage = (payload: Buffer) => {
    if (subscribed) {
      if (spec.protocol === 'socketio' && payload.length === 1 && payload[0] === 0x32) ws!.sendText('3');
      else onData(k, sampled, payload);
      return;
    }
    const text = payload.toString('utf8');
    if (spec.protocol === 'valtronics' && text.includes('"subscribe_response"')) {
      subscribed = true;
      ready();
    } else if (spec.protocol === 'socketio') {
      if (text.startsWith('0{')) ws!.sendText('40');
      else if (text.startsWith('40')) {
        subscribed = true;
        ready();
      } else if (text === '2') ws!.sendText('3');
    } else if (spec.protocol === 'valtronics' && text.includes('"success":false')) throw new Error(`refused: ${text}`);
  };
  ws = await RawWs.connect(target.host, target.port, target.path, onMessage, () => {
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

parentPort!.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'open') {
    openAll().then(
      () => parentPort!.postMessage({ cmd: 'open', ok: true, open: stats.open }),
      (err: unknown) => parentPort!.postMessage({ cmd: 'open', ok: false, error: String(err) }),
    );
  } else if (msg.cmd === 'stats') {
    const out = stats;
    stats = { received: 0, duplicatesOrReordered: 0, skipped: 0, latenciesMs: [], open: out.open, closed: out.closed };
    parentPort!.postMessage({ cmd: 'stats', stats: out });
  } else if (msg.cmd === 'close') {
    for (const s of sockets) s.destroy();
    parentPort!.postMessage({ cmd: 'close' });
  }
});
