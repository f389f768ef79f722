import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '@switchboard/core';

/** A standalone client or a cluster client. */
export type RedisClient = Redis | Cluster;

/** Where Redis is and how to reach it. */
export interface RedisTarget {
  /** `redis://[user:pass@]host:port[/db]`; for a cluster, any node as the seed. */
  readonly url: string;
  readonly cluster: boolean;
}

/** Timeout of ordinary commands: an outage surfaces in about a second, never as a silent pile-up. */
export const COMMAND_TIMEOUT_MS = 1000;

/**
 * ioredis options that fail fast: commands time out after a second, nothing queues while
 * disconnected (standalone) or only for the command timeout (cluster, where ioredis needs the queue
 * across slot refreshes), one retry at most, reconnects forever with capped backoff.
 */
export function failFastOptions(name: string, commandTimeoutMs = COMMAND_TIMEOUT_MS): RedisOptions {
  return {
    connectionName: name,
    // ioredis 6 speaks RESP3 by default, which reshapes replies (XREAD becomes a flattened map): pin
    // RESP2 so replies have the shapes the Redis docs show.
    protocol: 2,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
    // A read-only replica after failover answers writes with READONLY: reconnect to the new master.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
}

function clusterOptions(name: string, commandTimeoutMs: number): ClusterOptions {
  // The cluster client owns retries and its queue; its node connections take the rest of the settings.
  const { retryStrategy: _retry, enableOfflineQueue: _queue, ...nodeOptions } = failFastOptions(name, commandTimeoutMs);
  return {
    redisOptions: nodeOptions,
    // ioredis needs its offline queue across slot refreshes; the command timeout still bounds every
    // queued command to about a second.
    enableOfflineQueue: true,
    enableAutoPipelining: true,
    scaleReads: 'master',
    maxRedirections: 8,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
    slotsRefreshTimeout: 2000,
  };
}

/** Opens a client (standalone or cluster) with fail-fast settings. */
export function connectRedis(target: RedisTarget, name: string, commandTimeoutMs = COMMAND_TIMEOUT_MS): RedisClient {
  if (!target.cluster) return new Redis(target.url, failFastOptions(name, commandTimeoutMs));
  const u = new URL(target.url);
  return new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    ...clusterOptions(name, commandTimeoutMs),
    redisOptions: {
      ...clusterOptions(name, commandTimeoutMs).redisOptions,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    },
  });
}

/** Resolves when the client is ready; rejects after `timeoutMs` (start-up fails fast too). */
export function waitReady(client: RedisClient, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/** Counts connection errors of every Redis client of a process, by client role (bounded: a few roles). */
export function redisConnectionErrors(registry: Registry): Counter<'client'> {
  const name = 'switchboard_redis_connection_errors_total';
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<'client'>;
  return new Counter({
    name,
    help: 'Errors reported by Redis connections (failed connects and reconnects, dropped sockets), by client role.',
    labelNames: ['client'],
    registers: [registry],
  });
}

/**
 * ioredis emits `error` for every failed (re)connect attempt and crashes the process when nobody listens.
 * This listener counts each one and logs the first of each outage (the next after a `ready`), so an
 * outage is visible once in the logs and fully in the metric, never silent and never a log flood.
 */
export function watchRedisErrors(client: RedisClient | Redis, role: string, log: Logger, errors: Counter<'client'>): void {
  let logged = false;
  // Both client kinds are EventEmitters; the union of their typed `on` overloads is not callable as is.
  const emitter = client as unknown as NodeJS.EventEmitter;
  emitter.on('ready', () => {
    logged = false;
  });
  emitter.on('error', (err: Error) => {
    errors.inc({ client: role });
    if (logged) return;
    logged = true;
    log.warn({ err, client: role }, 'redis connection error');
  });
}

/**
 * The error listener a client carries between its creation and {@link watchRedisErrors}: ioredis needs
 * one to not crash, and a failed start-up connect surfaces through {@link waitReady}'s rejection instead.
 */
export function ignoreUntilWatched(): void {}
