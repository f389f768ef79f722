/**
 * The live counters of every edge, for the admin page's charts: each edge answers a `switchboard.stats`
 * question on the control plane (`ClusterControl.ask`) with a snapshot of its own Prometheus metrics —
 * connections by dialect, deliveries, publishes, the fan-out latency and bus read lag histograms (bucket
 * counts, so the page computes a p99 over any window from two snapshots), rate-limit rejections by
 * dialect and rule. The page polls and turns differences into rates: no Prometheus server is needed,
 * and nothing is kept or computed per message beyond the counters the edge keeps anyway.
 */
import { isPlainObject, type Logger } from '@switchboard/core';
import type { Registry } from 'prom-client';
import type { ClusterControl } from './cluster.js';
import type { EdgeMetrics } from './metrics.js';
import type { HistogramSnapshot, NodeStats } from '@switchboard/admin';


/** The question kind on the control plane. */
const ASK_KIND = 'switchboard.stats';

/** The snapshots of every edge that answered in time. */
export interface ClusterStats {
  readonly nodes: readonly NodeStats[];
  /** Edges counted as live that did not answer before the deadline. */
  readonly missing: readonly string[];
}

/** What {@link AdminStats} needs. */
export interface AdminStatsOptions {
  readonly cluster: ClusterControl;
  readonly metrics: EdgeMetrics;
  /** The edge's registry: the bus registers its read-lag histogram there. */
  readonly registry: Registry;
  readonly logger: Logger;
  readonly deadlineMs: number;
}

type Snapshot = Omit<NodeStats, 'node'>;

interface MetricValue {
  readonly value: number;
  readonly labels: Partial<Record<string, string | number>>;
  readonly metricName?: string;
}

interface Readable {
  get(): Promise<{ values: MetricValue[] }> | { values: MetricValue[] };
}

const sum = (values: readonly MetricValue[]) => values.reduce((a, v) => a + v.value, 0);

function histogram(values: readonly MetricValue[]): HistogramSnapshot {
  const le: number[] = [];
  const counts: number[] = [];
  let count = 0;
  for (const v of values) {
    if (v.metricName?.endsWith('_count')) count = v.value;
    else if (v.metricName?.endsWith('_bucket') && typeof v.labels.le === 'number') {
      le.push(v.labels.le);
      counts.push(v.value);
    }
  }
  return { le, counts, count };
}

/** Every edge's live counters: answers other edges' questions and asks its own. */
export class AdminStats {
  private inFlight: Promise<ClusterStats> | null = null;

  constructor(private readonly o: AdminStatsOptions) {
    o.cluster.onAsk(ASK_KIND, () => this.local());
  }

  /** This edge's counters now. */
  async local(): Promise<Snapshot> {
    const m = this.o.metrics;
    const read = async (metric: Readable | undefined) => (metric ? (await metric.get()).values : []);
    const [connections, deliveries, published, fanoutMessages, fanout, lag, rejections] = await Promise.all([
      read(m.connections),
      read(m.deliveries),
      read(m.published),
      read(m.fanoutMessages),
      read(m.fanoutLatency),
      read(this.o.registry.getSingleMetric('switchboard_bus_read_lag_seconds') as Readable | undefined),
      read(m.rateLimitRejections),
    ]);
    const byDialect: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const v of connections)
      if (typeof v.labels.dialect === 'string') byDialect[v.labels.dialect] = v.value;
    return {
      at: Date.now(),
      connections: byDialect,
      deliveries: sum(deliveries),
      published: sum(published),
      fanoutMessages: sum(fanoutMessages),
      fanoutLatency: histogram(fanout),
      busReadLag: lag.length > 0 ? histogram(lag) : null,
      rateLimited: rejections.map((v) => [String(v.labels.dialect), String(v.labels.rule), v.value] as const),
    };
  }

  /** Asks every live edge; resolves by the deadline. Concurrent callers share one round of questions. */
  gather(): Promise<ClusterStats> {
    this.inFlight ??= this.ask().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async ask(): Promise<ClusterStats> {
    const res = await this.o.cluster.ask<unknown>(ASK_KIND, {}, this.o.deadlineMs);
    const nodes: NodeStats[] = [];
    const missing = [...res.missing];
    for (const { node, result } of res.answers) {
      const s = readSnapshot(result);
      if (s) nodes.push({ node, ...s });
      else {
        this.o.logger.warn({ node }, 'unreadable stats answer ignored');
        missing.push(node);
      }
    }
    nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    return { nodes, missing: missing.sort() };
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function readHistogram(h: unknown): HistogramSnapshot | null {
  if (!isPlainObject(h) || !Array.isArray(h.le) || !Array.isArray(h.counts) || !isCount(h.count)) return null;
  if (h.le.length !== h.counts.length || h.le.length > 64 || !h.le.every(isCount) || !h.counts.every(isCount))
    return null;
  return { le: h.le, counts: h.counts, count: h.count };
}

/** An answer off the bus, checked (only edges publish there, but a bad one must not break the page). */
function readSnapshot(r: unknown): Snapshot | null {
  if (!isPlainObject(r) || !isPlainObject(r.connections) || !Array.isArray(r.rateLimited)) return null;
  if (!isCount(r.at) || !isCount(r.deliveries) || !isCount(r.published) || !isCount(r.fanoutMessages))
    return null;
  const fanoutLatency = readHistogram(r.fanoutLatency);
  const busReadLag = r.busReadLag === null ? null : readHistogram(r.busReadLag);
  if (!fanoutLatency || (r.busReadLag !== null && !busReadLag)) return null;
  const connections: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [d, n] of Object.entries(r.connections)) {
    if (!isCount(n)) return null;
    connections[d] = n;
  }
  const rateLimited: [string, string, number][] = [];
  for (const e of r.rateLimited as unknown[]) {
    if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'string' || !isCount(e[2]))
      return null;
    rateLimited.push([e[0], e[1], e[2]]);
  }
  return {
    at: r.at,
    connections,
    deliveries: r.deliveries,
    published: r.published,
    fanoutMessages: r.fanoutMessages,
    fanoutLatency,
    busReadLag,
    rateLimited,
  };
}
