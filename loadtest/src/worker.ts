/**
 * A load-generator worker process: opens its share of subscriber connections, subscribes them, and
 * checks every message: offsets must increase on each connection (duplicates, reorders and skips are
 * counted; per channel when a connection holds several); sampled connections record publish→receive
 * latency from the message's send stamp. Workers are processes, not threads: each has its own
 * file-descriptor limit, so a few of them hold tens of thousands of connections.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { hmacIssuer } from '@switchboard/session/service';
import { RawWs } from './ws-raw.js';
import { extract, wallMs, type SubscribeStats, type SubscriberSpec, type WindowStats } from './protocol.js';

interface Init {
  readonly spec: SubscriberSpec;
  /** Global index of this worker's first connection. */
  readonly first: number;
  readonly count: number;
}

type Command = { cmd: string; init?: Init; subscriptions?: Record<string, unknown>[] };
// The init comes as the first message (thousands of subscriptions would not fit in the arguments);
// commands that arrive before the module is ready for them wait in `early`.
const early: Command[] = [];
let onCommand: ((m: Command) => void) | null = null;
let gotInit: (init: Init) => void = () => {};
const initialised = new Promise<Init>((resolve) => (gotInit = resolve));
process.on('message', (m: Command) => {
  if (m.cmd === 'init') gotInit(m.init!);
  else if (onCommand) onCommand(m);
  else early.push(m);
});
const { spec, first, count } = await initialised;
const post = (m: unknown) => process.send!(m);
/** Lanes (channels) tracked per connection: one unless a lane marker says a connection holds several. */
const LANES = spec.laneMarker ? 4 : 1;
const laneMarker = spec.laneMarker ? Buffer.from(spec.laneMarker) : null;
/** Lane of each marker byte, assigned on first sight. */
const laneOfByte = new Map<number, number>();
const last = new Float64Array(count * LANES).fill(-1);
let stats: WindowStats = { received: 0, duplicatesOrReordered: 0, skipped: 0, latenciesMs: [], open: 0, closed: 0 };
const MAX_SAMPLES = 200_000;
const sockets: RawWs[] = [];
/** Per connection: callbacks waiting for the responses of extra subscribes, in order. */
const subWaiters: ((ok: boolean, text: string) => void)[][] = Array.from({ length: count }, () => []);
const issuer = spec.mint ? hmacIssuer(spec.mint.secret, { issuer: 'switchboard', audience: 'switchboard' }) : null;

function laneOf(payload: Buffer): number {
  if (laneMarker === null) return 0;
  const i = payload.indexOf(laneMarker);
  if (i < 0) return 0;
  const b = payload[i + laneMarker.length]!;
  let lane = laneOfByte.get(b);
  if (lane === undefined) laneOfByte.set(b, (lane = Math.min(LANES - 1, laneOfByte.size)));
  return lane;
}

function onData(k: number, sampled: boolean, payload: Buffer): void {
  const m = extract(payload);
  if (m === null) return;
  stats.received++;
  const slot = k * LANES + laneOf(payload);
  const prev = last[slot]!;
  if (prev >= 0) {
    if (m.offset <= prev) stats.duplicatesOrReordered++;
    else if (m.offset > prev + 1) stats.skipped += m.offset - prev - 1;
  }
  if (m.offset > prev) last[slot] = m.offset;
  if (sampled && stats.latenciesMs.length < MAX_SAMPLES) stats.latenciesMs.push(wallMs() - m.stamp);
}

const SUB_RESPONSE = Buffer.from('"subscribe_response"');
const ERROR = Buffer.from('"type":"error"');

const deviceKey = spec.devices ? createPrivateKey(spec.devices.privateKeyPem) : null;
const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** oisp: the registration of device `load-<g>`, with an RS256 device token signed here. */
function oispRegistration(g: number): string {
  const d = spec.devices!;
  const deviceId = `load-${g}`;
  const head = `${b64url('{"alg":"RS256","typ":"JWT"}')}.${b64url(JSON.stringify({ sub: deviceId, accountId: d.accountId, exp: Math.floor(Date.now() / 1000) + 86_400 }))}`;
  const token = `${head}.${b64url(sign('RSA-SHA256', Buffer.from(head), deviceKey!))}`;
  return JSON.stringify({ type: 'device', deviceId, deviceToken: token });
}

async function tokenFor(g: number): Promise<string> {
  if (issuer === null) return spec.tokens[g % spec.tokens.length]!;
  const m = spec.mint!;
  return issuer.issue({ sub: `load-${g % m.users}`, ttlSec: 3600, ...(m.tenantPrefix !== undefined ? { tenant: `${m.tenantPrefix}${g}` } : {}) });
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
  const waiters = subWaiters[k]!;
  const onMessage = (payload: Buffer, ws: RawWs) => {
    if (subscribed) {
      if (waiters.length > 0 && (payload.indexOf(SUB_RESPONSE) >= 0 || payload.indexOf(ERROR) >= 0)) {
        const text = payload.toString('utf8');
        waiters.shift()!(text.includes('"success":true'), text);
        return;
      }
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
    else if (spec.protocol === 'oisp') {
      if (text.startsWith('{"code":200')) {
        subscribed = true;
        ready();
      } else refuse(new Error(`refused: ${text}`));
    }
  };
  const token = spec.protocol === 'valtronics' ? await tokenFor(g) : '';
  const ws = await RawWs.connect(
    target.host,
    target.port,
    target.path,
    onMessage,
    () => {
      stats.closed++;
    },
    spec.protocol === 'oisp' ? { 'Sec-WebSocket-Protocol': 'echo-protocol' } : {},
  );
  sockets[k] = ws;
  if (spec.protocol === 'plain') {
    subscribed = true;
    ready();
  } else if (spec.protocol === 'valtronics') {
    ws.sendText(JSON.stringify({ type: 'auth', token }));
    ws.sendText(JSON.stringify({ type: 'subscribe', ...spec.subscriptions[g % spec.subscriptions.length] }));
  } else if (spec.protocol === 'oisp') {
    ws.sendText(oispRegistration(g));
  }
  await isReady;
  stats.open++;
}

const WAVE = 200;

async function openAll(): Promise<void> {
  for (let i = 0; i < count; i += WAVE) {
    await Promise.all(Array.from({ length: Math.min(WAVE, count - i) }, (_, j) => openOne(i + j)));
  }
}

/** Sends each connection every one of `subs` (valtronics subscribe bodies) and waits for the answers. */
async function subscribeAll(subs: readonly Record<string, unknown>[]): Promise<SubscribeStats> {
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const latenciesMs: number[] = [];
  const one = (k: number, body: Record<string, unknown>) =>
    new Promise<void>((resolve) => {
      const t0 = wallMs();
      subWaiters[k]!.push((good, text) => {
        if (latenciesMs.length < MAX_SAMPLES) latenciesMs.push(wallMs() - t0);
        if (good) ok++;
        else {
          failed++;
          firstError ??= text.slice(0, 300);
        }
        resolve();
      });
      sockets[k]!.sendText(JSON.stringify({ type: 'subscribe', ...body }));
    });
  for (let i = 0; i < count; i += WAVE) {
    const wave: Promise<void>[] = [];
    for (let k = i; k < Math.min(count, i + WAVE); k++) for (const body of subs) wave.push(one(k, body));
    await Promise.all(wave);
  }
  return { ok, failed, latenciesMs, ...(firstError !== undefined ? { firstError } : {}) };
}

onCommand = (msg: Command) => {
  if (msg.cmd === 'open') {
    openAll().then(
      () => post({ cmd: 'open', ok: true, open: stats.open }),
      (err: unknown) => post({ cmd: 'open', ok: false, error: String(err) }),
    );
  } else if (msg.cmd === 'subscribe') {
    subscribeAll(msg.subscriptions ?? []).then(
      (sub) => post({ cmd: 'subscribe', ok: true, sub }),
      (err: unknown) => post({ cmd: 'subscribe', ok: false, error: String(err) }),
    );
  } else if (msg.cmd === 'stats') {
    const out = stats;
    stats = { received: 0, duplicatesOrReordered: 0, skipped: 0, latenciesMs: [], open: out.open, closed: out.closed };
    post({ cmd: 'stats', stats: out });
  } else if (msg.cmd === 'close') {
    for (const s of sockets) s?.destroy();
    post({ cmd: 'close' });
  }
};
for (const m of early.splice(0)) onCommand(m);
// The generator died: do not linger holding thousands of sockets.
process.on('disconnect', () => process.exit(0));
