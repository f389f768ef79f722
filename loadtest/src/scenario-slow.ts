/**
 * Slow consumers: readers that stop reading while a flood goes on must not cost the node more than its
 * send-buffer budget (`SWITCHBOARD_SLOW_CONSUMER_BUDGET_BYTES`), and the readers that keep reading must
 * lose nothing. Each round runs the same flood twice on a fresh `switchboard start` node — once with
 * `readers` paused readers subscribed next to one healthy reader, once with the healthy reader alone — and
 * the paused readers' cost is the difference of the two peak RSS increases (the flood alone grows the JS
 * heap by tens of megabytes, which is not the readers' doing).
 */
import { readFileSync } from 'node:fs';
import { CONFIG_SPEC, DEV_API_KEY, DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import { startSwitchboard } from '@switchboard/testkit';
import { RawWs } from './ws-raw.js';

/** One flood on one fresh node. */
export interface SlowFlood {
  readonly pausedReaders: number;
  readonly baseRssBytes: number;
  /** Highest RSS during the flood (sampled every 20 ms) minus the RSS before it. */
  readonly peakDeltaBytes: number;
  /** RSS two seconds after the flood minus the RSS before it. */
  readonly afterDeltaBytes: number;
  readonly published: number;
  readonly healthyReceived: number;
  /** `switchboard_slow_consumer_disconnects_total` by reader kind (`slow`: 4008; `stalled`: dropped). */
  readonly disconnects: Record<string, number>;
  /** Milliseconds from the first paused reader's pause to the node's last slow-consumer disconnect seen. */
  readonly allClosedMs: number | null;
}

/** The scenario's result. */
export interface SlowResult {
  readonly readers: number;
  readonly floodSeconds: number;
  readonly messageBytes: number;
  readonly messagesPerRequest: number;
  readonly messagesPerSec: number;
  readonly budgetBytes: number;
  readonly rounds: readonly { readonly withReaders: SlowFlood; readonly alone: SlowFlood }[];
  /** Median over rounds of (peak with readers − peak alone). */
  readonly medianCostBytes: number;
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function disconnects(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('switchboard_slow_consumer_disconnects_total{')) continue;
    const kind = /reader="([a-z]+)"/.exec(line)?.[1] ?? 'unknown';
    out[kind] = (out[kind] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

async function reader(port: number, token: string, onMessage: () => void): Promise<RawWs> {
  let subscribed!: () => void;
  const ready = new Promise<void>((r) => (subscribed = r));
  const ws = await RawWs.connect('127.0.0.1', port, '/ws', (payload) => {
    if (payload.includes('"subscribe_response"')) subscribed();
    else if (payload.includes('"alert_id"')) onMessage();
  });
  ws.sendText(JSON.stringify({ type: 'auth', token }));
  ws.sendText(JSON.stringify({ type: 'subscribe', channel: 'alerts', id: 's' }));
  await ready;
  return ws;
}

/** What one flood sends. */
interface FloodOptions {
  readonly floodSeconds: number;
  readonly messageBytes: number;
  readonly perRequest: number;
  /** Messages per second, paced: a steady rate keeps the flood's own heap growth small next to the readers' cost. */
  readonly messagesPerSec: number;
}

async function flood(bin: string, pausedReaders: number, o: FloodOptions): Promise<SlowFlood> {
  const node = await startSwitchboard(bin, 'start', {
    SWITCHBOARD_MAX_CONNECTIONS_PER_USER: '1000',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_PUBLISH_MAX_BATCH: '10000',
    SWITCHBOARD_PUBLISH_MAX_BODY_BYTES: '16777216',
    LOG_LEVEL: 'warn',
    ...(process.env.SLOW_EXTRA_ENV ? (JSON.parse(process.env.SLOW_EXTRA_ENV) as Record<string, string>) : {}),
  });
  const pid = node.child.pid!;
  const url = `http://127.0.0.1:${node.port}`;
  const issuer = hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' });
  const sockets: RawWs[] = [];
  try {
    for (let i = 0; i < pausedReaders; i++) sockets.push(await reader(node.port, await issuer.issue({ sub: `paused-${i}`, ttlSec: 3600 }), () => {}));
    let healthyReceived = 0;
    sockets.push(await reader(node.port, await issuer.issue({ sub: 'healthy', ttlSec: 3600 }), () => healthyReceived++));
    await sleep(1000);
    const base = rssOf(pid);
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
    const t0 = Date.now();
    for (let i = 0; i < pausedReaders; i++) sockets[i]!.pause();
    let allClosedMs: number | null = null;
    const text = 'x'.repeat(Math.max(0, o.messageBytes - 40));
    const body = JSON.stringify({ messages: Array.from({ length: o.perRequest }, (_, i) => ({ dialect: 'valtronics', channel: 'alerts', data: { alert_id: i, text } })) });
    let published = 0;
    let polls = 0;
    while (Date.now() - t0 < o.floodSeconds * 1000) {
      const res = await fetch(`${url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` }, body });
      if (!res.ok) throw new Error(`slow: publish answered ${res.status}`);
      await res.arrayBuffer();
      published += o.perRequest;
      if (pausedReaders > 0 && allClosedMs === null && ++polls % 10 === 0) {
        const d = await disconnects(url);
        if ((d.slow ?? 0) + (d.stalled ?? 0) >= pausedReaders) allClosedMs = Date.now() - t0;
      }
      await sleep(Math.max(0, t0 + (published / o.messagesPerSec) * 1000 - Date.now()));
    }
    // Every message published must reach the reader that kept reading.
    const deadline = Date.now() + 10_000;
    while (healthyReceived < published && Date.now() < deadline) await sleep(50);
    await sleep(Math.max(0, 2000 - (Date.now() - deadline + 10_000)));
    clearInterval(sampler);
    const after = rssOf(pid);
    return { pausedReaders, baseRssBytes: base, peakDeltaBytes: peak - base, afterDeltaBytes: after - base, published, healthyReceived, disconnects: await disconnects(url), allClosedMs };
  } finally {
    for (const s of sockets) s.destroy();
    await node.stop();
  }
}

/** Runs `rounds` rounds of the flood with and without paused readers, alternating. */
export async function slowConsumersScenario(bin: string, o: FloodOptions & { readers: number; rounds: number }, log: (m: string) => void): Promise<SlowResult> {
  const rounds: { withReaders: SlowFlood; alone: SlowFlood }[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const withReaders = await flood(bin, o.readers, o);
    const alone = await flood(bin, 0, o);
    rounds.push({ withReaders, alone });
    const mb = (b: number) => (b / 2 ** 20).toFixed(1);
    log(
      `slow: round ${r + 1}: peak RSS +${mb(withReaders.peakDeltaBytes)} MiB with ${o.readers} paused readers, +${mb(alone.peakDeltaBytes)} MiB without; ` +
        `healthy reader ${withReaders.healthyReceived}/${withReaders.published}; disconnects ${JSON.stringify(withReaders.disconnects)}`,
    );
  }
  const costs = rounds.map((r) => r.withReaders.peakDeltaBytes - r.alone.peakDeltaBytes).sort((a, b) => a - b);
  return {
    readers: o.readers,
    floodSeconds: o.floodSeconds,
    messageBytes: o.messageBytes,
    messagesPerRequest: o.perRequest,
    messagesPerSec: o.messagesPerSec,
    budgetBytes: Number(CONFIG_SPEC.slowConsumerBudgetBytes.default),
    rounds,
    medianCostBytes: costs[Math.floor(costs.length / 2)]!,
  };
}
