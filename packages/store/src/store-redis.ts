/**
 * The ObjectStore in Redis. Every write is ONE Lua script (lua/create.lua, merge.lua, remove.lua) that
 * checks versions, appends the change event to the channel exactly as the bus's publish.lua does, and
 * writes the object, atomically; a RedisStreamsBus reading the shard feed delivers the event like any
 * publish.
 *
 * Keys of a (tenant, type) channel share the channel's hash tag `{s}` (s = shardOf(channel, shards),
 * the bus's shard function and count), so each script touches one Redis Cluster slot:
 * - `sb:{s}:meta:<channel>`, `sb:{s}:h:<channel>`, `sb:{s}:feed`: the bus's keys (event);
 * - `sb:{s}:obj:<channel>:<id>`: the object, a hash (`v` = "a,b,…"; JSON name → JSON value);
 * - `sb:{s}:ids:<channel>`: sorted set of the ids (member = score = id), for queries;
 * - `sb:{s}:seq:<channel>`: last id allocated (never reset by a remove);
 * - `sb:{s}:ix:<channel>|<field>|<JSON value>`: sorted set of the ids whose indexed field has the value.
 *
 * Who builds the event: the script, because `data` is the object AFTER the merge, which only Redis
 * knows without a read-modify-write round trip. The JS side serialises every field value (and name)
 * with JSON.stringify, so the script builds the object text by concatenation and never parses JSON.
 * The payload is the bus codec's `[ts, attrs, data]` msgpack array: `ts` is encoded in JS by the bus
 * codec itself (`encodeTs`), attrs and data by the script's cmsgpack (strings, booleans, a uint32 id),
 * which msgpackr decodes to the same values.
 */
import { readFileSync } from 'node:fs';
import { Counter, Histogram, Registry } from 'prom-client';
import { channelNameError, LATENCY_BUCKETS_SEC, wallClockMs, type Logger } from '@switchboard/core';
import {
  busLuaPrelude,
  connectRedis,
  encodePayload,
  keys as busKeys,
  shardOf,
  waitReady,
  type HistoryOptions,
  type RedisClient,
  type RedisTarget,
} from '@switchboard/bus';
import {
  assembleObject,
  compileTypes,
  isValidId,
  parseObject,
  prepareQuery,
  prepareWrite,
  refuse,
  resolveLimits,
  validExpectV,
  type CompiledType,
  type PreparedWrite,
} from './model.js';
import type {
  GetResult,
  MergeOptions,
  ObjectStore,
  ObjectStoreOptions,
  Query,
  QueryResult,
  RemoveOptions,
  RemoveResult,
  StoreLimits,
  StoreRefusal,
  WriteResult,
} from './store.js';

/** Options of {@link RedisObjectStore}: the bus's shard count, history and feed settings, so events land where the bus reads. */
export interface RedisObjectStoreOptions extends ObjectStoreOptions, HistoryOptions {
  readonly target: RedisTarget;
  /** Number of shards (S): the same value as the bus's. */
  readonly shards: number;
  /** Approximate entries kept per shard feed: the same value as the bus's. */
  readonly feedMaxLen: number;
  readonly logger: Logger;
  /** Where the store metrics go (a private registry when absent). */
  readonly registry?: Registry;
  /** Names this node's connection (`CLIENT LIST`). */
  readonly nodeId: string;
}

/** The Redis keys of the store, beside the bus's (`keys` of `@switchboard/bus`). */
export const storeKeys = {
  objectPrefix: (s: number, channel: string) => `sb:{${s}}:obj:${channel}:`,
  object: (s: number, channel: string, id: number) => `sb:{${s}}:obj:${channel}:${id}`,
  ids: (s: number, channel: string) => `sb:{${s}}:ids:${channel}`,
  seq: (s: number, channel: string) => `sb:{${s}}:seq:${channel}`,
  /** Channel names never hold `|`, and indexed field names neither, so index keys cannot collide. */
  indexPrefix: (s: number, channel: string) => `sb:{${s}}:ix:${channel}`,
  index: (s: number, channel: string, field: string, valueJson: string) => `sb:{${s}}:ix:${channel}|${field}|${valueJson}`,
};

/** Bytes the bus codec writes after the ts of `[ts, {}, ""]` (an empty map, however it encodes one, and ""). */
const EMPTY_TAIL_BYTES = encodePayload({ ts: 0, attrs: {}, data: '' }).length - 2;

/**
 * The msgpack bytes of a timestamp exactly as the bus codec writes them inside a payload: the payload
 * `[ts, {}, ""]` is the array header (one byte), the ts, then a tail that does not depend on the ts
 * (measured once with ts 0, which is one byte), so the ts is what lies between.
 */
export function encodeTs(ts: number): Buffer {
  const full = encodePayload({ ts, attrs: {}, data: '' });
  return full.subarray(1, full.length - EMPTY_TAIL_BYTES);
}

const SCRIPTS = {
  sbStoreCreate: { keys: 5, file: 'create.lua' },
  sbStoreMerge: { keys: 6, file: 'merge.lua' },
  sbStoreRemove: { keys: 6, file: 'remove.lua' },
  sbStoreQuery: { keys: 1, file: 'query.lua' },
} as const;

type Arg = string | Buffer | number;
type Reply = [string, ...(string | number)[]];
type ScriptClient = RedisClient & {
  sbStoreCreate(...args: Arg[]): Promise<Reply>;
  sbStoreMerge(...args: Arg[]): Promise<Reply>;
  sbStoreRemove(...args: Arg[]): Promise<Reply>;
  sbStoreQuery(...args: Arg[]): Promise<string[]>;
};

type Op = 'get' | 'create' | 'merge' | 'remove' | 'query';

/** Every store of a process (one per dialect that keeps objects) counts into the same series. */
const metricsOf = new WeakMap<Registry, StoreMetrics>();

class StoreMetrics {
  /** The store metrics of a registry, created once. */
  static of(registry: Registry): StoreMetrics {
    let m = metricsOf.get(registry);
    if (!m) metricsOf.set(registry, (m = new StoreMetrics(registry)));
    return m;
  }

  readonly calls: Counter<'op' | 'outcome'>;
  readonly seconds: Histogram<'op'>;
  readonly errors: Counter<'op'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.calls = new Counter({
      name: 'switchboard_store_calls_total',
      help: 'Object store calls by operation and outcome (ok, or the refusal code).',
      labelNames: ['op', 'outcome'],
      registers,
    });
    this.seconds = new Histogram({
      name: 'switchboard_store_call_seconds',
      help: 'Object store call latency through Redis, by operation.',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    });
    this.errors = new Counter({
      name: 'switchboard_store_redis_errors_total',
      help: 'Object store calls that failed in Redis (unreachable, timeout, script error), by operation.',
      labelNames: ['op'],
      registers,
    });
  }
}

interface Scope {
  readonly t: CompiledType;
  readonly channel: string;
  readonly shard: number;
}

/** The Redis implementation of {@link ObjectStore}. */
export class RedisObjectStore implements ObjectStore {
  readonly metrics: StoreMetrics;
  private readonly log: Logger;
  private readonly limits: StoreLimits;
  private closed = false;

  private constructor(
    readonly options: RedisObjectStoreOptions,
    private readonly client: ScriptClient,
    private readonly types: ReadonlyMap<string, CompiledType>,
  ) {
    this.log = options.logger.child({ component: 'store' });
    this.metrics = StoreMetrics.of(options.registry ?? new Registry());
    this.limits = resolveLimits(options.limits);
    client.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis connection error'));
  }

  /** Connects (failing fast when Redis is unreachable) and loads the scripts. Throws on a bad type spec. */
  static async connect(options: RedisObjectStoreOptions): Promise<RedisObjectStore> {
    const types = compileTypes(options);
    const client = connectRedis(options.target, `sb:${options.nodeId}:store`) as ScriptClient;
    client.on('error', () => {});
    const lua = (file: string) => readFileSync(new URL(`../lua/${file}`, import.meta.url), 'utf8');
    const prelude = `${busLuaPrelude()}\n${lua('prelude.lua')}`;
    for (const [name, spec] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: spec.keys, lua: `${prelude}\n${lua(spec.file)}` });
    try {
      await waitReady(client);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return new RedisObjectStore(options, client, types);
  }

  channel(tenant: string, type: string): string {
    const channel = this.options.channel(tenant, type);
    const bad = channelNameError(channel);
    if (bad) throw bad;
    return channel;
  }

  async get(tenant: string, type: string, id: number): Promise<GetResult> {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return this.count('get', scope);
    if (!isValidId(id)) return this.count('get', notFound(type, id));
    const flat = await this.call('get', () => this.client.hgetall(storeKeys.object(scope.shard, scope.channel, id)));
    let v: number[] | null = null;
    const fields: [string, string][] = [];
    for (const [k, text] of Object.entries(flat)) {
      if (k === 'v') v = text.split(',').map(Number);
      else fields.push([k, text]);
    }
    if (!v) return this.count('get', notFound(type, id));
    return this.count('get', { ok: true, object: parseObject(assembleObject(id, v, fields)) });
  }

  async create(tenant: string, type: string, fields: Readonly<Record<string, unknown>>): Promise<WriteResult> {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return this.count('create', scope);
    const prep = prepareWrite(scope.t, this.limits, fields, undefined, 'create');
    if ('ok' in prep) return this.count('create', prep);
    const { parts } = scope.t;
    const reply = await this.call('create', () =>
      this.client.sbStoreCreate(...this.writeKeys(scope), ...this.writeArgs(scope, '', '-', parts.map(() => true), prep)),
    );
    return this.count('create', this.written(reply, type, 0, parts));
  }

  async merge(
    tenant: string,
    type: string,
    id: number,
    patch: Readonly<Record<string, unknown>>,
    options: MergeOptions = {},
  ): Promise<WriteResult> {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return this.count('merge', scope);
    const prep = prepareWrite(scope.t, this.limits, patch, options.unset, 'merge');
    if ('ok' in prep) return this.count('merge', prep);
    if (options.expectV !== undefined && !validExpectV(options.expectV))
      return this.count('merge', refuse('invalid_object', '`v` must be a list of non-negative integers'));
    if (!isValidId(id)) return this.count('merge', notFound(type, id));
    const expect = options.expectV === undefined ? '-' : options.expectV.join(',');
    const reply = await this.call('merge', () =>
      this.client.sbStoreMerge(
        ...this.writeKeys(scope),
        storeKeys.object(scope.shard, scope.channel, id),
        ...this.writeArgs(scope, String(id), expect, prep.touched, prep),
      ),
    );
    return this.count('merge', this.written(reply, type, id, scope.t.parts.filter((_, i) => prep.touched[i])));
  }

  async remove(tenant: string, type: string, id: number, options: RemoveOptions = {}): Promise<RemoveResult> {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return this.count('remove', scope);
    if (options.expectV !== undefined && !validExpectV(options.expectV))
      return this.count('remove', refuse('invalid_object', '`v` must be a list of non-negative integers'));
    if (!isValidId(id)) return this.count('remove', notFound(type, id));
    const expect = options.expectV === undefined ? '-' : options.expectV.join(',');
    const none: PreparedWrite = { sets: [], unsets: [], touched: scope.t.parts.map(() => true) };
    const reply = await this.call('remove', () =>
      this.client.sbStoreRemove(
        ...this.writeKeys(scope),
        storeKeys.object(scope.shard, scope.channel, id),
        ...this.writeArgs(scope, String(id), expect, none.touched, none),
      ),
    );
    const res = this.written(reply, type, id, scope.t.parts);
    if (!res.ok) return this.count('remove', res);
    const { object, data, position } = res;
    return this.count('remove', { ok: true, object, data, position });
  }

  async query(tenant: string, type: string, query?: Query): Promise<QueryResult> {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return this.count('query', scope);
    const q = prepareQuery(scope.t, this.limits, query);
    if ('ok' in q) return this.count('query', q);
    if (q.nothing) return this.count('query', { ok: true, objects: [], nextAfterId: null });
    const { shard, channel } = scope;
    const source = q.source ? storeKeys.index(shard, channel, q.source.field, q.source.text) : storeKeys.ids(shard, channel);
    const conds = q.conds.flatMap(([k, text]) => [k, text]);
    const reply = await this.call('query', () =>
      this.client.sbStoreQuery(source, q.afterId, q.limit, this.limits.maxQueryScan, storeKeys.objectPrefix(shard, channel), q.conds.length, ...conds),
    );
    const [next, ...texts] = reply;
    return this.count('query', { ok: true, objects: texts.map(parseObject), nextAfterId: next ? Number(next) : null });
  }

  ready(): boolean {
    return !this.closed && this.client.status === 'ready';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      // Already disconnected: nothing left to release.
      this.client.disconnect();
    }
  }

  private scope(tenant: string, type: string): Scope | StoreRefusal {
    if (this.closed) throw new Error('store closed');
    const t = this.types.get(type);
    if (!t) return refuse('unknown_type', `no object type "${type.slice(0, 64)}"`);
    const channel = this.channel(tenant, type);
    return { t, channel, shard: shardOf(channel, this.options.shards) };
  }

  private writeKeys({ channel, shard }: Scope): string[] {
    return [busKeys.meta(shard, channel), busKeys.history(shard, channel), busKeys.feed(shard), storeKeys.ids(shard, channel), storeKeys.seq(shard, channel)];
  }

  /** ARGV of the write scripts (see sb_args in lua/prelude.lua). */
  private writeArgs({ t, channel, shard }: Scope, id: string, expect: string, touched: readonly boolean[], prep: PreparedWrite): Arg[] {
    const o = this.options;
    const args: Arg[] = [
      channel,
      o.historySize,
      o.historyTtlSec,
      o.feedMaxLen,
      encodeTs(wallClockMs()),
      this.limits.maxObjectBytes,
      id,
      expect,
      t.parts.join(','),
      touched.map((b) => (b ? '1' : '0')).join(''),
      storeKeys.objectPrefix(shard, channel),
      storeKeys.indexPrefix(shard, channel),
      t.indexed.length,
    ];
    for (const f of t.indexed) args.push(JSON.stringify(f), f);
    args.push(prep.sets.length);
    for (const [k, text] of prep.sets) args.push(k, text);
    args.push(prep.unsets.length, ...prep.unsets);
    return args;
  }

  /** Turns a write script's reply into the answer. */
  private written(reply: Reply, type: string, id: number, changedParts: readonly string[]): WriteResult {
    const [status, a, b, c] = reply;
    switch (status) {
      case 'ok': {
        const data = String(a);
        return { ok: true, object: parseObject(data), data, changedParts, position: { epoch: String(b), offset: Number(c) } };
      }
      case 'not_found':
        return notFound(type, id);
      case 'version_conflict': {
        const current = parseObject(String(a));
        return { ok: false, code: 'version_conflict', message: `the object's v is ${current.v.join(',')}`, current };
      }
      case 'too_large':
        return refuse('too_large', `the object would be larger than ${this.limits.maxObjectBytes} bytes`);
      case 'ids_exhausted':
        return refuse('ids_exhausted', `${type} has used every id`);
      default:
        throw new Error(`unexpected store script reply ${String(status)}`);
    }
  }

  private async call<T>(op: Op, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } catch (err) {
      this.metrics.errors.inc({ op });
      throw err;
    } finally {
      this.metrics.seconds.observe({ op }, (performance.now() - t0) / 1000);
    }
  }

  private count<T extends { ok: boolean; code?: string }>(op: Op, res: T): T {
    this.metrics.calls.inc({ op, outcome: res.ok ? 'ok' : (res.code ?? 'refused') });
    return res;
  }
}

function notFound(type: string, id: unknown): StoreRefusal {
  return refuse('not_found', `no ${type.slice(0, 64)} ${String(id).slice(0, 32)}`);
}
