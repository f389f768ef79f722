import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createLogger } from '@switchboard/core';
import { startRedis, startRedisPair, type RedisCluster, type RedisPair, type RedisServer } from '@switchboard/testkit';
import type { RpcClient, RpcServer } from './rpc.js';
import { runRpcContract } from './rpc.contract.js';
import { MemoryRpc } from './rpc-memory.js';
import { RedisRpcClient, RedisRpcServer } from './rpc-redis-streams.js';

const logger = createLogger({ name: 'test', level: 'silent' });
let redis: RedisServer;
let cluster: RedisCluster;
let pair: RedisPair | undefined;
beforeAll(async () => {
  pair = await startRedisPair();
  ({ redis, cluster } = pair);
}, 60_000);
afterAll(() => pair?.stop());

runRpcContract('memory', () => {
  const rpc = new MemoryRpc();
  return Promise.resolve({
    serve: (h) => Promise.resolve(rpc.serve(h)),
    client: (t) => Promise.resolve(rpc.client(t)),
    close: () => Promise.resolve(),
  });
});

function redisWorld(url: () => string, isCluster: boolean) {
  return () => {
    const target = { url: url(), cluster: isCluster };
    const made: (RpcClient | RpcServer)[] = [];
    return Promise.resolve({
      serve: async (handler: (m: string, p: unknown) => Promise<unknown>) => {
        const s = await RedisRpcServer.start({ target, logger, nodeId: 'srv', handler, claimIdleMs: 500 });
        made.push(s);
        return s;
      },
      client: async (timeoutMs: number) => {
        const c = await RedisRpcClient.connect({ target, logger, nodeId: 'cli', timeoutMs });
        made.push(c);
        return c;
      },
      close: async () => {
        await Promise.all(made.map((m) => m.close()));
      },
    });
  };
}

runRpcContract('Redis Streams (standalone)', redisWorld(() => redis.url, false));
runRpcContract('Redis Streams (3-master Cluster)', redisWorld(() => cluster.url, true));

describe('Redis Rpc specifics', () => {
  it('a request held by a replica that died is claimed and answered by another', async () => {
    const target = { url: redis.url, cluster: false };
    let stuckSeen!: () => void;
    const seen = new Promise<void>((r) => (stuckSeen = r));
    // Replica A takes the request and never answers (a process frozen or killed mid-request).
    const a = await RedisRpcServer.start({
      target,
      logger,
      nodeId: 'dead',
      claimIdleMs: 500,
      handler: () => {
        stuckSeen();
        return new Promise(() => {});
      },
    });
    const client = await RedisRpcClient.connect({ target, logger, nodeId: 'cli', timeoutMs: 8000 });
    const answer = client.call('login', { u: 'x' });
    await seen;
    await a.close();
    const b = await RedisRpcServer.start({ target, logger, nodeId: 'alive', claimIdleMs: 500, handler: () => Promise.resolve('served by b') });
    try {
      expect(await answer).toBe('served by b');
    } finally {
      await Promise.all([b.close(), client.close()]);
    }
  });

  it('serves a request id once: a duplicate delivery gets the remembered reply, not a second execution', async () => {
    const target = { url: redis.url, cluster: false };
    let executions = 0;
    const srv = await RedisRpcServer.start({ target, logger, nodeId: 'srv', claimIdleMs: 500, handler: () => Promise.resolve(++executions) });
    const r = new Redis(redis.url);
    const deadline = String(Date.now() + 10_000);
    for (let i = 0; i < 2; i++) await r.xadd('sb:{rpc}:req', '*', 'i', 'same-id', 'm', 'count', 'p', 'null', 'r', 'sb:{rpc}:reply:manual', 'd', deadline);
    const deadlineMs = Date.now() + 5000;
    let replies: [string, string[]][] = [];
    while (replies.length < 2 && Date.now() < deadlineMs) {
      replies = (await r.xrange('sb:{rpc}:reply:manual', '-', '+'));
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(replies.map(([, f]) => f[3])).toEqual(['1', '1']);
    expect(executions).toBe(1);
    r.disconnect();
    await srv.close();
  });

  it('a call fails fast (unavailable) when Redis is down', async () => {
    const down = await startRedis();
    const client = await RedisRpcClient.connect({ target: { url: down.url, cluster: false }, logger, nodeId: 'cli', timeoutMs: 5000 });
    await down.kill();
    const t0 = Date.now();
    await expect(client.call('x', {})).rejects.toMatchObject({ code: 'unavailable' });
    expect(Date.now() - t0).toBeLessThan(2500);
    await client.close();
    await down.stop();
  });
});
