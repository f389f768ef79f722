/**
 * The Bus over Redis Streams (DESIGN §4).
 *
 * - A channel belongs to shard `fnv1a(channel) mod S`; its keys carry the hash tag `{s}` so one shard
 *   lives in one Redis Cluster slot: `sb:{s}:feed` (live feed, `MAXLEN ~`), `sb:{s}:h:<channel>`
 *   (history, `MAXLEN ~ historySize`, TTL), `sb:{s}:meta:<channel>` (epoch and last offset, TTL).
 * - Publish: the publishes of one event-loop turn are flushed together, one Lua script call per shard
 *   carrying each channel's run of messages (offset, epoch, history, feed — atomically); the calls are
 *   auto-pipelined. The payload is msgpack-encoded once, by the publisher.
 * - A node reads only the feeds of shards it has interest in, resuming from the last id it read, so a
 *   reconnect loses nothing still in the feed. On standalone Redis that is one `XREAD BLOCK` loop (one
 *   connection) over all interested shards. On Redis Cluster a multi-key XREAD must stay in one slot
 *   (CROSSSLOT), so there is one loop per interested shard, on a connection to the slot's master.
 * - Interest changes adjust the read set without restarting anything: the blocked XREAD is woken with
 *   `CLIENT UNBLOCK` and re-issued with the new streams.
 * - After a read error the node checks whether the feed was trimmed past its position
 *   (`max-deleted-entry-id`) or lost (Redis restarted empty) and reports a gap for the shard's channels.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Redis, type Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { readFileSync } from 'node:fs';
import { LATENCY_BUCKETS_SEC, SwitchboardError, channelNameError, idempotencyKeyError, wallClockMs, type Envelope, type Logger, type PublishRequest, type StreamPosition } from '@switchboard/core';
import type { Bus, BusGap, DeliveryHandler, HistoryOptions, HistoryResult, PublishResult } from './bus.js';
import { decodePayload, encodePayload } from './codec.js';
import { keys, shardOf, compareStreamIds } from './keys.js';
import { Lane, type LaneHost } from './lane.js';
import { connectRedis, failFastOptions, ignoreUntilWatched, redisConnectionErrors, waitReady, watchRedisErrors, type RedisClient, type RedisTarget } from './redis.js';

/** Options of {@link RedisStreamsBus}. */
export interface RedisStreamsBusOptions extends HistoryOptions {
  readonly target: RedisTarget;
  /** Number of shards (S). Every node of a cluster must use the same value. */
  readonly shards: number;
  /** Approximate entries kept per shard feed (seconds of traffic). */
  readonly feedMaxLen: number;
  /** How long one XREAD blocks when nothing arrives. */
  readonly blockMs: number;
  /** Most entries per stream per XREAD. */
  readonly readCount: number;
  readonly logger: Logger;
  /** Where the bus metrics go (a private registry when absent). */
  readonly registry?: Registry;
  /** Names this node's connections (`CLIENT LIST`). */
  readonly nodeId: string;
  /**
   * Acknowledged means replicated: a publish resolves only once this many replicas of the channel's
   * master have it (`WAIT`), else it fails with `not_replicated`. 0 (default): acknowledged by the master.
   */
  readonly minReplicas?: number;
  /** How long a publish waits for `minReplicas` (`WAIT`'s timeout). */
  readonly replicaTimeoutMs?: number;
  /** How long a publish's idempotency key is remembered (default {@link DEFAULT_IDEMPOTENCY_WINDOW_SEC}). */
  readonly idempotencyWindowSec?: number;
  /**
   * Most messages of a channel's run stored in one history entry and announced in one feed entry
   * (default {@link DEFAULT_ENTRY_MESSAGES}); 1 writes one entry per message, which edges of every
   * earlier version read (a rolling upgrade from one).
   */
  readonly entryMessages?: number;
}

/** Messages per history and feed entry when the options name no other count. */
export const DEFAULT_ENTRY_MESSAGES = 64;

/** How often the bus checks that every master it writes to answers (readiness). */
const HEALTH_EVERY_MS = 200;
/** Readiness turns false when no check succeeded for this long (well inside a second). */
const HEALTH_STALE_MS = 800;

/**
 * Scripts with a fixed number of keys. publish.lua takes three keys per channel (its shard's feed, meta
 * and history) and announce.lua a shard's feed and two per channel. On a Cluster they are defined once
 * per channel count ({@link shardScript}) because ioredis routes (and auto-pipelines) a script call by
 * its first key only when the key count is fixed; a standalone Redis needs no routing, so there each is
 * one script whose call names its key count ({@link STANDALONE_SCRIPT}): ioredis copies every defined
 * command into each pipeline it creates (one per auto-pipelined tick), 130 of them per flush otherwise.
 */
const SCRIPTS = {
  sbPosition: { keys: 2, file: 'position.lua' },
  sbHistory: { keys: 2, file: 'history.lua' },
  sbAbandonEpoch: { keys: 2, file: 'abandon-epoch.lua' },
} as const;

/**
 * Most channels per publish or announce script call on a Cluster, where one script is defined per channel
 * count (each copied into every pipeline: the count is kept small) and a call holds one shard's channels.
 */
const CLUSTER_SCRIPT_CHANNELS = 32;

/**
 * Most channels per publish script call on a standalone Redis (one script for every count): a flush of
 * messages spread over many channels of every shard is one call per this many channels.
 */
const STANDALONE_SCRIPT_CHANNELS = 64;

/** The command name of the Cluster script `kind` (publish.lua, announce.lua) for `channels` channels. */
function shardScript(kind: 'publish' | 'announce', channels: number): `sb${string}` {
  return `sb_${kind}_${channels}`;
}

/** The command names of publish.lua and announce.lua on a standalone Redis: the first argument is the key count. */
const STANDALONE_SCRIPT = { publish: 'sbPublishAny', announce: 'sbAnnounceAny' } as const;

/** Keys of a publish.lua call (feed, meta, history per channel) and of an announce.lua call (feed, then meta, history per channel). */
const SCRIPT_KEYS = { publish: (channels: number) => 3 * channels, announce: (channels: number) => 1 + 2 * channels } as const;

type ScriptClient = RedisClient & {
  [shardScript: `sb${string}`]: (...args: (string | Buffer | number)[]) => Promise<unknown>;
  sbPosition(...args: (string | Buffer | number)[]): Promise<[string, number]>;
  sbAbandonEpoch(...args: (string | Buffer | number)[]): Promise<[string, number]>;
  sbHistoryBuffer(...args: (string | Buffer | number)[]): Promise<[Buffer, number, number, [Buffer, Buffer[]][]]>;
};

/**
 * Flushes whose script calls may be in flight at once (acknowledged by the master). Publishes that
 * arrive meanwhile wait for one to answer and then go out together: under load a flush carries what
 * arrived during a round trip (longer runs, fewer script calls and socket writes for Redis and the
 * edge), and an idle bus still flushes in the next turn of the event loop. Replicated publishing
 * (a flush waits for `WAIT`) is not gated, so one slow replica acknowledgement delays no other flush.
 */
const MAX_FLUSHES_IN_FLIGHT = 2;

/** Most messages per publish script call: bounds the time one script holds Redis. */
const SCRIPT_MESSAGES = 256;

/** How long an idempotency key is remembered when the options name no window. */
export const DEFAULT_IDEMPOTENCY_WINDOW_SEC = 300;

/**
 * Who waits for the publishes of one call: `publish` (one message) or `publishBatch` (its results in
 * request order). One per call, not a promise per message: a batch of 100 was 100 promises, their
 * closures and a `Promise.all`, all garbage a moment later.
 */
interface PublishWaiter {
  /** The message at `index` of the call is published at `result`. */
  answer(index: number, result: PublishResult): void;
  /** The call fails with the first error of any of its messages (as `Promise.all` would). */
  fail(err: unknown): void;
}

/** The waiter of one `publish`. */
class SingleWaiter implements PublishWaiter {
  constructor(
    private readonly resolve: (result: PublishResult) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  answer(_index: number, result: PublishResult): void {
    this.resolve(result);
  }

  fail(err: unknown): void {
    this.reject(err);
  }
}

/** The waiter of one `publishBatch`: resolves with every result once the last one is in. */
class BatchWaiter implements PublishWaiter {
  /** Results in request order, or null once the call failed. */
  private results: PublishResult[] | null;
  private remaining: number;

  constructor(
    count: number,
    private readonly resolve: (results: PublishResult[]) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.results = new Array<PublishResult>(count);
    this.remaining = count;
  }

  answer(index: number, result: PublishResult): void {
    const results = this.results;
    if (results === null) return;
    results[index] = result;
    if (--this.remaining === 0) this.resolve(results);
  }

  fail(err: unknown): void {
    if (this.results === null) return;
    this.results = null;
    this.reject(err);
  }
}

/** A publish waiting for the next flush. */
interface QueuedPublish {
  readonly req: PublishRequest;
  /** Publish time, stamped when it was queued (latencies count the wait). */
  readonly ts: number;
  readonly waiter: PublishWaiter;
  /** Its place in its call's results. */
  readonly index: number;
}

/** The publishes of one channel in one script call, in order. */
interface PublishRun {
  readonly channel: string;
  readonly shard: number;
  readonly items: readonly QueuedPublish[];
}

/** publish.lua's reply: write stamp, and per run { epoch, first new offset, { index, offset, epoch } per duplicate }. */
type PublishReply = [string | Buffer, [string | Buffer, number, [number, number, string | Buffer][]][]];

/** Each run's results from publish.lua's reply: new messages take consecutive offsets, duplicates their first. */
function toResults(runs: readonly PublishRun[], reply: PublishReply): PublishResult[][] {
  const out: PublishResult[][] = [];
  for (let j = 0; j < runs.length; j++) {
    const [e, first, dups] = reply[1][j]!;
    const epoch = String(e);
    const count = runs[j]!.items.length;
    const res: PublishResult[] = new Array<PublishResult>(count);
    let next = Number(first);
    let d = 0;
    for (let i = 0; i < count; i++) {
      const dup = dups[d];
      if (dup && Number(dup[0]) === i + 1) {
        res[i] = { epoch: String(dup[2]), offset: Number(dup[1]), duplicate: true };
        d++;
      } else res[i] = { epoch, offset: next++ };
    }
    out.push(res);
  }
  return out;
}

/** Runs the replicas did not acknowledge in time: each message's own not_replicated error. */
class NotReplicatedRuns extends Error {
  constructor(
    readonly runs: readonly PublishRun[],
    readonly results: readonly PublishResult[][],
    readonly acked: number,
    readonly wanted: number,
    readonly timeoutMs: number,
  ) {
    super('not replicated');
  }

  forItem(j: number, i: number): NotReplicatedError {
    const p = this.results[j]![i]!;
    return new NotReplicatedError(
      `committed as ${this.runs[j]!.channel} ${p.epoch}/${p.offset} on the master, but only ${this.acked} of ${this.wanted} replicas acknowledged it within ${this.timeoutMs} ms: it is not announced; a failover now may lose it, else it becomes visible with the next announced message of the channel`,
      { epoch: p.epoch, offset: p.offset },
    );
  }
}

/**
 * A publish the master committed but too few replicas acknowledged in time: it may be lost by a failover,
 * and it may also be delivered. Carries the position the master gave it.
 */
export class NotReplicatedError extends SwitchboardError {
  constructor(
    message: string,
    readonly position: StreamPosition,
  ) {
    super('not_replicated', message);
    this.name = 'NotReplicatedError';
  }
}

/** Throws the registered error for an idempotency key that may not be built into a key. */
function assertIdempotencyKey(req: PublishRequest): void {
  if (req.idempotencyKey === undefined) return;
  const err = idempotencyKeyError(req.idempotencyKey);
  if (err) throw err;
}

/** Throws the registered error for a channel name that may not be built into a key. */
function assertChannel(channel: string): void {
  const err = channelNameError(channel);
  if (err) throw err;
}

/** True when a feed field is the one-letter name `code` (a byte). */
function isField(b: Buffer, code: number): boolean {
  return b.length === 1 && b[0] === code;
}

/**
 * The first write id of a run entry (`<stamp>-<index>`; message i has `<stamp>-<index+i>`), split; null
 * when it is not one.
 */
function splitWriteId(wid: string): { stamp: string; index: number } | null {
  const dash = wid.indexOf('-');
  const index = Number(wid.slice(dash + 1));
  return dash > 0 && Number.isSafeInteger(index) ? { stamp: wid.slice(0, dash), index } : null;
}

/** A run entry names each payload `p` (fields `from`, from+2, …: 8 in a feed entry, 2 in a history entry). */
function runMarkersOk(f: readonly Buffer[], from = 8): boolean {
  for (let p = from; p < f.length; p += 2) if (!isField(f[p]!, 0x70)) return false;
  return true;
}

/**
 * The messages after `since` up to `top` in history entries (run_flush's layouts: `p, w` for one message
 * at the entry's offset; `w, p, p, …` for a run from it), or null unless they are exactly
 * since+1 … top, each readable: a history we cannot read whole is not ours to replay with a hole.
 */
function historyMessages(channel: string, epoch: string, since: number, top: number, entries: readonly [Buffer, Buffer[]][]): Envelope[] | null {
  const messages: Envelope[] = [];
  let next = since + 1;
  for (const [idBuf, f] of entries) {
    const id = idBuf.toString();
    const first = Number(id.slice(0, id.indexOf('-')));
    if (!Number.isSafeInteger(first) || f.length < 2) return null;
    const run = isField(f[0]!, 0x77) ? splitWriteId(f[1]!.toString()) : null;
    if (run !== null ? f.length < 4 || !runMarkersOk(f, 2) : !isField(f[0]!, 0x70)) return null;
    const count = run !== null ? (f.length - 2) >> 1 : 1;
    for (let i = 0; i < count; i++) {
      const offset = first + i;
      if (offset <= since) continue;
      if (offset > top) break;
      if (offset !== next) return null;
      const payload = decodePayload(run !== null ? f[3 + 2 * i]! : f[1]!);
      if (!payload) return null;
      // Single entries carry their write id in field w (absent on entries written before write ids existed).
      const writeId = run !== null ? `${run.stamp}-${run.index + i}` : f[2] && isField(f[2], 0x77) && f[3] ? f[3].toString() : undefined;
      messages.push(
        writeId !== undefined
          ? { channel, offset, epoch, ts: payload.ts, attrs: payload.attrs, data: payload.data, writeId }
          : { channel, offset, epoch, ts: payload.ts, attrs: payload.attrs, data: payload.data },
      );
      next++;
    }
  }
  return next === top + 1 ? messages : null;
}

class BusMetrics {
  readonly readLag: Histogram;
  readonly gaps: Counter;
  readonly shardsRead: Gauge;
  readonly errors: Counter<'op'>;
  readonly reconnects: Counter;
  readonly read: Counter;
  readonly skipped: Counter;
  readonly replicaWaits: Counter<'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.readLag = new Histogram({
      name: 'switchboard_bus_read_lag_seconds',
      help: 'Publish to edge receive latency through Redis; one observation per XREAD reply, from its oldest entry.',
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    });
    this.gaps = new Counter({
      name: 'switchboard_bus_feed_gaps_total',
      help: 'Shard feeds found trimmed past (or lost beyond) this node\'s read position; the hub repairs from history.',
      registers,
    });
    this.shardsRead = new Gauge({ name: 'switchboard_bus_shards_read', help: 'Shard feeds this node reads.', registers });
    this.errors = new Counter({
      name: 'switchboard_bus_redis_errors_total',
      help: 'Redis command failures by operation (publish, read, position, history, interest).',
      labelNames: ['op'],
      registers,
    });
    this.reconnects = new Counter({
      name: 'switchboard_bus_reconnects_total',
      help: 'Redis reconnections of the bus connections.',
      registers,
    });
    this.read = new Counter({ name: 'switchboard_bus_messages_read_total', help: 'Messages read from the shard feeds and delivered to the hub.', registers });
    this.replicaWaits = new Counter({
      name: 'switchboard_bus_replica_waits_total',
      help: 'Publish script runs that waited for replicas (SWITCHBOARD_PUBLISH_MIN_REPLICAS), by outcome (replicated, not_replicated).',
      labelNames: ['outcome'],
      registers,
    });
    this.skipped = new Counter({
      name: 'switchboard_bus_messages_skipped_total',
      help: 'Messages read from the shard feeds but skipped (channels of a read shard this node has no interest in, or unreadable).',
      registers,
    });
  }
}

/** The Redis Streams implementation of {@link Bus}. */
export class RedisStreamsBus implements Bus {
  readonly metrics: BusMetrics;
  readonly log: Logger;
  private handler: DeliveryHandler = () => {};
  private gapHandler: (gap: BusGap) => void = () => {};
  private readonly interest = new Set<string>();
  private readonly channelsByShard = new Map<number, Set<string>>();
  private readonly pendingShard = new Map<number, Promise<void>>();
  private readonly lanes = new Map<string, Lane>();
  private readonly laneOfShard = new Map<number, Lane>();
  private closed = false;
  private queue: QueuedPublish[] = [];
  private flushScheduled = false;
  /** Flushes whose script calls have not all answered (gated by {@link MAX_FLUSHES_IN_FLIGHT}). */
  private flushesInFlight = 0;
  /** A flush is due once one in flight answers. */
  private flushWaiting = false;
  private readonly afterFlush = (): void => {
    this.flushesInFlight--;
    if (this.flushWaiting) {
      this.flushWaiting = false;
      if (this.queue.length > 0) this.scheduleFlush();
    }
  };
  private readonly historyLimit: string;
  private lastHealthyMs = 0;
  private readonly healthTimer: NodeJS.Timeout;
  private readonly connectionErrors: Counter<'client'>;
  /** What the reading lanes may do with this bus (instead of reaching into it). */
  private readonly laneHost: LaneHost;

  private constructor(
    readonly options: RedisStreamsBusOptions,
    private readonly main: ScriptClient,
  ) {
    this.log = options.logger.child({ component: 'bus' });
    this.metrics = new BusMetrics(options.registry ?? new Registry());
    this.connectionErrors = redisConnectionErrors(options.registry ?? new Registry());
    watchRedisErrors(main, 'bus', this.log, this.connectionErrors);
    // Recovering more than the history holds is impossible anyway.
    this.historyLimit = String(Math.max(options.historySize, 1));
    this.lastHealthyMs = Date.now();
    this.healthTimer = setInterval(() => void this.checkHealth(), HEALTH_EVERY_MS);
    this.healthTimer.unref();
    this.laneHost = {
      log: this.log,
      readCount: options.readCount,
      blockMs: options.blockMs,
      ingest: (lane, reply) => this.ingest(lane, reply),
      checkGaps: (shards, positions) => this.checkGaps(shards, positions),
      reconnected: () => this.metrics.reconnects.inc(),
      readFailed: (lane, err) => {
        this.metrics.errors.inc({ op: 'read' });
        this.log.warn({ err, lane: lane.name }, 'feed read failed; retrying');
      },
      relocate: (lane) => this.maybeMoveLane(lane),
      unblock: (clientId) => this.unblock(clientId),
    };
  }

  /** Connects (failing fast when Redis is unreachable) and loads the scripts. */
  static async connect(options: RedisStreamsBusOptions): Promise<RedisStreamsBus> {
    const main = connectRedis(options.target, `sb:${options.nodeId}:bus`) as ScriptClient;
    // Until the bus exists (and watches it), a failed connect is reported by waitReady below.
    main.on('error', ignoreUntilWatched);
    const luaFile = (file: string) => readFileSync(new URL(`../lua/${file}`, import.meta.url), 'utf8');
    const prelude = luaFile('prelude.lua');
    for (const [name, spec] of Object.entries(SCRIPTS)) main.defineCommand(name, { numberOfKeys: spec.keys, lua: `${prelude}\n${luaFile(spec.file)}` });
    for (const kind of ['publish', 'announce'] as const) {
      const lua = `${prelude}\n${luaFile(`${kind}.lua`)}`;
      // A Cluster: every channel count up front (ioredis copies a client's commands into each pipeline it creates).
      if (options.target.cluster) for (let n = 1; n <= CLUSTER_SCRIPT_CHANNELS; n++) main.defineCommand(shardScript(kind, n), { numberOfKeys: SCRIPT_KEYS[kind](n), lua });
      else main.defineCommand(STANDALONE_SCRIPT[kind], { lua });
    }
    try {
      await waitReady(main);
    } catch (err) {
      main.disconnect();
      throw err;
    }
    main.off('error', ignoreUntilWatched);
    return new RedisStreamsBus(options, main);
  }

  /** The shard of a channel under this bus's shard count. */
  shard(channel: string): number {
    return shardOf(channel, this.options.shards);
  }

  async publish(req: PublishRequest): Promise<PublishResult> {
    this.assertOpen();
    assertChannel(req.channel);
    assertIdempotencyKey(req);
    return new Promise<PublishResult>((resolve, reject) => {
      this.queue.push({ req, ts: wallClockMs(), waiter: new SingleWaiter(resolve, reject), index: 0 });
      this.scheduleFlush();
    });
  }

  /**
   * Publishes many messages. Like every publish, they join the next flush: grouped by shard and
   * channel (order kept within each), one script call per shard for up to {@link SCRIPT_MESSAGES} messages.
   * Every channel name is checked before anything is queued: a bad name publishes nothing of the batch.
   */
  async publishBatch(reqs: readonly PublishRequest[]): Promise<PublishResult[]> {
    this.assertOpen();
    const seen = new Set<string>();
    for (const r of reqs) {
      assertIdempotencyKey(r);
      if (seen.has(r.channel)) continue;
      assertChannel(r.channel);
      seen.add(r.channel);
    }
    if (reqs.length === 0) return [];
    const ts = wallClockMs();
    return new Promise<PublishResult[]>((resolve, reject) => {
      const waiter = new BatchWaiter(reqs.length, resolve, reject);
      for (let i = 0; i < reqs.length; i++) this.queue.push({ req: reqs[i]!, ts, waiter, index: i });
      this.scheduleFlush();
    });
  }

  /**
   * Publishes from every caller that arrive in one turn of the event loop (many HTTP requests, many
   * frames of a publishing socket) are flushed together: their channels' runs of messages in one script
   * call per 256 messages or 64 channels on a standalone Redis; one per shard (and 32 channels) on a
   * Cluster, whose scripts' keys must share a slot, or when publishes wait for replicas (announce.lua goes
   * per shard); all pipelined on one connection. A caller never batches to get this.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    if (this.flushesInFlight >= MAX_FLUSHES_IN_FLIGHT && (this.options.minReplicas ?? 0) === 0) {
      this.flushWaiting = true;
      return;
    }
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const items = this.queue;
    this.queue = [];
    if (items.length === 0) return;
    const calls: Promise<unknown>[] = [];
    // Grouped by script call (every shard together on a standalone Redis without replica waits, else by
    // shard), then by channel in order of first arrival (order kept within a channel).
    const byShard = this.isCluster() || (this.options.minReplicas ?? 0) > 0;
    const maxChannels = this.isCluster() ? CLUSTER_SCRIPT_CHANNELS : STANDALONE_SCRIPT_CHANNELS;
    const groups = new Map<number, Map<string, QueuedPublish[]>>();
    for (const it of items) {
      const channel = it.req.channel;
      const g = byShard ? this.shard(channel) : 0;
      let channels = groups.get(g);
      if (!channels) groups.set(g, (channels = new Map<string, QueuedPublish[]>()));
      const list = channels.get(channel);
      if (list) list.push(it);
      else channels.set(channel, [it]);
    }
    for (const channels of groups.values()) {
      let runs: PublishRun[] = [];
      let n = 0;
      for (const [channel, list] of channels) {
        const shard = this.shard(channel);
        for (let c = 0; c < list.length; c += SCRIPT_MESSAGES) {
          const items = list.length <= SCRIPT_MESSAGES ? list : list.slice(c, c + SCRIPT_MESSAGES);
          if (n > 0 && (n + items.length > SCRIPT_MESSAGES || runs.length === maxChannels)) {
            calls.push(this.settle(runs, this.append(runs)));
            runs = [];
            n = 0;
          }
          runs.push({ channel, shard, items });
          n += items.length;
        }
      }
      if (runs.length > 0) calls.push(this.settle(runs, this.append(runs)));
    }
    this.flushesInFlight++;
    // settle() answers every publish and never rejects, so this only counts the flush down.
    void Promise.all(calls).then(this.afterFlush);
  }

  /** Answers the publishes of `runs` when `done` settles; the returned promise never rejects. */
  private settle(runs: readonly PublishRun[], done: Promise<PublishResult[][]>): Promise<void> {
    return done.then(
      (results) => {
        for (let j = 0; j < runs.length; j++) {
          const items = runs[j]!.items;
          const res = results[j]!;
          for (let i = 0; i < items.length; i++) {
            const it = items[i]!;
            it.waiter.answer(it.index, res[i]!);
          }
        }
      },
      (err: unknown) => {
        this.metrics.errors.inc({ op: 'publish' });
        for (let j = 0; j < runs.length; j++) {
          const items = runs[j]!.items;
          for (let i = 0; i < items.length; i++) items[i]!.waiter.fail(err instanceof NotReplicatedRuns ? err.forItem(j, i) : err);
        }
      },
    );
  }

  /**
   * Runs of messages in one script call (of one shard on a Cluster or with replica waits). Acknowledged by the master
   * (default): the script commits and announces them. Acknowledged means replicated (`minReplicas`):
   * the script commits them without announcing, a `WAIT` pipelined on the same connection (so on the
   * shard's master in a cluster) waits for the replicas, and only then does announce.lua make them
   * visible (feed entries, announced top) — so nothing a failover can lose is ever visible to an edge.
   * Messages whose idempotency key is remembered come back as duplicates with their first position.
   */
  private async append(runs: readonly PublishRun[]): Promise<PublishResult[][]> {
    const o = this.options;
    const minReplicas = o.minReplicas ?? 0;
    const publish = this.shardCommand('publish', runs.length);
    const args: (string | Buffer | number)[] = [...publish.head];
    for (const run of runs) args.push(keys.feed(run.shard), keys.meta(run.shard, run.channel), keys.history(run.shard, run.channel));
    const entryMessages = o.entryMessages ?? DEFAULT_ENTRY_MESSAGES;
    args.push(o.historySize, o.historyTtlSec, o.feedMaxLen, minReplicas === 0 ? 1 : 0, o.idempotencyWindowSec ?? DEFAULT_IDEMPOTENCY_WINDOW_SEC, entryMessages);
    for (const run of runs) {
      // The idempotency keys share the channel's hash tag, so the script stays in one Cluster slot.
      // Without idempotency keys (the common case) a message is one argument: half the arguments to send.
      let keyed = false;
      for (const it of run.items) if (it.req.idempotencyKey !== undefined) keyed = true;
      args.push(run.channel, keys.idempotency(run.shard, run.channel, ''), run.items.length, keyed ? 1 : 0);
      for (const it of run.items) {
        if (keyed) args.push(it.req.idempotencyKey ?? '');
        args.push(encodePayload({ ts: it.ts, attrs: it.req.attrs, data: it.req.data }));
      }
    }
    const script = publish.name;
    if (minReplicas === 0) return toResults(runs, (await this.main[script]!(...args)) as PublishReply);
    const timeoutMs = o.replicaTimeoutMs ?? 500;
    type Pipeline = Record<string, (...a: unknown[]) => { wait(n: number, t: number): { exec(): Promise<[Error | null, unknown][] | null> } }>;
    const res = await (this.main.pipeline() as unknown as Pipeline)[script]!(...args).wait(minReplicas, timeoutMs).exec();
    const [published, waited] = res ?? [];
    if (!published || published[0]) throw published?.[0] ?? new Error('publish not run');
    const reply = published[1] as PublishReply;
    const results = toResults(runs, reply);
    const acked = waited && !waited[0] ? Number(waited[1]) : 0;
    this.metrics.replicaWaits.inc({ outcome: acked >= minReplicas ? 'replicated' : 'not_replicated' });
    if (acked < minReplicas) throw new NotReplicatedRuns(runs, results, acked, minReplicas, timeoutMs);
    // Announce, per channel, up to the last message of its run in the channel's current epoch
    // (duplicates of an earlier, unannounced publish included: they are replicated by now too).
    // Replica waits keep a call to one shard (flush): the feed is the first run's.
    const s = runs[0]!.shard;
    const announceKeys: string[] = [];
    const announceArgs: (string | number)[] = [o.feedMaxLen, entryMessages];
    for (let j = 0; j < runs.length; j++) {
      const epoch = String(reply[1][j]![0]);
      let upTo = 0;
      for (const r of results[j]!) if (r.epoch === epoch && r.offset > upTo) upTo = r.offset;
      if (upTo === 0) continue;
      const channel = runs[j]!.channel;
      announceKeys.push(keys.meta(s, channel), keys.history(s, channel));
      announceArgs.push(channel, epoch, upTo);
    }
    if (announceKeys.length > 0) {
      const announce = this.shardCommand('announce', announceKeys.length / 2);
      await this.main[announce.name]!(...announce.head, keys.feed(s), ...announceKeys, ...announceArgs);
    }
    return results;
  }

  /**
   * The command of publish.lua or announce.lua for `channels` channels, and what its arguments start with:
   * on a Cluster one command per channel count (routed by its first key), on a standalone Redis one command
   * whose first argument is the key count.
   */
  private shardCommand(kind: 'publish' | 'announce', channels: number): { name: `sb${string}`; head: number[] } {
    return this.isCluster() ? { name: shardScript(kind, channels), head: [] } : { name: STANDALONE_SCRIPT[kind], head: [SCRIPT_KEYS[kind](channels)] };
  }

  onDeliver(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  onGap(handler: (gap: BusGap) => void): void {
    this.gapHandler = handler;
  }

  async subscribe(channel: string): Promise<void> {
    this.assertOpen();
    assertChannel(channel);
    const s = this.shard(channel);
    let set = this.channelsByShard.get(s);
    if (!set) this.channelsByShard.set(s, (set = new Set()));
    set.add(channel);
    this.interest.add(channel);
    if (this.laneOfShard.has(s)) return;
    let pending = this.pendingShard.get(s);
    if (!pending) {
      pending = this.startReading(s).finally(() => this.pendingShard.delete(s));
      this.pendingShard.set(s, pending);
    }
    try {
      await pending;
    } catch (err) {
      this.metrics.errors.inc({ op: 'interest' });
      await this.unsubscribe(channel);
      throw err;
    }
  }

  unsubscribe(channel: string): Promise<void> {
    if (!this.interest.delete(channel)) return Promise.resolve();
    const s = this.shard(channel);
    const set = this.channelsByShard.get(s);
    set?.delete(channel);
    if (set && set.size === 0) {
      this.channelsByShard.delete(s);
      this.stopReading(s);
    }
    return Promise.resolve();
  }

  async position(channel: string): Promise<StreamPosition> {
    this.assertOpen();
    assertChannel(channel);
    const s = this.shard(channel);
    try {
      const [epoch, offset] = await this.main.sbPosition(keys.meta(s, channel), keys.history(s, channel), this.options.historyTtlSec);
      return { epoch: String(epoch), offset: Number(offset) };
    } catch (err) {
      this.metrics.errors.inc({ op: 'position' });
      throw err;
    }
  }

  async abandonEpoch(channel: string, epoch: string): Promise<StreamPosition> {
    this.assertOpen();
    assertChannel(channel);
    const s = this.shard(channel);
    try {
      const [e, offset] = await this.main.sbAbandonEpoch(keys.meta(s, channel), keys.history(s, channel), epoch, this.options.historyTtlSec);
      return { epoch: String(e), offset: Number(offset) };
    } catch (err) {
      this.metrics.errors.inc({ op: 'position' });
      throw err;
    }
  }

  async history(channel: string, since: StreamPosition, limit?: number): Promise<HistoryResult> {
    this.assertOpen();
    assertChannel(channel);
    const s = this.shard(channel);
    let reply;
    try {
      reply = await this.main.sbHistoryBuffer(
        keys.meta(s, channel),
        keys.history(s, channel),
        since.epoch,
        since.offset,
        limit !== undefined ? String(limit) : this.historyLimit,
        this.options.historyTtlSec,
      );
    } catch (err) {
      this.metrics.errors.inc({ op: 'history' });
      throw err;
    }
    const [epochBuf, top, recovered, entries] = reply;
    const epoch = epochBuf.toString();
    const position = { epoch, offset: Number(top) };
    if (Number(recovered) !== 1) return { recovered: false, messages: [], position };
    const messages = historyMessages(channel, epoch, since.offset, position.offset, entries);
    return messages ? { recovered: true, messages, position } : { recovered: false, messages: [], position };
  }

  /**
   * Whether every master this bus writes to answered a check within the last {@link HEALTH_STALE_MS}:
   * a Redis that stops answering (a blackholed link keeps the socket "ready") turns it false within a
   * second, and it turns true again with the first answer.
   */
  ready(): boolean {
    return !this.closed && this.main.status === 'ready' && Date.now() - this.lastHealthyMs <= HEALTH_STALE_MS;
  }

  private async checkHealth(): Promise<void> {
    if (this.closed) return;
    try {
      const masters = this.isCluster() ? (this.main as unknown as Cluster).nodes('master') : [this.main as Redis];
      if (masters.length === 0) return;
      await Promise.all(masters.map((m) => m.ping()));
      this.lastHealthyMs = Date.now();
    } catch {
      // Not healthy: ready() turns false once the last success is older than HEALTH_STALE_MS; the
      // failure itself is counted and logged by the connection's error watcher and the commands that fail.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.healthTimer);
    for (const lane of this.lanes.values()) lane.stop();
    this.lanes.clear();
    this.laneOfShard.clear();
    this.metrics.shardsRead.set(0);
    try {
      await this.main.quit();
    } catch {
      this.main.disconnect();
    }
  }

  /** Shards this node reads (for tests and the admin view). */
  shardsRead(): number[] {
    return [...this.laneOfShard.keys()].sort((a, b) => a - b);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('bus closed');
  }

  private isCluster(): boolean {
    return this.options.target.cluster;
  }

  /** Finds where the shard's feed ends now and adds the shard to a lane from there. */
  private async startReading(shard: number): Promise<void> {
    const last = (await this.main.xrevrange(keys.feed(shard), '+', '-', 'COUNT', 1)) as [string, string[]][];
    const startId = last[0]?.[0] ?? '0-0';
    if (this.closed || !this.channelsByShard.has(shard) || this.laneOfShard.has(shard)) return;
    const lane = this.isCluster() ? await this.clusterLane(shard) : this.standaloneLane();
    if (this.closed || !this.channelsByShard.has(shard)) return;
    lane.add(shard, startId);
    this.laneOfShard.set(shard, lane);
    this.metrics.shardsRead.set(this.laneOfShard.size);
  }

  private stopReading(shard: number): void {
    const lane = this.laneOfShard.get(shard);
    if (!lane) return;
    this.laneOfShard.delete(shard);
    this.metrics.shardsRead.set(this.laneOfShard.size);
    if (this.isCluster()) {
      this.lanes.delete(lane.name);
      lane.stop();
    } else lane.remove(shard);
  }

  private readerOptions(name: string) {
    // A blocking connection: no auto-pipelining, a command timeout longer than the block, and no
    // silent re-send of a pending XREAD after a reconnect — the loop must see that it was away.
    return {
      ...failFastOptions(name, this.options.blockMs + 2000),
      enableAutoPipelining: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 0,
    };
  }

  private standaloneLane(): Lane {
    let lane = this.lanes.get('all');
    if (!lane) {
      const conn = new Redis(this.options.target.url, this.readerOptions(`sb:${this.options.nodeId}:read`));
      watchRedisErrors(conn, 'bus-read', this.log, this.connectionErrors);
      lane = new Lane(this.laneHost, conn, 'all');
      this.lanes.set('all', lane);
      lane.start();
    }
    return lane;
  }

  private slotOwner(shard: number): { host: string; port: number } {
    const cluster = this.main as unknown as Cluster;
    const nodeKey = cluster.slots[calculateSlot(keys.feed(shard))]?.[0];
    if (!nodeKey) throw new Error(`no master known for shard ${shard}`);
    const i = nodeKey.lastIndexOf(':');
    return { host: nodeKey.slice(0, i), port: Number(nodeKey.slice(i + 1)) };
  }

  private clusterConnection(shard: number): Redis {
    const { host, port } = this.slotOwner(shard);
    const u = new URL(this.options.target.url);
    const conn = new Redis({
      host,
      port,
      ...this.readerOptions(`sb:${this.options.nodeId}:read:${shard}`),
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    });
    watchRedisErrors(conn, 'bus-read', this.log, this.connectionErrors);
    return conn;
  }

  private async clusterLane(shard: number): Promise<Lane> {
    const name = `shard-${shard}`;
    let lane = this.lanes.get(name);
    if (lane) return lane;
    const cluster = this.main as unknown as Cluster;
    if (!cluster.slots[calculateSlot(keys.feed(shard))]) await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
    lane = new Lane(this.laneHost, this.clusterConnection(shard), name);
    this.lanes.set(name, lane);
    lane.start();
    return lane;
  }

  /** After a read error on a cluster lane: follow the slot if it moved to another master. */
  private async maybeMoveLane(lane: Lane): Promise<void> {
    if (!this.isCluster() || this.closed) return;
    const shard = [...lane.shards.keys()][0];
    if (shard === undefined) return;
    try {
      await new Promise<void>((resolve) => (this.main as unknown as Cluster).refreshSlotsCache(() => resolve()));
      const { host, port } = this.slotOwner(shard);
      const opts = lane.connection.options;
      if (opts.host !== host || opts.port !== port) {
        this.log.info({ shard, host, port }, 'shard moved; following it');
        lane.replaceConnection(this.clusterConnection(shard));
      }
    } catch (err) {
      this.log.warn({ err, shard }, 'cannot refresh cluster slots');
    }
  }

  /** Wakes a blocked XREAD so its loop picks up a new read set. */
  private unblock(clientId: number): void {
    this.main.client('UNBLOCK', clientId).catch(() => {
      // The reader may be gone or reconnecting: it re-reads its set on its next iteration anyway.
    });
  }

  /**
   * After a read error: a feed whose entries past our position were trimmed, or that Redis
   * lost (restarted empty), may have lost messages for this node. Report them as gaps.
   */
  async checkGaps(shards: readonly number[], positions: ReadonlyMap<number, string>): Promise<void> {
    for (const shard of shards) {
      const lastId = positions.get(shard);
      if (lastId === undefined) continue;
      let reason: string | null = null;
      try {
        const info = (await this.main.xinfo('STREAM', keys.feed(shard))) as unknown[];
        const field = (name: string) => info[info.indexOf(name) + 1];
        const length = Number(field('length'));
        const lastGenerated = field('last-generated-id') as string;
        const maxDeleted = (field('max-deleted-entry-id') as string | undefined) ?? '0-0';
        const first = (field('first-entry') as [string, unknown] | null)?.[0];
        if (compareStreamIds(lastGenerated, lastId) < 0) reason = 'feed restarted behind our position';
        else if (compareStreamIds(maxDeleted, lastId) > 0) reason = `entries deleted past ${lastId}`;
        else if (compareStreamIds(lastGenerated, lastId) > 0 && (length === 0 || (first !== undefined && compareStreamIds(first, lastId) > 0)))
          // Entries were added after our position and the feed no longer starts at or before it: some
          // of them may have been trimmed (MAXLEN trims do not move max-deleted-entry-id). A false
          // alarm costs the hub one empty history read per channel.
          reason = `feed trimmed past ${lastId}`;
      } catch (err) {
        if (!(err instanceof Error && /no such key/i.test(err.message))) throw err;
        if (lastId !== '0-0') reason = 'feed lost (Redis restarted without it)';
      }
      if (reason !== null) {
        this.metrics.gaps.inc();
        const channels = [...(this.channelsByShard.get(shard) ?? [])];
        this.log.warn({ shard, reason, channels: channels.length }, 'feed gap');
        if (channels.length > 0) this.gapHandler({ channels, reason });
      }
    }
  }

  /**
   * Turns an XREAD reply into envelopes of interested channels, in order, and delivers them. An entry is
   * one message (fields c, o, e, p, w as append_message writes them; 8 without the write id) or a run of
   * a channel's consecutive messages from one script run (c, o, e, w, then p per message: run_flush).
   */
  private ingest(lane: Lane, reply: [Buffer, [Buffer, Buffer[]][]][]): void {
    const batch: Envelope[] = [];
    let skipped = 0;
    let oldestTs = Number.POSITIVE_INFINITY;
    for (const [keyBuf, entries] of reply) {
      const key = keyBuf.toString();
      const shard = Number(key.slice(key.indexOf('{') + 1, key.indexOf('}')));
      let lastId: string | null = null;
      for (const [idBuf, f] of entries) {
        lastId = idBuf.toString();
        const run = f.length >= 10 && isField(f[6]!, 0x77);
        if (!run && f.length !== 10 && f.length !== 8) {
          skipped++;
          continue;
        }
        const channel = f[1]!.toString();
        if (!this.interest.has(channel)) {
          skipped += run ? (f.length - 8) >> 1 : 1;
          continue;
        }
        const offset = Number(f[3]!.toString());
        const epoch = f[5]!.toString();
        if (!Number.isSafeInteger(offset) || offset < 0 || epoch.length === 0 || epoch.length > 64) {
          skipped += run ? (f.length - 8) >> 1 : 1;
          this.log.warn({ shard, id: lastId }, 'unreadable feed entry skipped');
          continue;
        }
        if (!run) {
          const payload = decodePayload(f[7]!);
          if (!payload) {
            skipped++;
            this.log.warn({ shard, id: lastId }, 'unreadable feed entry skipped');
            continue;
          }
          if (payload.ts < oldestTs) oldestTs = payload.ts;
          batch.push(
            f.length === 10
              ? { channel, offset, epoch, ts: payload.ts, attrs: payload.attrs, data: payload.data, writeId: f[9]!.toString() }
              : { channel, offset, epoch, ts: payload.ts, attrs: payload.attrs, data: payload.data },
          );
          continue;
        }
        // A run: write ids <stamp>-<index + i>, payloads at 9, 11, …; an entry not laid out so is not ours.
        const first = splitWriteId(f[7]!.toString());
        if (first === null || !runMarkersOk(f)) {
          skipped += (f.length - 8) >> 1;
          this.log.warn({ shard, id: lastId }, 'unreadable feed entry skipped');
          continue;
        }
        for (let i = 0, p = 9; p < f.length; i++, p += 2) {
          const payload = decodePayload(f[p]!);
          // A message we cannot read is skipped alone: the hub repairs the hole from the history.
          if (!payload) {
            skipped++;
            this.log.warn({ shard, id: lastId, offset: offset + i }, 'unreadable message of a feed entry skipped');
            continue;
          }
          if (payload.ts < oldestTs) oldestTs = payload.ts;
          batch.push({ channel, offset: offset + i, epoch, ts: payload.ts, attrs: payload.attrs, data: payload.data, writeId: `${first.stamp}-${first.index + i}` });
        }
      }
      if (lastId !== null && lane.shards.has(shard)) lane.shards.set(shard, lastId);
    }
    if (skipped > 0) this.metrics.skipped.inc(skipped);
    if (batch.length === 0) return;
    this.metrics.read.inc(batch.length);
    this.metrics.readLag.observe(Math.max(0, wallClockMs() - oldestTs) / 1000);
    this.handler(batch);
  }
}
