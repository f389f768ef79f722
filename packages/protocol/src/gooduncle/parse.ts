/**
 * Parsing of `gooduncle` client frames (seed 004) into requests: pure functions, no I/O.
 *
 * The seed's rules: a frame that is not valid JSON is ignored (it only keeps the connection open — the
 * seed's clients send a single "`" every ~300 ms); every other frame is a request and gets at least one
 * response, whose `request.payload` echoes it. A refused request names every problem it has, one
 * `{field, code, problem}` object each.
 */
import { checkJsonValue, isPlainObject, type ErrorCode } from '@switchboard/core';

/** The request types of the seed ("Request Types"). */
export const GOODUNCLE_REQUEST_TYPES = ['upgrade', 'downgrade', 'create', 'read', 'update', 'delete', 'subscribe', 'unsubscribe'] as const;

/** One request type. */
export type GoodUncleRequestType = (typeof GOODUNCLE_REQUEST_TYPES)[number];

/** A topic name: one segment of a bus channel name. */
export const GOODUNCLE_TOPIC_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** A field a query may name (the store's indexed-field alphabet). */
export const GOODUNCLE_QUERY_FIELD_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A role name, as the session service's tokens carry them. */
export const GOODUNCLE_ROLE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Largest object id (the store allocates ids below 2^32). */
export const GOODUNCLE_MAX_ID = 0xffff_ffff;
/** Most fields one query may compare. */
export const GOODUNCLE_MAX_QUERY_FIELDS = 16;
/** Longest token, user name and password accepted by `upgrade`. */
const MAX_TOKEN = 8192;
const MAX_USERNAME = 128;
const MAX_PASSWORD = 1024;

/** A value a query field may equal. */
export type GoodUncleScalar = string | number | boolean | null;

/** A query: field equalities, `{}` for every object of the topic. */
export type GoodUncleQuery = Readonly<Record<string, GoodUncleScalar>>;

/** A parsed request. */
export type GoodUncleRequest =
  | { readonly type: 'upgrade'; readonly token: string }
  | { readonly type: 'upgrade'; readonly username: string; readonly password: string }
  | { readonly type: 'downgrade'; readonly role: string }
  | { readonly type: 'create'; readonly topic: string; readonly data: Readonly<Record<string, unknown>> }
  | { readonly type: 'read'; readonly topic: string; readonly id: number }
  | {
      readonly type: 'update';
      readonly topic: string;
      readonly id: number;
      readonly data: Readonly<Record<string, unknown>>;
      /** The version the client last saw; null: an unconditional update. */
      readonly v: readonly number[] | null;
    }
  | { readonly type: 'delete'; readonly topic: string; readonly id: number; readonly v: readonly number[] | null }
  | GoodUncleQueryRequest<'subscribe'>
  | GoodUncleQueryRequest<'unsubscribe'>;

/** A `subscribe` or `unsubscribe`. */
export interface GoodUncleQueryRequest<T extends 'subscribe' | 'unsubscribe'> {
  readonly type: T;
  readonly topic: string;
  readonly query: GoodUncleQuery;
  /** Topic and query in canonical form: the same for `{"a":1,"b":2}` and `{"b":2,"a":1}`. */
  readonly key: string;
}

/** One problem of a request: the field (dotted path; null for the request as a whole), its registered code, and words. */
export interface GoodUncleFieldError {
  readonly field: string | null;
  readonly code: ErrorCode;
  readonly problem: string;
}

/** What one frame is. */
export type GoodUncleFrame =
  /** Not JSON: ignored; it kept the connection open (the seed's keep-alive). */
  | { readonly kind: 'ignored' }
  /** A valid request; `echo` is the JSON text of `request.payload`. */
  | { readonly kind: 'request'; readonly request: GoodUncleRequest; readonly echo: string }
  /** A request refused as it stands (`bad request`); `echo` is `null` when the frame cannot be echoed safely. */
  | { readonly kind: 'refused'; readonly echo: string; readonly errors: readonly GoodUncleFieldError[] };

/** Top-level keys whose values are never echoed back (credentials of `upgrade`). */
const REDACTED = ['password', 'token'] as const;
/** What a redacted value is replaced with in `request.payload`. */
export const GOODUNCLE_REDACTED = '[redacted]';

const err = (field: string | null, code: ErrorCode, problem: string): GoodUncleFieldError => ({ field, code, problem });
const short = (s: string) => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);

/**
 * The JSON text of `request.payload`: the frame as sent, except that top-level `password` and `token`
 * values are replaced with "[redacted]" (a credential never travels back, nor into a client's logs).
 */
function echoOf(text: string, value: Record<string, unknown>): string {
  if (!REDACTED.some((k) => Object.prototype.hasOwnProperty.call(value, k))) return text;
  const copy: Record<string, unknown> = { ...value };
  for (const k of REDACTED) if (Object.prototype.hasOwnProperty.call(copy, k)) copy[k] = GOODUNCLE_REDACTED;
  return JSON.stringify(copy);
}

/** Parses one text frame (already checked against the byte limit). */
export function parseGoodUncleFrame(text: string, maxDepth: number): GoodUncleFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'ignored' };
  }
  const guard = checkJsonValue(value, maxDepth);
  // Neither too deep nor forbidden-key payloads are echoed: they are exactly what must not travel on.
  if (guard) return { kind: 'refused', echo: 'null', errors: [err(null, guard.code, guard.message)] };
  if (!isPlainObject(value)) return { kind: 'refused', echo: text, errors: [err(null, 'invalid_message', 'a request is a JSON object with a "type"')] };
  const echo = echoOf(text, value);
  const result = parseGoodUncleRequest(value);
  return result.ok ? { kind: 'request', request: result.request, echo } : { kind: 'refused', echo, errors: result.errors };
}

/** Parses a request object (depth- and key-checked). */
export function parseGoodUncleRequest(value: Record<string, unknown>): { ok: true; request: GoodUncleRequest } | { ok: false; errors: GoodUncleFieldError[] } {
  const type = value.type;
  if (type === undefined) return { ok: false, errors: [err('type', 'invalid_message', 'missing "type"')] };
  if (typeof type !== 'string') return { ok: false, errors: [err('type', 'invalid_message', '"type" must be a string')] };
  if (!(GOODUNCLE_REQUEST_TYPES as readonly string[]).includes(type))
    return { ok: false, errors: [err('type', 'unknown_type', `unknown request type ${short(type)}; types: ${GOODUNCLE_REQUEST_TYPES.join(', ')}`)] };
  const errors: GoodUncleFieldError[] = [];
  const request = build(type as GoodUncleRequestType, value, errors);
  return errors.length > 0 || request === null ? { ok: false, errors } : { ok: true, request };
}

function build(type: GoodUncleRequestType, value: Record<string, unknown>, errors: GoodUncleFieldError[]): GoodUncleRequest | null {
  switch (type) {
    case 'upgrade':
      return upgrade(value, errors);
    case 'downgrade': {
      const role = value.role;
      if (typeof role !== 'string' || !GOODUNCLE_ROLE_RE.test(role)) {
        errors.push(err('role', 'invalid_message', role === undefined ? 'missing "role"' : '"role" must be a role name (letters, digits, "_", ".", ":", "-"; at most 64)'));
        return null;
      }
      return { type, role };
    }
    case 'create': {
      const topic = topicOf(value, errors);
      const data = dataOf(value, errors, false);
      return topic !== null && data !== null ? { type, topic, data } : null;
    }
    case 'read': {
      const topic = topicOf(value, errors);
      const id = idOf(value, errors);
      return topic !== null && id !== null ? { type, topic, id } : null;
    }
    case 'update': {
      const topic = topicOf(value, errors);
      const id = idOf(value, errors);
      const data = dataOf(value, errors, true);
      const v = versionOf(value, errors);
      return topic !== null && id !== null && data !== null && v !== undefined ? { type, topic, id, data, v } : null;
    }
    case 'delete': {
      const topic = topicOf(value, errors);
      const id = idOf(value, errors);
      const v = versionOf(value, errors);
      return topic !== null && id !== null && v !== undefined ? { type, topic, id, v } : null;
    }
    case 'subscribe':
    case 'unsubscribe': {
      const topic = topicOf(value, errors);
      const query = queryOf(value, errors);
      return topic !== null && query !== null ? { type, topic, query, key: goodUncleQueryKey(topic, query) } : null;
    }
  }
}

function upgrade(value: Record<string, unknown>, errors: GoodUncleFieldError[]): GoodUncleRequest | null {
  const { token, username, password } = value;
  if (token !== undefined && (username !== undefined || password !== undefined)) {
    errors.push(err('token', 'invalid_message', 'give either "token", or "username" and "password", not both'));
    return null;
  }
  if (token !== undefined) {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN) {
      errors.push(err('token', 'invalid_message', `"token" must be a non-empty string of at most ${MAX_TOKEN} characters`));
      return null;
    }
    return { type: 'upgrade', token };
  }
  if (username === undefined && password === undefined) {
    errors.push(err('token', 'invalid_message', 'give "token", or "username" and "password"'));
    return null;
  }
  if (typeof username !== 'string' || username.length === 0 || username.length > MAX_USERNAME)
    errors.push(err('username', 'invalid_message', `"username" must be a non-empty string of at most ${MAX_USERNAME} characters`));
  if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD)
    errors.push(err('password', 'invalid_message', `"password" must be a non-empty string of at most ${MAX_PASSWORD} characters`));
  if (errors.length > 0) return null;
  return { type: 'upgrade', username: username as string, password: password as string };
}

function topicOf(value: Record<string, unknown>, errors: GoodUncleFieldError[]): string | null {
  const topic = value.topic;
  if (topic === undefined) errors.push(err('topic', 'invalid_message', 'missing "topic"'));
  else if (typeof topic !== 'string') errors.push(err('topic', 'invalid_message', '"topic" must be a string'));
  else if (!GOODUNCLE_TOPIC_RE.test(topic)) errors.push(err('topic', 'unknown_channel', `no topic is named ${short(topic)}`));
  else return topic;
  return null;
}

function idOf(value: Record<string, unknown>, errors: GoodUncleFieldError[]): number | null {
  const id = value.id;
  if (id === undefined) errors.push(err('id', 'invalid_message', 'missing "id"'));
  else if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > GOODUNCLE_MAX_ID)
    errors.push(err('id', 'invalid_message', `"id" must be an integer from 1 to ${GOODUNCLE_MAX_ID}`));
  else return id;
  return null;
}

function dataOf(value: Record<string, unknown>, errors: GoodUncleFieldError[], nonEmpty: boolean): Record<string, unknown> | null {
  const data = value.data;
  if (data === undefined) errors.push(err('data', 'invalid_message', 'missing "data"'));
  else if (!isPlainObject(data)) errors.push(err('data', 'invalid_message', '"data" must be an object of fields'));
  else if (nonEmpty && Object.keys(data).length === 0) errors.push(err('data', 'invalid_message', '"data" names no field to update'));
  else {
    for (const k of ['id', 'v']) if (Object.prototype.hasOwnProperty.call(data, k)) errors.push(err(`data.${k}`, 'invalid_message', `"${k}" is kept by the server and cannot be written`));
    return data;
  }
  return null;
}

/** `v`: absent (null), a list of counters, or one counter (a topic's objects have one part). Undefined: invalid. */
function versionOf(value: Record<string, unknown>, errors: GoodUncleFieldError[]): readonly number[] | null | undefined {
  const v = value.v;
  if (v === undefined) return null;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (ok(v)) return [v];
  if (Array.isArray(v) && v.length > 0 && v.length <= 16 && v.every(ok)) return v;
  errors.push(err('v', 'invalid_message', '"v" must be the object\'s version: a list of non-negative integers, as read'));
  return undefined;
}

function queryOf(value: Record<string, unknown>, errors: GoodUncleFieldError[]): GoodUncleQuery | null {
  const query = value.query;
  if (query === undefined) return {};
  if (!isPlainObject(query)) {
    errors.push(err('query', 'invalid_message', '"query" must be an object of field values ({} for every object)'));
    return null;
  }
  const keys = Object.keys(query);
  if (keys.length > GOODUNCLE_MAX_QUERY_FIELDS) {
    errors.push(err('query', 'invalid_filter', `a query compares at most ${GOODUNCLE_MAX_QUERY_FIELDS} fields`));
    return null;
  }
  const out: Record<string, GoodUncleScalar> = Object.create(null) as Record<string, GoodUncleScalar>;
  let bad = false;
  for (const k of keys) {
    const q = query[k];
    if (!GOODUNCLE_QUERY_FIELD_RE.test(k) || k === 'id' || k === 'v') {
      errors.push(err(`query.${k.slice(0, 64)}`, 'invalid_filter', `${short(k)} cannot be queried`));
      bad = true;
    } else if (q !== null && typeof q !== 'string' && typeof q !== 'boolean' && !(typeof q === 'number' && Number.isFinite(q))) {
      errors.push(err(`query.${k}`, 'invalid_filter', 'a query value is a string, number, boolean or null'));
      bad = true;
    } else out[k] = q;
  }
  return bad ? null : out;
}

/** The canonical key of a (topic, query): fields sorted, values as JSON. */
export function goodUncleQueryKey(topic: string, query: GoodUncleQuery): string {
  const fields = Object.keys(query).sort();
  return `${topic}?${JSON.stringify(fields.map((f) => [f, query[f]]))}`;
}
