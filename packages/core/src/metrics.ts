import { Registry, collectDefaultMetrics } from 'prom-client';

/** Options of {@link createMetricsRegistry}. */
export interface MetricsRegistryOptions {
  /** Labels on every series of this process, e.g. `{ node: 'edge-1' }` (bounded: one value per process). */
  readonly defaultLabels?: Record<string, string>;
  /** Collect Node process metrics (CPU, memory, event loop lag). Default true. */
  readonly processMetrics?: boolean;
}

/** Creates the prom-client registry of one process (never the global one, so tests can run many). */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  if (options.processMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    dropMisnamedGauges(registry);
  }
  return registry;
}

/**
 * prom-client's default metrics include three gauges named `nodejs_active_*_total`; `_total` is for
 * counters (`promtool check metrics` refuses it). They are dropped: the same numbers are the sums of the
 * per-type gauges `nodejs_active_handles{type}`, `nodejs_active_requests{type}` and
 * `nodejs_active_resources{type}`, which prom-client serves too.
 */
function dropMisnamedGauges(registry: Registry): void {
  for (const kind of ['handles', 'requests', 'resources'] as const) registry.removeSingleMetric(`nodejs_active_${kind}_total`);
}

/** Buckets (seconds) for latencies from 100 µs to 10 s: fan-out and RPC both live in this range. */
export const LATENCY_BUCKETS_SEC = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
