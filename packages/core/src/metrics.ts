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
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Buckets (seconds) for latencies from 100 µs to 10 s: fan-out and RPC both live in this range. */
export const LATENCY_BUCKETS_SEC = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
