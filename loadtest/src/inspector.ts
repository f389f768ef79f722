/**
 * Reads a server process's JS heap through the V8 inspector (the process runs with
 * `--inspect=127.0.0.1:<port>`): the heap in use after a full GC, and heap snapshot summaries (bytes and
 * objects per constructor) whose difference between two states says what holds the memory. Spoken over
 * the load generator's own WebSocket client; nothing to install.
 */
import { freePort } from '@switchboard/testkit';
import { RawWs } from './ws-raw.js';

/** Objects of one kind in a heap snapshot. */
export interface HeapKind {
  readonly name: string;
  readonly count: number;
  readonly bytes: number;
}

/** The heap of one kind that grew between two snapshots, per unit of what was added. */
export interface HeapGrowth {
  readonly name: string;
  readonly countPerUnit: number;
  readonly bytesPerUnit: number;
}

/** `NODE_OPTIONS` value and port for a process to be inspected. */
export async function inspectOptions(): Promise<{ port: number; nodeOptions: string }> {
  const port = await freePort();
  return { port, nodeOptions: `--inspect=127.0.0.1:${port}` };
}

type Pending = { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void };

/** A DevTools protocol session with one process. */
export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private chunks: string[] = [];

  private constructor(private ws: RawWs | null) {}

  /** Connects to the inspector on `port` (waiting up to 10 s for it to listen). */
  static async connect(port: number): Promise<Inspector> {
    const deadline = Date.now() + 10_000;
    let url: string | undefined;
    for (;;) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl?: string }[];
        url = list[0]?.webSocketDebuggerUrl;
        if (url) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`no inspector on port ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const u = new URL(url);
    const ins = new Inspector(null);
    ins.ws = await RawWs.connect(u.hostname, Number(u.port), u.pathname, (payload) => ins.onMessage(payload.toString('utf8')), () => ins.onClose());
    return ins;
  }

  /** Sends one command and waits for its result. */
  call(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws!.sendText(JSON.stringify({ id, method, params }));
    });
  }

  /** JS heap in use after a full garbage collection, bytes. */
  async heapUsedAfterGc(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    const r = await this.call('Runtime.getHeapUsage');
    return Number(r.usedSize);
  }

  /** Takes a heap snapshot (it collects garbage first) and sums it per constructor. */
  async heapSummary(): Promise<HeapKind[]> {
    this.chunks = [];
    await this.call('HeapProfiler.enable');
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    const text = this.chunks.join('');
    this.chunks = [];
    return summarise(JSON.parse(text) as Snapshot);
  }

  /** Starts the V8 CPU profiler (sampling every `intervalUs`). */
  async startProfiling(intervalUs = 200): Promise<void> {
    await this.call('Profiler.enable');
    await this.call('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.call('Profiler.start');
  }

  /** Stops the CPU profiler and returns the profile (the `.cpuprofile` format). */
  async stopProfiling(): Promise<unknown> {
    const r = await this.call('Profiler.stop');
    await this.call('Profiler.disable');
    return r.profile;
  }

  /** Starts sampling allocations, the collected ones included (what makes the garbage collector work). */
  async startAllocationSampling(intervalBytes = 16_384): Promise<void> {
    await this.call('HeapProfiler.enable');
    await this.call('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  /** Stops sampling allocations; bytes allocated per function (`name url:line`), largest first. */
  async stopAllocationSampling(): Promise<[string, number][]> {
    const r = await this.call('HeapProfiler.stopSampling');
    interface Node {
      callFrame: { functionName: string; url: string; lineNumber: number };
      selfSize: number;
      children: Node[];
    }
    const by = new Map<string, number>();
    const walk = (n: Node) => {
      if (n.selfSize > 0) {
        const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^.*\/packages\//, '');
        const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
        by.set(key, (by.get(key) ?? 0) + n.selfSize);
      }
      for (const c of n.children) walk(c);
    };
    walk((r.profile as { head: Node }).head);
    return [...by].sort((a, b) => b[1] - a[1]);
  }

  close(): void {
    this.ws?.destroy();
  }

  private onMessage(text: string): void {
    const m = JSON.parse(text) as { id?: number; method?: string; params?: { chunk?: string }; result?: Record<string, unknown>; error?: { message: string } };
    if (m.method === 'HeapProfiler.addHeapSnapshotChunk') {
      this.chunks.push(m.params!.chunk!);
      return;
    }
    if (m.id === undefined) return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error.message));
    else p.resolve(m.result ?? {});
  }

  private onClose(): void {
    for (const p of this.pending.values()) p.reject(new Error('inspector connection closed'));
    this.pending.clear();
  }
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Sums a snapshot's nodes per kind: objects by constructor name, everything else by its V8 node type. */
export function summarise(s: Snapshot): HeapKind[] {
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const byKind = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const name = s.strings[s.nodes[i + iName]!]!;
    const kind =
      type === 'object' || type === 'native'
        ? name
        : type === 'closure'
          ? 'closures'
          : type === 'hidden' || type === 'array' || type === 'code'
            ? `(${type}) ${name.length > 60 ? name.slice(0, 60) + '…' : name}`
            : `(${type})`;
    const e = byKind.get(kind);
    const size = s.nodes[i + iSize]!;
    if (e) {
      e.count++;
      e.bytes += size;
    } else byKind.set(kind, { count: 1, bytes: size });
  }
  return [...byKind].map(([name, v]) => ({ name, count: v.count, bytes: v.bytes })).sort((a, b) => b.bytes - a.bytes);
}

/** What grew between two summaries, per `units` added (e.g. channels), largest first. */
export function growth(before: readonly HeapKind[], after: readonly HeapKind[], units: number, top = 15): HeapGrowth[] {
  const b = new Map(before.map((k) => [k.name, k]));
  const out: HeapGrowth[] = [];
  for (const a of after) {
    const p = b.get(a.name);
    const bytes = a.bytes - (p?.bytes ?? 0);
    if (bytes <= 0) continue;
    out.push({ name: a.name, countPerUnit: (a.count - (p?.count ?? 0)) / units, bytesPerUnit: bytes / units });
  }
  return out.sort((x, y) => y.bytesPerUnit - x.bytesPerUnit).slice(0, top);
}
