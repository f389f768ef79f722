import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

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
