import { MemoryBroker, RedisStreamsBus, type Bus } from '@switchboard/bus';
import type { Config, Logger } from '@switchboard/core';
import { MemoryObjectStore, RedisObjectStore, type ObjectStore, type ObjectStoreOptions } from '@switchboard/store';
import type { Registry } from 'prom-client';

/** The bus of a process, the object stores on the same backend, and how to release them. */
export interface BusBackend {
  readonly bus: Bus;
  readonly kind: 'memory' | 'redis' | 'redis-cluster';
  /** Opens an object store whose change events travel on this bus (same broker, or same Redis). */
  openStore(options: ObjectStoreOptions): Promise<ObjectStore>;
  close(): Promise<void>;
}

/** Redis Streams when `REDIS_URL` is set, the embedded in-memory broker otherwise. */
export async function createBus(config: Config, logger: Logger, registry: Registry): Promise<BusBackend> {
  const history = { historySize: config.historySize, historyTtlSec: config.historyTtlSec };
  const stores: ObjectStore[] = [];
  const closeStores = () => Promise.all(stores.splice(0).map((s) => s.close()));
  if (!config.redisUrl) {
    const broker = new MemoryBroker({ ...history, idempotencyWindowSec: config.idempotencyWindowSec });
    const bus = broker.node();
    return {
      bus,
      kind: 'memory',
      openStore(options) {
        const store = new MemoryObjectStore(broker, options);
        stores.push(store);
        return Promise.resolve(store);
      },
      async close() {
        await closeStores();
        await bus.close();
        broker.close();
      },
    };
  }
  const target = { url: config.redisUrl, cluster: config.redisCluster };
  const shared = { target, shards: config.shards, feedMaxLen: config.feedMaxLen, ...history, logger, registry, nodeId: config.nodeId };
  const bus = await RedisStreamsBus.connect({
    ...shared,
    blockMs: config.busBlockMs,
    readCount: config.busReadCount,
    entryMessages: config.busEntryMessages,
    minReplicas: config.publishMinReplicas,
    replicaTimeoutMs: config.publishReplicaTimeoutMs,
    idempotencyWindowSec: config.idempotencyWindowSec,
  });
  return {
    bus,
    kind: config.redisCluster ? 'redis-cluster' : 'redis',
    async openStore(options) {
      // Same shards, feed length and history as the bus: its readers deliver the stores' change events.
      const store = await RedisObjectStore.connect({ ...shared, ...options });
      stores.push(store);
      return store;
    },
    async close() {
      await closeStores();
      await bus.close();
    },
  };
}
