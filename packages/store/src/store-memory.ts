/**
 * The ObjectStore in process memory, publishing through a {@link MemoryBroker}: a write and its change
 * event happen in one synchronous step (validate, build the event, `broker.append`, store), so no
 * other code runs between them and every MemoryBus node of the broker receives the event like any
 * publish. `switchboard start` without `REDIS_URL` uses it; it is also the reference the contract
 * suite holds the Redis store to.
 */
import { channelNameError } from '@switchboard/core';
import type { MemoryBroker } from '@switchboard/bus';
import {
  assembleObject,
  compileTypes,
  eventAttrs,
  isValidId,
  MAX_ID,
  parseObject,
  prepareQuery,
  prepareWrite,
  refuse,
  resolveLimits,
  validExpectV,
  versionsMatch,
  type CompiledType,
  type PreparedQuery,
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
  StoredObject,
  WriteResult,
} from './store.js';

interface MemObject {
  readonly v: readonly number[];
  /** JSON name → JSON value, in the object's field order. */
  readonly fields: ReadonlyMap<string, string>;
}

interface MemChannel {
  /** Last id allocated. */
  seq: number;
  /** By id; ids only grow, so insertion order is ascending id order. */
  readonly objects: Map<number, MemObject>;
}

/** Resolved (tenant, type): the compiled type and its channel. */
interface Scope {
  readonly t: CompiledType;
  readonly channel: string;
}

/**
 * Runs a prepared query over candidates in ascending id order: examines at most `maxScan`, returns at
 * most `limit`, and says where to go on. Mirrors query.lua.
 */
function runQuery(
  candidates: readonly number[],
  objects: ReadonlyMap<number, MemObject>,
  q: PreparedQuery,
  maxScan: number,
): { objects: StoredObject[]; nextAfterId: number | null } {
  const out: StoredObject[] = [];
  const examined = Math.min(candidates.length, maxScan);
  for (let i = 0; i < examined; i++) {
    const id = candidates[i]!;
    const o = objects.get(id);
    if (!o) continue;
    if (!q.conds.every(([key, text]) => o.fields.get(key) === text)) continue;
    out.push(parseObject(assembleObject(id, o.v, o.fields)));
    if (out.length === q.limit) return { objects: out, nextAfterId: i < candidates.length - 1 ? id : null };
  }
  return { objects: out, nextAfterId: candidates.length > maxScan ? candidates[maxScan - 1]! : null };
}

/** The memory implementation of {@link ObjectStore}. */
export class MemoryObjectStore implements ObjectStore {
  private readonly types: Map<string, CompiledType>;
  private readonly limits: StoreLimits;
  private readonly channels = new Map<string, MemChannel>();
  private closed = false;

  constructor(
    private readonly broker: MemoryBroker,
    private readonly options: ObjectStoreOptions,
  ) {
    this.types = compileTypes(options);
    this.limits = resolveLimits(options.limits);
  }

  channel(tenant: string, type: string): string {
    const channel = this.options.channel(tenant, type);
    const bad = channelNameError(channel);
    if (bad) throw bad;
    return channel;
  }

  get(tenant: string, type: string, id: number): Promise<GetResult> {
    return settle(() => this.getNow(tenant, type, id));
  }

  create(tenant: string, type: string, fields: Readonly<Record<string, unknown>>): Promise<WriteResult> {
    return settle(() => this.createNow(tenant, type, fields));
  }

  merge(
    tenant: string,
    type: string,
    id: number,
    patch: Readonly<Record<string, unknown>>,
    options: MergeOptions = {},
  ): Promise<WriteResult> {
    return settle(() => this.mergeNow(tenant, type, id, patch, options));
  }

  remove(tenant: string, type: string, id: number, options: RemoveOptions = {}): Promise<RemoveResult> {
    return settle(() => this.removeNow(tenant, type, id, options));
  }

  query(tenant: string, type: string, query?: Query): Promise<QueryResult> {
    return settle(() => this.queryNow(tenant, type, query));
  }

  ready(): boolean {
    return !this.closed;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private getNow(tenant: string, type: string, id: number): GetResult {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return scope;
    const o = isValidId(id) ? this.state(scope.channel).objects.get(id) : undefined;
    if (!o) return notFound(type, id);
    return { ok: true, object: parseObject(assembleObject(id, o.v, o.fields)) };
  }

  private createNow(tenant: string, type: string, fields: Readonly<Record<string, unknown>>): WriteResult {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return scope;
    const { t, channel } = scope;
    const prep = prepareWrite(t, this.limits, fields, undefined, 'create');
    if ('ok' in prep) return prep;
    const st = this.state(channel);
    const id = st.seq + 1;
    if (id > MAX_ID) return refuse('ids_exhausted', `${type} has used every id`);
    const v = t.parts.map(() => 1);
    const after = new Map(prep.sets);
    const data = assembleObject(id, v, after);
    if (Buffer.byteLength(data) > this.limits.maxObjectBytes) return tooLarge(this.limits);
    const all = t.parts.map(() => true);
    const env = this.broker.append({ channel, attrs: eventAttrs('create', id, t, all, null, after), data });
    st.seq = id;
    st.objects.set(id, { v, fields: after });
    return { ok: true, object: parseObject(data), data, changedParts: t.parts, position: { epoch: env.epoch, offset: env.offset } };
  }

  private mergeNow(tenant: string, type: string, id: number, patch: Readonly<Record<string, unknown>>, options: MergeOptions): WriteResult {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return scope;
    const { t, channel } = scope;
    const prep = prepareWrite(t, this.limits, patch, options.unset, 'merge');
    if ('ok' in prep) return prep;
    if (options.expectV !== undefined && !validExpectV(options.expectV))
      return refuse('invalid_object', '`v` must be a list of non-negative integers');
    const st = this.state(channel);
    const o = isValidId(id) ? st.objects.get(id) : undefined;
    if (!o) return notFound(type, id);
    if (options.expectV !== undefined && !versionsMatch(o.v, options.expectV, prep.touched))
      return conflict(id, o);
    const after = new Map(o.fields);
    for (const [key, text] of prep.sets) after.set(key, text);
    for (const key of prep.unsets) after.delete(key);
    const v = o.v.map((n, i) => (prep.touched[i] ? n + 1 : n));
    const data = assembleObject(id, v, after);
    if (Buffer.byteLength(data) > this.limits.maxObjectBytes) return tooLarge(this.limits);
    const env = this.broker.append({ channel, attrs: eventAttrs('merge', id, t, prep.touched, o.fields, after), data });
    st.objects.set(id, { v, fields: after });
    return {
      ok: true,
      object: parseObject(data),
      data,
      changedParts: t.parts.filter((_, i) => prep.touched[i]),
      position: { epoch: env.epoch, offset: env.offset },
    };
  }

  private removeNow(tenant: string, type: string, id: number, options: RemoveOptions): RemoveResult {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return scope;
    const { t, channel } = scope;
    if (options.expectV !== undefined && !validExpectV(options.expectV))
      return refuse('invalid_object', '`v` must be a list of non-negative integers');
    const st = this.state(channel);
    const o = isValidId(id) ? st.objects.get(id) : undefined;
    if (!o) return notFound(type, id);
    if (options.expectV !== undefined && !versionsMatch(o.v, options.expectV)) return conflict(id, o);
    const data = assembleObject(id, o.v, o.fields);
    const all = t.parts.map(() => true);
    const env = this.broker.append({ channel, attrs: eventAttrs('remove', id, t, all, o.fields, null), data });
    st.objects.delete(id);
    return { ok: true, object: parseObject(data), data, position: { epoch: env.epoch, offset: env.offset } };
  }

  private queryNow(tenant: string, type: string, query: Query | undefined): QueryResult {
    const scope = this.scope(tenant, type);
    if ('ok' in scope) return scope;
    const q = prepareQuery(scope.t, this.limits, query);
    if ('ok' in q) return q;
    if (q.nothing) return { ok: true, objects: [], nextAfterId: null };
    const { objects } = this.state(scope.channel);
    // The candidates Redis would take from the ids set or the source field's index: one more than the
    // scan bound, so the answer knows whether more remain.
    const sourceKey = q.source ? JSON.stringify(q.source.field) : null;
    const candidates: number[] = [];
    for (const [id, o] of objects) {
      if (id <= q.afterId) continue;
      if (sourceKey !== null && o.fields.get(sourceKey) !== q.source!.text) continue;
      candidates.push(id);
      if (candidates.length > this.limits.maxQueryScan) break;
    }
    return { ok: true, ...runQuery(candidates, objects, q, this.limits.maxQueryScan) };
  }

  /** The type and channel of a call, or the refusal for an unknown type. Throws once closed or for a bad channel. */
  private scope(tenant: string, type: string): Scope | StoreRefusal {
    if (this.closed) throw new Error('store closed');
    const t = this.types.get(type);
    if (!t) return refuse('unknown_type', `no object type "${type.slice(0, 64)}"`);
    return { t, channel: this.channel(tenant, type) };
  }

  private state(channel: string): MemChannel {
    let st = this.channels.get(channel);
    if (!st) this.channels.set(channel, (st = { seq: 0, objects: new Map() }));
    return st;
  }
}

/** Runs a synchronous step as a settled promise: a throw (a caller bug) becomes a rejection, as in the Redis store. */
function settle<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function notFound(type: string, id: unknown): StoreRefusal {
  return refuse('not_found', `no ${type.slice(0, 64)} ${String(id).slice(0, 32)}`);
}

function tooLarge(limits: StoreLimits): StoreRefusal {
  return refuse('too_large', `the object would be larger than ${limits.maxObjectBytes} bytes`);
}

function conflict(id: number, o: MemObject): StoreRefusal {
  return {
    ok: false,
    code: 'version_conflict',
    message: `the object's v is ${o.v.join(',')}`,
    current: parseObject(assembleObject(id, o.v, o.fields)),
  };
}
