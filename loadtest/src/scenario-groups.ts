/**
 * Filtered fan-out with one group per device (the IoT case): G valtronics subscribers of `telemetry`,
 * each filtered to its own device, so the channel has G groups; every message names one device and so
 * matches exactly one group. The server's CPU per message is compared between G = 100 and G = 10,000 at
 * the same publish rate (batched publishes): with groups indexed by attribute it should not grow with G.
 * Bare uWebSockets.js does the same work with nothing in between (each message `ws.send` to one of G
 * sockets, the same batches and rate), so the growth that is the kernel's and the machine's — writing to
 * 100 times as many sockets — shows beside ours.
 *
 * Every node runs side by side and they are measured in alternation, `rounds` times each, keeping each
 * one's lower figure (a busy machine only ever adds CPU). The CPU an idle node with G connections uses
 * over the same time is measured just before each step and subtracted, so what is compared is the cost
 * of the messages, not of keeping more connections open.
 */
import { cpuSeconds } from './cpu.js';
import { LoadGenerator, runStep, type SendFn, type StepResult } from './generator.js';
import { startPeer } from './peers/index.js';
import { wallMs } from './protocol.js';
import { switchboardNode, type RunOptions } from './scenarios.js';
import { devTokens, postMessages } from './switchboard.js';

/** One node's figures. */
export interface GroupsPoint {
  readonly groups: number;
  /** The step whose figures are kept (the lower net CPU per message). */
  readonly step: StepResult;
  /** Server CPU µs per message, as measured. */
  readonly cpuUsPerMessage: number;
  /** The same less what the idle node used over as long. */
  readonly netCpuUsPerMessage: number;
  /** CPU-s per second of the idle node with its G connections. */
  readonly idleCores: number;
  readonly rounds: number;
}

/** Results of the scenario. */
export interface GroupsResult {
  readonly rate: number;
  /** Switchboard, one point per group count. */
  readonly points: GroupsPoint[];
  /** Bare uWS sending each message to one of G sockets, one point per G (absent in results of older runs). */
  readonly bare?: GroupsPoint[];
}

interface Node {
  readonly kind: 'switchboard' | 'bare';
  readonly g: number;
  readonly gen: LoadGenerator;
  readonly pid: number;
  readonly send: SendFn;
  readonly stop: () => Promise<unknown>;
  best: GroupsPoint | null;
}

/** A `switchboard start` with G per-device subscribers, published to in batches that each name a device in turn. */
async function switchboardGroups(o: RunOptions, g: number, log: (m: string) => void): Promise<Node> {
  const sys = await switchboardNode(o.bin, 100, 'telemetry');
  const t0 = wallMs();
  const subscriptions = Array.from({ length: g }, (_, i) => ({ channel: 'telemetry', device_id: `d${i}` }));
  let gen: LoadGenerator;
  try {
    gen = await LoadGenerator.start(
      { targets: sys.targets, protocol: 'valtronics', tokens: await devTokens(Math.ceil(g / 5000) + 1), subscriptions, latencyEvery: Math.max(1, Math.floor(g / 100)) },
      g,
      o.processes,
    );
  } catch (err) {
    await sys.stop();
    throw err;
  }
  log(`groups: ${g} per-device subscribers up in ${((wallMs() - t0) / 1000).toFixed(1)} s`);
  let next = 0;
  const send: SendFn = async (count) => {
    const messages = [];
    for (let i = 0; i < count; i++) messages.push({ channel: 'telemetry', attrs: { device_id: `d${next++ % g}` }, data: { s: wallMs(), v: 1 } });
    await postMessages(sys.url, messages);
  };
  return { kind: 'switchboard', g, gen, pid: sys.pids.switchboard!, send, stop: () => sys.stop(), best: null };
}

/** Bare uWS with G sockets, each message sent to the next socket in turn (`ws.send`), in the same batches. */
async function bareGroups(o: RunOptions, g: number): Promise<Node> {
  const peer = await startPeer('bare-uws');
  let gen: LoadGenerator;
  try {
    gen = await LoadGenerator.start({ targets: [{ host: '127.0.0.1', port: peer.port, path: '/bare' }], protocol: 'plain', tokens: [], subscriptions: [{}], latencyEvery: Math.max(1, Math.floor(g / 100)) }, g, o.processes);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  let next = 0;
  const send: SendFn = async (count) => {
    const messages = [];
    for (let i = 0; i < count; i++) messages.push({ to: next++ % g, data: { s: wallMs(), v: 1 } });
    const res = await fetch(`${peer.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) });
    if (!res.ok) throw new Error(`publish ${res.status}`);
    await res.arrayBuffer();
  };
  return { kind: 'bare', g, gen, pid: peer.child.pid!, send, stop: () => peer.stop(), best: null };
}

/** Runs the scenario for each group count in `groups` at `rate` messages/s. */
export async function groupsScenario(o: RunOptions, groups: readonly number[], rate: number, rounds: number, log: (m: string) => void): Promise<GroupsResult> {
  const nodes: Node[] = [];
  try {
    for (const g of groups) nodes.push(await switchboardGroups(o, g, log));
    for (const g of groups) nodes.push(await bareGroups(o, g));
    for (let round = 0; round < rounds; round++) {
      for (const n of nodes) {
        const idle0 = cpuSeconds(n.pid);
        const i0 = wallMs();
        await new Promise((r) => setTimeout(r, o.stepMs));
        const idleCores = (cpuSeconds(n.pid) - idle0) / ((wallMs() - i0) / 1000);
        // Each message reaches the one subscriber of its device; the others' offsets are skipped.
        const step = await runStep({ gen: n.gen, send: n.send, rate, durationMs: o.stepMs, fanout: 1, pids: { [n.kind]: n.pid }, lagLimitMs: o.lagLimitMs, skipsAreLoss: false });
        const cpu = step.cpuSec[n.kind]!;
        const point: GroupsPoint = {
          groups: n.g,
          step,
          cpuUsPerMessage: (cpu / step.sent) * 1e6,
          netCpuUsPerMessage: (Math.max(0, cpu - idleCores * step.durationSec) / step.sent) * 1e6,
          idleCores,
          rounds: round + 1,
        };
        const what = n.kind === 'bare' ? `bare uWS, ${n.g} sockets` : `${n.g} groups`;
        log(`groups: ${what}, ${rate} msg/s → ${point.cpuUsPerMessage.toFixed(1)} µs CPU per message (${point.netCpuUsPerMessage.toFixed(1)} net of idle ${idleCores.toFixed(3)} cores), lost ${step.lost}`);
        if (!n.best || point.netCpuUsPerMessage < n.best.netCpuUsPerMessage) n.best = point;
      }
    }
    const of = (kind: Node['kind']) => nodes.filter((n) => n.kind === kind).map((n) => ({ ...n.best!, rounds }));
    return { rate, points: of('switchboard'), bare: of('bare') };
  } finally {
    for (const n of nodes) {
      await n.gen.close();
      await n.stop();
    }
  }
}
