import { afterAll, beforeAll } from 'vitest';
import { connectRedis, waitReady, type RedisClient } from '@switchboard/bus';
import { startRedisPair, type RedisCluster, type RedisPair, type RedisServer } from '@switchboard/testkit';
import type { AdmissionLimits } from './admission.js';
import { runRepoContract } from './repo.contract.js';
import { MemorySessionRepo } from './repo-memory.js';
import { RedisSessionRepo } from './repo-redis.js';

let redis: RedisServer;
let cluster: RedisCluster;
let pair: RedisPair | undefined;
beforeAll(async () => {
  pair = await startRedisPair();
  ({ redis, cluster } = pair);
}, 60_000);
afterAll(() => pair?.stop());

runRepoContract('memory', (limits) => Promise.resolve(new MemorySessionRepo(limits)));

function redisFactory(url: () => string, isCluster: boolean, flush: () => Promise<void>) {
  return async (limits: AdmissionLimits) => {
    await flush();
    const client: RedisClient = connectRedis({ url: url(), cluster: isCluster }, 'test-repo');
    await waitReady(client);
    const repo = new RedisSessionRepo(client, limits);
    return Object.assign(repo, {
      close: () => {
        client.disconnect();
        return Promise.resolve();
      },
    });
  };
}

runRepoContract(
  'Redis (standalone)',
  redisFactory(() => redis.url, false, async () => {
    await redis.command('FLUSHALL');
  }),
);
runRepoContract(
  'Redis (3-master Cluster)',
  redisFactory(() => cluster.url, true, async () => {
    await Promise.all(cluster.nodes.map((n) => n.command('FLUSHALL')));
  }),
);
