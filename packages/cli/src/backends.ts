import { MemoryBroker, RedisStreamsBus, type Bus } from '@switchboard/bus';
import type { Config, Logger } from '@switchboard/core';
import type { Registry } from 'prom-client';

/** The bus of a process and how to release it. */
export interface BusBackend {
  readonly bus: Bus;
  readonly kind: 'memory' | 'redis' | 'redis-cluster';
  close(): Promise<void>;
}

/** Redis Streams when `REDIS_URL` is set, the embedded in-memory broker otherwise. */
export async function createBus(config: Config, logger: Logger, registry: Registry): Promise<BusBackend> {
  if (!config.redisUrl) {
    const broker = new MemoryBroker({ historySize: config.historySize, historyTtlSec: config.historyTtlSec });
    const bus = broker.node();
    return {
      bus,
      kind: 'memory',
      async close() {
        await bus.close();
        broker.close();
      },
    };
  }
  const bus = await RedisStreamsBus.connect({
    target: { url: config.redisUrl, cluster: config.redisCluster },
    shards: config.shards,
    feedMaxLen: config.feedMaxLen,
    blockMs: config.busBlockMs,
    readCount: config.busReadCount,
    historySize: config.historySize,
    historyTtlSec: config.historyTtlSec,
    logger,
    registry,
    nodeId: config.nodeId,
  });
  return { bus, kind: config.redisCluster ? 'redis-cluster' : 'redis', close: () => bus.close() };
}
