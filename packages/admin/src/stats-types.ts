/**
 * The stats an edge reports and the admin page reads (`GET /admin/stats`): declared once, here, for the
 * edge that produces them (`packages/edge/src/admin-stats.ts`) and the page that charts them (`ui/stats.ts`).
 */

/** A histogram as counted since the edge started: cumulative counts per upper bound, plus the total. */
export interface HistogramSnapshot {
  /** Upper bounds in seconds, ascending (the `+Inf` bucket is `count`). */
  readonly le: readonly number[];
  /** Observations at or below each bound (cumulative, as Prometheus counts them). */
  readonly counts: readonly number[];
  readonly count: number;
}

/** One edge's counters at one moment. */
export interface NodeStats {
  readonly node: string;
  /** When the snapshot was taken (ms since the epoch, the edge's clock). */
  readonly at: number;
  /** Open connections by dialect. */
  readonly connections: Readonly<Record<string, number>>;
  /** Messages handed to subscriber sockets (one per subscriber per message), since start. */
  readonly deliveries: number;
  /** Messages published through this edge (HTTP API, publish socket, dialects), since start. */
  readonly published: number;
  /** Bus messages dispatched by this edge's hub, since start. */
  readonly fanoutMessages: number;
  readonly fanoutLatency: HistogramSnapshot;
  /** Absent when the edge's bus keeps no such histogram (the in-memory bus). */
  readonly busReadLag: HistogramSnapshot | null;
  /** [dialect, rule, rejections since start]. */
  readonly rateLimited: readonly (readonly [string, string, number])[];
}
