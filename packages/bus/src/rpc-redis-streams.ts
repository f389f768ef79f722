/**
 * Rpc over Redis Streams (DESIGN §2): requests go to one stream read by the consumer group `session`
 * (every session replica is a consumer), replies to a stream per client. Request ids make serving
 * idempotent (a reply is remembered for two minutes and re-sent, never recomputed), and a request left
 * pending by a dead replica is claimed with XAUTOCLAIM and served by another.
 * All keys share the hash tag `{rpc}`, so on a Redis Cluster they live in one slot.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { SwitchboardError, type Logger } from '@switchboard/core';
import { Registry, type Counter } from 'prom-client';
import { connectRedis, failFastOptions, ignoreUntilWatched, redisConnectionErrors, waitReady, watchRedisErrors, type RedisClient, type RedisTarget } from './redis.js';
import { rpcTimeout, toRpcError, type RpcClient, type RpcHandler, type RpcServer } from './rpc.js';

const REQ = 'sb:{rpc}:req';
const GROUP = 'session';
const replyKey = (client: string) => `sb:{rpc}:reply:${client}`;
const doneKey = (id: string) => `sb:{rpc}:done:${id}`;
const runKey = (id: string) => `sb:{rpc}:run:${id}`;
/** Requests kept in the stream (approximately): far more than are ever in flight. */
const REQ_MAXLEN = 100_000;
/** A remembered reply outlives any client retry of the same request. */
const DONE_TTL_SEC = 120;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fieldsToMap(fields: (string | Buffer)[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), String(fields[i + 1]));
  return m;
}

/** Options shared by both sides. */
export interface RedisRpcOptions {
  readonly target: RedisTarget;
  readonly logger: Logger;
  /** Names this process in Redis (`CLIENT LIST`, consumer names). */
  readonly nodeId: string;
  /** Where connection errors are counted (a private registry when absent). */
  readonly registry?: Registry;
}

/**
 * The blocking-read connection of an Rpc side: to the master holding the `{rpc}` slot (a plain connection
 * on standalone Redis). After a read error it follows the slot to its current master, so the seam
 * survives a Redis Cluster failover.
 */
class RpcReader {
  conn: Redis;
  private readonly errors: Counter<'client'>;

  constructor(
    private readonly main: RedisClient,
    private readonly options: RedisRpcOptions,
    private readonly role: string,
  ) {
    this.errors = redisConnectionErrors(options.registry ?? new Registry());
    watchRedisErrors(main, role, options.logger, this.errors);
    this.conn = this.open();
  }

  private open(): Redis {
    const conn = blockingConnection(this.main, this.options.target, `sb:${this.options.nodeId}:${this.role}-read`, 2000);
    watchRedisErrors(conn, `${this.role}-read`, this.options.logger, this.errors);
    return conn;
  }

  /** After a read error: on a cluster, refresh the slot table and reconnect when the slot moved. */
  async follow(): Promise<void> {
    if (!this.options.target.cluster) return;
    try {
      const cluster = this.main as Cluster;
      await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
      const nodeKey = cluster.slots[calculateSlot(REQ)]?.[0];
      if (!nodeKey) return;
      const i = nodeKey.lastIndexOf(':');
      const { host, port } = this.conn.options;
      if (host === nodeKey.slice(0, i) && port === Number(nodeKey.slice(i + 1))) return;
      this.options.logger.info({ master: nodeKey, role: this.role }, 'rpc slot moved; following it');
      this.conn.disconnect();
      this.conn = this.open();
    } catch (err) {
      this.options.logger.warn({ err, role: this.role }, 'cannot follow the rpc slot yet');
    }
  }

  disconnect(): void {
    this.conn.disconnect();
  }
}

/**
 * A blocking-read connection to the master holding the `{rpc}` slot (a plain connection on standalone
 * Redis). Blocking reads must not share the auto-pipelined connection.
 */
function blockingConnection(main: RedisClient, target: RedisTarget, name: string, blockMs: number): Redis {
  const opts = { ...failFastOptions(name, blockMs + 2000), enableAutoPipelining: false, enableOfflineQueue: true };
  if (!target.cluster) return new Redis(target.url, opts);
  const cluster = main as Cluster;
  const nodeKey = cluster.slots[calculateSlot(REQ)]?.[0];
  if (!nodeKey) throw new Error('no master known for the rpc slot');
  const i = nodeKey.lastIndexOf(':');
  return new Redis({ host: nodeKey.slice(0, i), port: Number(nodeKey.slice(i + 1)), ...opts });
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** The client side: XADD requests, one blocking loop reading this client's reply stream. */
export class RedisRpcClient implements RpcClient {
  private readonly pending = new Map<string, Pending>();
  private readonly id: string;
  private closed = false;
  private readonly loopDone: Promise<void>;

  private constructor(
    private readonly main: RedisClient,
    private readonly reader: RpcReader,
    private readonly options: RedisRpcOptions & { timeoutMs: number },
  ) {
    this.id = `${options.nodeId}-${randomUUID().slice(0, 8)}`;
    this.loopDone = this.loop();
  }

  /** Connects; fails fast when Redis is unreachable. */
  static async connect(options: RedisRpcOptions & { timeoutMs: number }): Promise<RedisRpcClient> {
    const main = connectRedis(options.target, `sb:${options.nodeId}:rpc`);
    main.on('error', ignoreUntilWatched);
    try {
      await waitReady(main);
      main.off('error', ignoreUntilWatched);
      return new RedisRpcClient(main, new RpcReader(main, options, 'rpc-client'), options);
    } catch (err) {
      main.disconnect();
      throw err;
    }
  }

  call<T = unknown>(method: string, params: unknown, timeoutMs = this.options.timeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new SwitchboardError('unavailable', 'rpc client closed'));
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(rpcTimeout(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve, reject, timer });
      this.main
        .xadd(REQ, 'MAXLEN', '~', REQ_MAXLEN, '*', 'i', id, 'm', method, 'p', JSON.stringify(params ?? null), 'r', replyKey(this.id), 'd', String(Date.now() + timeoutMs))
        .catch((err: unknown) => {
          clearTimeout(timer);
          this.pending.delete(id);
          this.options.logger.warn({ err, method }, 'rpc request not sent');
          reject(new SwitchboardError('unavailable', 'the session service is unreachable (Redis unavailable)'));
        });
    });
  }

  private async loop(): Promise<void> {
    let last = '0-0';
    const key = replyKey(this.id);
    while (!this.closed) {
      try {
        const reply = await this.reader.conn.xread('COUNT', 200, 'BLOCK', 2000, 'STREAMS', key, last);
        if (!reply) continue;
        for (const [, entries] of reply) {
          for (const [entryId, fields] of entries) {
            last = entryId;
            const f = fieldsToMap(fields);
            const p = this.pending.get(f.get('i') ?? '');
            if (!p) continue;
            this.pending.delete(f.get('i')!);
            clearTimeout(p.timer);
            const err = f.get('e');
            if (err !== undefined) {
              const body = JSON.parse(err) as { code: 'internal_error'; message: string };
              p.reject(new SwitchboardError(body.code, body.message));
            } else p.resolve(JSON.parse(f.get('o') ?? 'null'));
          }
        }
      } catch (err) {
        if (this.closed) break;
        this.options.logger.warn({ err }, 'rpc reply read failed; retrying');
        await sleep(200);
        await this.reader.follow();
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new SwitchboardError('unavailable', 'rpc client closed'));
    }
    this.pending.clear();
    this.reader.disconnect();
    // The loop logs its own failures; closing only waits for it to end.
    await this.loopDone.catch(() => undefined);
    await this.main.quit().catch(() => this.main.disconnect());
  }
}

/** Options of {@link RedisRpcServer}. */
export interface RedisRpcServerOptions extends RedisRpcOptions {
  readonly handler: RpcHandler;
  /** A request pending this long at another consumer is claimed. */
  readonly claimIdleMs: number;
}

/** Requests one replica serves at once; it stops reading while this many are running. */
const MAX_IN_FLIGHT = 256;

/** The server side: a consumer of group `session`, plus periodic XAUTOCLAIM of abandoned requests. */
export class RedisRpcServer implements RpcServer {
  private closed = false;
  private inFlight = 0;
  private slotFreed: (() => void) | null = null;
  private claiming = false;
  private readonly consumer: string;
  private readonly loop: Promise<void>;
  private readonly claimTimer: NodeJS.Timeout;

  private constructor(
    private readonly main: RedisClient,
    private readonly reader: RpcReader,
    private readonly options: RedisRpcServerOptions,
  ) {
    this.consumer = `${options.nodeId}-${randomUUID().slice(0, 8)}`;
    this.loop = this.readLoop();
    this.claimTimer = setInterval(() => void this.claim(), Math.max(100, Math.floor(options.claimIdleMs / 2)));
  }

  /** Joins the consumer group (creating it when needed) and starts serving. */
  static async start(options: RedisRpcServerOptions): Promise<RedisRpcServer> {
    const main = connectRedis(options.target, `sb:${options.nodeId}:rpc-server`);
    main.on('error', ignoreUntilWatched);
    try {
      await waitReady(main);
      try {
        await main.xgroup('CREATE', REQ, GROUP, '$', 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error && /BUSYGROUP/.test(err.message))) throw err;
      }
      main.off('error', ignoreUntilWatched);
      return new RedisRpcServer(main, new RpcReader(main, options, 'rpc-server'), options);
    } catch (err) {
      main.disconnect();
      throw err;
    }
  }

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      try {
        const reply = (await this.reader.conn.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', 100, 'BLOCK', 2000, 'STREAMS', REQ, '>')) as
          | [string, [string, string[]][]][]
          | null;
        if (!reply) continue;
        for (const [, entries] of reply) for (const [id, fields] of entries) this.start(id, fields);
        while (this.inFlight >= MAX_IN_FLIGHT && !this.closed) await new Promise<void>((r) => (this.slotFreed = r));
      } catch (err) {
        if (this.closed) break;
        // The group vanished (Redis restarted without it): create it again. A failure to create it is the
        // same outage as the read's, reported just below; the next turn tries again.
        if (err instanceof Error && /NOGROUP/.test(err.message)) await this.main.xgroup('CREATE', REQ, GROUP, '$', 'MKSTREAM').catch(() => undefined);
        this.options.logger.warn({ err }, 'rpc read failed; retrying');
        await sleep(200);
        await this.reader.follow();
      }
    }
  }

  /** Serves what dead or stuck replicas left pending for longer than `claimIdleMs`. */
  private async claim(): Promise<void> {
    if (this.closed || this.claiming) return;
    this.claiming = true;
    try {
      const res = (await this.main.xautoclaim(REQ, GROUP, this.consumer, this.options.claimIdleMs, '0-0', 'COUNT', 100)) as [string, [string, string[] | null][]];
      const entries = res[1].filter((e): e is [string, string[]] => Array.isArray(e[1]));
      if (entries.length > 0) this.options.logger.info({ claimed: entries.length }, 'claimed requests left by another replica');
      for (const [id, fields] of entries) this.start(id, fields);
    } catch (err) {
      if (!this.closed) this.options.logger.warn({ err }, 'rpc claim failed');
    } finally {
      this.claiming = false;
    }
  }

  /** Serves a request without holding up the loop: one slow request must not stall the replica. */
  private start(entryId: string, fields: string[]): void {
    this.inFlight++;
    this.serve(entryId, fields)
      .catch((err: unknown) => {
        // Left pending: XAUTOCLAIM hands it to a replica (maybe this one) again.
        if (!this.closed) this.options.logger.warn({ err }, 'rpc request not completed');
      })
      .finally(() => {
        this.inFlight--;
        const freed = this.slotFreed;
        this.slotFreed = null;
        freed?.();
      });
  }

  private async serve(entryId: string, fields: string[]): Promise<void> {
    const f = fieldsToMap(fields);
    const id = f.get('i');
    const reply = f.get('r');
    const method = f.get('m');
    if (!id || !reply || !method) {
      await this.main.xack(REQ, GROUP, entryId);
      return;
    }
    if (Number(f.get('d') ?? 0) < Date.now()) {
      // The caller has given up: serving it now would only do work nobody reads.
      await this.main.xack(REQ, GROUP, entryId);
      return;
    }
    let answer = await this.main.get(doneKey(id));
    if (answer === null) {
      // Another delivery of the same id is running (here or at another replica): leave this one
      // pending; once claimed again it finds the remembered reply. The lock lives as long as a claim
      // takes, so a replica that dies mid-request never blocks the one that takes over.
      const locked = await this.main.set(runKey(id), this.consumer, 'PX', this.options.claimIdleMs, 'NX');
      if (locked === null) return;
      let body: [string, string];
      try {
        const result = await this.options.handler(method, JSON.parse(f.get('p') ?? 'null'));
        body = ['o', JSON.stringify(result ?? null)];
      } catch (err) {
        if (!(err instanceof Error && err.name === 'SwitchboardError')) this.options.logger.error({ err, method }, 'rpc handler failed');
        body = ['e', JSON.stringify(toRpcError(err))];
      }
      answer = JSON.stringify(body);
      await this.main.set(doneKey(id), answer, 'EX', DONE_TTL_SEC);
    }
    const [field, value] = JSON.parse(answer) as [string, string];
    await this.main
      .multi()
      .xadd(reply, 'MAXLEN', '~', 1000, '*', 'i', id, field, value)
      .expire(reply, 300)
      .xack(REQ, GROUP, entryId)
      .exec();
  }

  /**
   * Stops reading and claiming. Requests still running are abandoned unacknowledged: another replica
   * claims them, and their ids keep the work from being done twice once it finished.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.claimTimer);
    this.slotFreed?.();
    this.reader.disconnect();
    // The loop logs its own failures; closing only waits for it to end.
    await this.loop.catch(() => undefined);
    this.main.disconnect();
  }
}
