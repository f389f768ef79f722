import { cpus, freemem, totalmem } from 'node:os';
import { readFileSync, statfsSync } from 'node:fs';

/** This node's system figures, as the `valtronics` `system` channel reports them (percentages). */
export interface SystemStats {
  readonly cpu_usage: number;
  readonly memory_usage: number;
  readonly disk_usage: number;
  readonly active_connections: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** In a container the host's memory is not ours: prefer the cgroup v2 limit when there is one. */
function memoryUsagePct(): number {
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (max !== 'max') {
      const current = Number(readFileSync('/sys/fs/cgroup/memory.current', 'utf8').trim());
      const limit = Number(max);
      if (limit > 0 && Number.isFinite(current)) return (current / limit) * 100;
    }
  } catch {
    // No cgroup v2 memory controller here: fall back to the host figures.
  }
  const total = totalmem();
  return total > 0 ? ((total - freemem()) / total) * 100 : 0;
}

function diskUsagePct(path: string): number {
  try {
    const s = statfsSync(path);
    return s.blocks > 0 ? ((s.blocks - s.bfree) / s.blocks) * 100 : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples real CPU, memory and disk usage. CPU is measured between samples, so a sample taken less than
 * `minIntervalMs` after the previous one returns the cached figures instead of a meaningless delta.
 */
export class SystemSampler {
  private prev = cpuTimes();
  private prevAtMs = Date.now();
  private cached: Omit<SystemStats, 'active_connections'> = { cpu_usage: 0, memory_usage: 0, disk_usage: 0 };

  constructor(
    private readonly activeConnections: () => number,
    private readonly diskPath = '/',
    private readonly minIntervalMs = 500,
  ) {}

  sample(nowMs = Date.now()): SystemStats {
    if (nowMs - this.prevAtMs >= this.minIntervalMs) {
      const cur = cpuTimes();
      const total = cur.total - this.prev.total;
      const idle = cur.idle - this.prev.idle;
      this.prev = cur;
      this.prevAtMs = nowMs;
      this.cached = {
        cpu_usage: round1(total > 0 ? ((total - idle) / total) * 100 : 0),
        memory_usage: round1(memoryUsagePct()),
        disk_usage: round1(diskUsagePct(this.diskPath)),
      };
    }
    return { ...this.cached, active_connections: this.activeConnections() };
  }
}
