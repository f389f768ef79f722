/**
 * Turns the edges' cumulative counters (`GET /admin/stats`) into what the page charts: per-second rates
 * and a p99 over the last poll interval, from the difference of two snapshots. Pure functions, unit-tested.
 */

import type { HistogramSnapshot, NodeStats } from '../stats-types.js';

export type { HistogramSnapshot, NodeStats } from '../stats-types.js';

/** The session service's counters by outcome. */
export interface SessionStats {
  readonly logins: Readonly<Record<string, number>>;
  readonly admissions: Readonly<Record<string, number>>;
  readonly sessions: Readonly<Record<string, number>>;
}

/** The answer of `GET /admin/stats`. */
export interface StatsAnswer {
  readonly node: string;
  readonly nodes: readonly NodeStats[];
  readonly missing: readonly string[];
  readonly session: SessionStats | null;
}

/** What the page shows for one edge over one interval. */
export interface NodeRates {
  readonly deliveriesPerSec: number;
  readonly publishedPerSec: number;
  /** Seconds; null when nothing was observed in the interval. */
  readonly fanoutP99: number | null;
  readonly busLagP99: number | null;
}

/** Per-second rate of a counter between two snapshots; 0 across a restart (the counter went down). */
export function rate(before: number, after: number, seconds: number): number {
  if (seconds <= 0 || after < before) return 0;
  return (after - before) / seconds;
}

/**
 * The q-quantile of the observations made between two snapshots of a histogram, as the upper bound of
 * the bucket it falls in (what Prometheus' histogram_quantile would interpolate within). Null when
 * nothing was observed; Infinity when it lies beyond the last bound.
 */
export function quantileBetween(
  before: HistogramSnapshot | null,
  after: HistogramSnapshot,
  q: number,
): number | null {
  const same = before !== null && before.le.length === after.le.length && before.count <= after.count;
  const total = after.count - (same ? before.count : 0);
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < after.le.length; i++) {
    const n = after.counts[i]! - (same ? before.counts[i]! : 0);
    if (n >= rank) return after.le[i]!;
  }
  return Infinity;
}

/** Rates of one edge between two of its snapshots. */
export function nodeRates(before: NodeStats, after: NodeStats): NodeRates {
  const seconds = (after.at - before.at) / 1000;
  return {
    deliveriesPerSec: rate(before.deliveries, after.deliveries, seconds),
    publishedPerSec: rate(before.published, after.published, seconds),
    fanoutP99: quantileBetween(before.fanoutLatency, after.fanoutLatency, 0.99),
    busLagP99: after.busReadLag ? quantileBetween(before.busReadLag, after.busReadLag, 0.99) : null,
  };
}

/** Rate-limit rejections summed over the edges: `dialect rule` → total since the edges started. */
export function rejectionTotals(
  nodes: readonly NodeStats[],
): Map<string, { dialect: string; rule: string; total: number }> {
  const out = new Map<string, { dialect: string; rule: string; total: number }>();
  for (const n of nodes)
    for (const [dialect, rule, count] of n.rateLimited) {
      const key = `${dialect} ${rule}`;
      const e = out.get(key);
      if (e) e.total += count;
      else out.set(key, { dialect, rule, total: count });
    }
  return out;
}

/** `1.2 ms`, `250 µs`, `3.1 s`, `> 10 s`, `–`. */
export function formatSeconds(s: number | null): string {
  if (s === null) return '–';
  if (!Number.isFinite(s)) return '> 10 s';
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${+(s * 1000).toPrecision(3)} ms`;
  return `${+s.toPrecision(3)} s`;
}

/** `12`, `3.4`, `1.2 k`, `5.6 M`. */
export function formatRate(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toPrecision(3)} M`;
  if (n >= 1e3) return `${+(n / 1e3).toPrecision(3)} k`;
  return n >= 10 || n === 0 ? String(Math.round(n)) : n.toFixed(1);
}
