/**
 * What both implementations share: type specs compiled once, validation of untrusted objects, patches
 * and queries, the stored form of fields, the JSON text of an object and the attrs of its change
 * event. The Redis scripts (lua/) mirror `assembleObject` and `eventAttrs` exactly; the contract
 * suite holds both to the same answers.
 *
 * Stored form: a field is kept as the pair (JSON text of its name, JSON text of its value), both made
 * by `JSON.stringify` here. The object's text is then a plain concatenation (`{"id":…,"v":[…],` then
 * `name:value` pairs), which Lua can build without parsing JSON.
 */
import { channelNameError, checkJsonValue, isPlainObject } from '@switchboard/core';
import {
  DEFAULT_STORE_LIMITS,
  type ObjectStoreOptions,
  type ObjectTypeSpec,
  type Query,
  type StoreErrorCode,
  type StoreLimits,
  type StoreRefusal,
  type StoredObject,
} from './store.js';

/** Ids are below 2^32: they travel in event attrs as msgpack uint32 (a uint64 would decode as BigInt). */
export const MAX_ID = 0xffff_ffff;

const PART_RE = /^[A-Za-z0-9_]{1,64}$/;
const INDEXED_RE = /^[A-Za-z0-9_-]{1,64}$/;
const RESERVED = new Set(['id', 'v']);
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Attr names of change events. */
export const ATTR = {
  op: 'op',
  id: 'id',
  /** `part.<name>: true` for each part the write changed. */
  part: (name: string) => `part.${name}`,
  /** `f.<field>`: JSON text of an indexed field after the write. */
  after: (field: string) => `f.${field}`,
  /** `was.<field>`: JSON text of an indexed field before the write. */
  before: (field: string) => `was.${field}`,
} as const;

/** A type spec checked and turned into lookup tables. */
export interface CompiledType {
  readonly name: string;
  readonly parts: readonly string[];
  /** Field name → part index. */
  readonly partOf: ReadonlyMap<string, number>;
  /** Part index of unlisted fields; -1: they are refused. */
  readonly defaultPart: number;
  readonly indexed: readonly string[];
  readonly indexedSet: ReadonlySet<string>;
}

/** Checks every type spec and the channel function; throws on a spec a dialect must fix. */
export function compileTypes(options: ObjectStoreOptions): Map<string, CompiledType> {
  const out = new Map<string, CompiledType>();
  const typeOf = new Map<string, string>();
  for (const [name, spec] of Object.entries(options.types)) {
    out.set(name, compileType(name, spec));
    const a = options.channel('tenant-a', name);
    const b = options.channel('tenant-b', name);
    const bad = channelNameError(a);
    if (bad) throw new Error(`type ${name}: the channel function gives an invalid name: ${bad.message}`);
    if (a === b) throw new Error(`type ${name}: the channel function must give each tenant its own channel`);
    const other = typeOf.get(a);
    if (other !== undefined) throw new Error(`types ${other} and ${name}: the channel function must give each type its own channel`);
    typeOf.set(a, name);
  }
  return out;
}

function compileType(name: string, spec: ObjectTypeSpec): CompiledType {
  const fail = (why: string): never => {
    throw new Error(`object type ${name}: ${why}`);
  };
  if (spec.parts.length === 0) fail('needs at least one part');
  const partIndex = new Map<string, number>();
  spec.parts.forEach((p, i) => {
    if (!PART_RE.test(p)) fail(`part name "${p}" must match ${PART_RE.source}`);
    if (partIndex.has(p)) fail(`part "${p}" listed twice`);
    partIndex.set(p, i);
  });
  const partOf = new Map<string, number>();
  for (const [part, fields] of Object.entries(spec.fields ?? {})) {
    const i = partIndex.get(part);
    if (i === undefined) fail(`fields listed for unknown part "${part}"`);
    for (const f of fields) {
      if (f === '' || RESERVED.has(f) || FORBIDDEN.has(f)) fail(`"${f}" cannot be a field`);
      if (partOf.has(f)) fail(`field "${f}" is in two parts`);
      partOf.set(f, i!);
    }
  }
  let defaultPart = -1;
  if (spec.defaultPart !== undefined) {
    defaultPart = partIndex.get(spec.defaultPart) ?? fail(`default part "${spec.defaultPart}" is not a part`);
  }
  const indexed = [...(spec.indexed ?? [])];
  for (const f of indexed) {
    if (!INDEXED_RE.test(f) || RESERVED.has(f) || FORBIDDEN.has(f)) fail(`indexed field "${f}" must match ${INDEXED_RE.source}`);
    if (!partOf.has(f) && defaultPart < 0) fail(`indexed field "${f}" belongs to no part`);
  }
  if (new Set(indexed).size !== indexed.length) fail('an indexed field is listed twice');
  return { name, parts: [...spec.parts], partOf, defaultPart, indexed, indexedSet: new Set(indexed) };
}

/** The limits with defaults filled in. */
export function resolveLimits(limits: Partial<StoreLimits> | undefined): StoreLimits {
  return { ...DEFAULT_STORE_LIMITS, ...limits };
}

/** A refusal without a current object. */
export function refuse(code: Exclude<StoreErrorCode, 'version_conflict'>, message: string): StoreRefusal {
  return { ok: false, code, message };
}

/** The part index of a field, or -1 when the type refuses it. */
export function partIndexOf(t: CompiledType, field: string): number {
  return t.partOf.get(field) ?? t.defaultPart;
}

/** True for an integer the store could have allocated as an id. */
export function isValidId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= MAX_ID;
}

/** Fields to write, in stored form, and the parts they touch. */
export interface PreparedWrite {
  /** (JSON text of the name, JSON text of the value), in patch order. */
  readonly sets: readonly (readonly [string, string])[];
  /** JSON texts of the names of fields to delete. */
  readonly unsets: readonly string[];
  /** Per part: whether this write touches it. */
  readonly touched: readonly boolean[];
}

const isScalar = (v: unknown): boolean => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * Validates untrusted fields (a create's object or a merge's patch) and puts them in stored form.
 * Refuses: non-objects, forbidden keys, nesting beyond `maxDepth`, `id`/`v`, fields of no part,
 * non-JSON values, indexed fields holding non-scalars or long texts, and a patch that alone exceeds
 * `maxObjectBytes` (the merged object is checked again where it is assembled).
 */
export function prepareWrite(
  t: CompiledType,
  limits: StoreLimits,
  fields: unknown,
  unset: unknown,
  what: 'create' | 'merge',
): PreparedWrite | StoreRefusal {
  if (!isPlainObject(fields)) return refuse('invalid_object', `${what} needs a JSON object`);
  const guard = checkJsonValue(fields, limits.maxDepth);
  if (guard) return refuse(guard.code === 'too_deep' ? 'too_deep' : 'forbidden_key', guard.message);
  const touched = t.parts.map(() => false);
  const sets: [string, string][] = [];
  let bytes = 0;
  for (const name of Object.keys(fields)) {
    if (RESERVED.has(name)) return refuse('invalid_object', `"${name}" is kept by the store and cannot be written`);
    const part = partIndexOf(t, name);
    if (part < 0) return refuse('invalid_object', `"${name.slice(0, 64)}" is not a field of ${t.name}`);
    const value = fields[name];
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined;
    }
    if (text === undefined) return refuse('invalid_object', `"${name.slice(0, 64)}" has no JSON value`);
    if (t.indexedSet.has(name)) {
      if (!isScalar(value)) return refuse('invalid_object', `"${name}" is indexed and must hold a string, number, boolean or null`);
      if (Buffer.byteLength(text) > limits.maxIndexedBytes)
        return refuse('invalid_object', `"${name}" is indexed and its value is longer than ${limits.maxIndexedBytes} bytes`);
    }
    const key = JSON.stringify(name);
    bytes += Buffer.byteLength(key) + Buffer.byteLength(text) + 2;
    touched[part] = true;
    sets.push([key, text]);
  }
  if (bytes > limits.maxObjectBytes) return refuse('too_large', `the object is larger than ${limits.maxObjectBytes} bytes`);
  const unsets: string[] = [];
  if (unset !== undefined) {
    if (!Array.isArray(unset)) return refuse('invalid_object', '`unset` must be a list of field names');
    for (const name of unset) {
      if (typeof name !== 'string' || RESERVED.has(name) || FORBIDDEN.has(name))
        return refuse('invalid_object', '`unset` names a field that cannot be deleted');
      const part = partIndexOf(t, name);
      if (part < 0) return refuse('invalid_object', `"${name.slice(0, 64)}" is not a field of ${t.name}`);
      if (Object.prototype.hasOwnProperty.call(fields, name)) return refuse('invalid_object', `"${name.slice(0, 64)}" is both set and unset`);
      touched[part] = true;
      unsets.push(JSON.stringify(name));
    }
  }
  if (what === 'merge' && sets.length === 0 && unsets.length === 0) return refuse('invalid_object', 'the merge changes nothing');
  return { sets, unsets, touched };
}

/** Validates an expected `v`: a list of non-negative integers (its length is not checked: a missing entry never matches). */
export function validExpectV(v: unknown): v is readonly number[] {
  return Array.isArray(v) && v.every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 0);
}

/** Whether `expect` matches `v` at every part in `at` (all parts when absent). */
export function versionsMatch(v: readonly number[], expect: readonly number[], at?: readonly boolean[]): boolean {
  for (let i = 0; i < v.length; i++) if ((!at || at[i]) && expect[i] !== v[i]) return false;
  return true;
}

/** The object's JSON text: `id`, `v`, then its fields in the given order. Mirrors `sb_assemble` in Lua. */
export function assembleObject(id: number, v: readonly number[], fields: Iterable<readonly [string, string]>): string {
  let out = `{"id":${id},"v":[${v.join(',')}]`;
  for (const [key, text] of fields) out += `,${key}:${text}`;
  return out + '}';
}

/** Parses an object text the store assembled (its fields were validated when written). */
export function parseObject(text: string): StoredObject {
  return JSON.parse(text) as StoredObject;
}

/** A change event's attrs (see {@link ObjectStore}); mirrors `sb_attrs` in Lua. */
export function eventAttrs(
  op: 'create' | 'merge' | 'remove',
  id: number,
  t: CompiledType,
  changed: readonly boolean[],
  before: ReadonlyMap<string, string> | null,
  after: ReadonlyMap<string, string> | null,
): Record<string, string | number | boolean> {
  const attrs: Record<string, string | number | boolean> = { [ATTR.op]: op, [ATTR.id]: id };
  t.parts.forEach((p, i) => {
    if (changed[i]) attrs[ATTR.part(p)] = true;
  });
  for (const f of t.indexed) {
    const key = JSON.stringify(f);
    const b = before?.get(key);
    const a = after?.get(key);
    if (b !== undefined) attrs[ATTR.before(f)] = b;
    if (a !== undefined) attrs[ATTR.after(f)] = a;
  }
  return attrs;
}

/** A validated query, in stored form. */
export interface PreparedQuery {
  /** (JSON text of the name, JSON text of the value) that must all be equal. */
  readonly conds: readonly (readonly [string, string])[];
  readonly limit: number;
  readonly afterId: number;
  /** The indexed condition whose index gives the candidates (the first of the type's `indexed` in `where`), or null: every object. */
  readonly source: { readonly field: string; readonly text: string } | null;
  /** True when no object can match (an indexed value longer than any stored one). */
  readonly nothing: boolean;
}

/** Validates an untrusted query. */
export function prepareQuery(t: CompiledType, limits: StoreLimits, q: Query | undefined): PreparedQuery | StoreRefusal {
  const where: unknown = q?.where ?? {};
  if (!isPlainObject(where)) return refuse('invalid_query', '`where` must be an object of field values');
  const conds: [string, string][] = [];
  for (const name of Object.keys(where)) {
    if (RESERVED.has(name) || FORBIDDEN.has(name)) return refuse('invalid_query', `"${name}" cannot be queried`);
    if (partIndexOf(t, name) < 0) return refuse('invalid_query', `"${name.slice(0, 64)}" is not a field of ${t.name}`);
    const value = where[name];
    if (!isScalar(value)) return refuse('invalid_query', `"${name.slice(0, 64)}" must equal a string, number, boolean or null`);
    conds.push([JSON.stringify(name), JSON.stringify(value)]);
  }
  const limit = q?.limit ?? limits.maxQueryLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > limits.maxQueryLimit)
    return refuse('invalid_query', `limit must be an integer from 1 to ${limits.maxQueryLimit}`);
  const afterId = q?.afterId ?? 0;
  if (!Number.isInteger(afterId) || afterId < 0) return refuse('invalid_query', 'afterId must be a non-negative integer');
  let source: PreparedQuery['source'] = null;
  let nothing = false;
  const first = t.indexed.find((f) => Object.prototype.hasOwnProperty.call(where, f));
  if (first !== undefined) {
    const text = JSON.stringify(where[first]);
    source = { field: first, text };
    nothing = Buffer.byteLength(text) > limits.maxIndexedBytes;
  }
  return { conds, limit, afterId, source, nothing };
}
