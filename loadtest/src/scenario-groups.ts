/**
 * Filtered fan-out with one group per device (the IoT case): G valtronics subscribers of `telemetry`,
 * each filtered to its own device, so the channel has G groups; every message names one device and so
 * matches exactly one group. The server's CPU per message is compared between G = 100 and G = 10,000 at
 * the same publish rate (batched publishes): with groups indexed by attribute it should not grow with G.
 *
 * Both nodes run side by side and are measured in alternation, twice each, keeping each one's lower
 * figure (a busy machine only ever adds CPU). The CPU an idle node with G connections uses over the same
 * time is measured just before each step and subtracted, so what is compared is the cost of the
 * messages, not of keeping more connections open.
 */
import { DEV_API_KEY } from '@switchboard/core';
import { cpuSeconds } from './cpu.js';
import { LoadGenerator, runStep, type StepResult } from './generator.js';
import { wallMs } from './protocol.js';
import { switchboardNode, type RunOptions } from './scenarios.js';
import { devTokens } from './switchboard.js';

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
  readonly points: GroupsPoint[];
}

/** Runs the scenario for each group count in `groups` at `rate` messages/s. */
export async function groupsScenario(o: RunOptions, groups: readonly number[], rate: number, rounds: number, log: (m: string) => void): Promise<GroupsResult> {
  const nodes: { g: number; stop: () => Promise<unknown>; gen: LoadGenerator; url: string; pid: number; best: GroupsPoint | null }[] = [];
  try {
    for (const g of groups) {
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
      nodes.push({ g, stop: () => sys.stop(), gen, url: sys.url, pid: sys.pids.switchboard!, best: null });
    }
    for (let round = 0; round < rounds; round++) {
      for (const n of nodes) {
        let next = 0;
        const send = async (count: number) => {
          const messages = [];
          for (let i = 0; i < count; i++) messages.push({ channel: 'telemetry', attrs: { device_id: `d${next++ % n.g}` }, data: { s: wallMs(), v: 1 } });
          const res = await fetch(`${n.url}/api/publish`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
            body: JSON.stringify({ messages }),
          });
          if (!res.ok) throw new Error(`publish ${res.status}`);
          await res.arrayBuffer();
        };
        const idle0 = cpuSeconds(n.pid);
        const i0 = wallMs();
        await new Promise((r) => setTimeout(r, o.stepMs));
        const idleCores = (cpuSeconds(n.pid) - idle0) / ((wallMs() - i0) / 1000);
        // Each message reaches the one subscriber of its device; the others' offsets are skipped.
        const step = await runStep({ gen: n.gen, send, rate, durationMs: o.stepMs, fanout: 1, pids: { switchboard: n.pid }, lagLimitMs: o.lagLimitMs, skipsAreLoss: false });
        const cpu = step.cpuSec.switchboard!;
        const point: GroupsPoint = {
          groups: n.g,
          step,
          cpuUsPerMessage: (cpu / step.sent) * 1e6,
          netCpuUsPerMessage: (Math.max(0, cpu - idleCores * step.durationSec) / step.sent) * 1e6,
          idleCores,
          rounds: round + 1,
        };
        log(`groups: ${n.g} groups, ${rate} msg/s → ${point.cpuUsPerMessage.toFixed(1)} µs CPU per message (${point.netCpuUsPerMessage.toFixed(1)} net of idle ${idleCores.toFixed(3)} cores), lost ${step.lost}`);
        if (!n.best || point.netCpuUsPerMessage < n.best.netCpuUsPerMessage) n.best = { ...point, rounds: round + 1 };
      }
    }
    return { rate, points: nodes.map((n) => ({ ...n.best!, rounds })) };
  } finally {
    for (const n of nodes) {
      await n.gen.close();
      await n.stop();
    }
  }
}
