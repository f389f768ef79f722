/**
 * Parsing Fleet Freedom client frames: `cmdName<space>{JSON}` (the JSON may span lines), validated into
 * commands. Pure: no I/O. Every refusal names the command it answers (so the reply is `<cmd>Response`)
 * and the `reqId` when one could be read.
 */
import { isPlainObject, parseJsonGuarded, type ErrorCode } from '@switchboard/core';
import { FF_SUBSCRIPTION_TYPES, FF_TYPES, ffPartOf, type FfSubscriptionType, type FfType } from './model.js';

/** A request id as the client sent it (echoed verbatim), or null when it sent none. */
export type FfReqId = number | string | null;

/** `login`. */
export interface FfLoginCommand {
  readonly kind: 'login';
  readonly cmd: 'login';
  readonly reqId: FfReqId;
  readonly username: string;
  readonly password: string;
  readonly userAgent: string | null;
}

/** `get<Type>` and `remove<Type>`. */
export interface FfReadCommand {
  readonly kind: 'get' | 'remove';
  readonly cmd: string;
  readonly reqId: FfReqId;
  readonly type: FfType;
  readonly id: number;
  /** The company the request names (`asset.company`), null when it names none. */
  readonly company: number | null;
  /** `remove` only: the whole `v` the client last saw (null: unconditional). */
  readonly v: readonly number[] | null;
}

/** `merge<Type>`. */
export interface FfMergeCommand {
  readonly kind: 'merge';
  readonly cmd: string;
  readonly reqId: FfReqId;
  readonly type: FfType;
  /** Null: create. */
  readonly id: number | null;
  /** The `v` the client last saw; null when it sent none (a merge of an existing object then conflicts). */
  readonly v: readonly number[] | null;
  readonly company: number | null;
  /** The fields to set, each checked to belong to a part of the type. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** `subscribe` and `unsubscribe`. */
export interface FfSubscribeCommand {
  readonly kind: 'subscribe' | 'unsubscribe';
  readonly cmd: 'subscribe' | 'unsubscribe';
  readonly reqId: FfReqId;
  readonly company: number;
  readonly types: readonly FfSubscriptionType[];
}

/** What a frame asks for. */
export type FfCommand = FfLoginCommand | FfReadCommand | FfMergeCommand | FfSubscribeCommand;

/** A refused frame: the command to answer (`error` when none could be read), the code and why. */
export interface FfParseError {
  readonly cmd: string;
  readonly reqId: FfReqId;
  readonly code: ErrorCode;
  readonly message: string;
}

/** Outcome of {@link parseFleetFreedomFrame}. */
export type FfParseResult = { readonly ok: true; readonly command: FfCommand } | { readonly ok: false; readonly error: FfParseError };

/** Limits of the parser. */
export interface FfParseOptions {
  /** Deepest nesting of the JSON body (the body itself is level 1). */
  readonly maxDepth: number;
}

/** A command name: what `<cmd>Response` may be built from. */
const CMD_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const OBJECT_CMD_RE = /^(get|merge|remove)(Asset|Provider|User|Company)$/;
/** Ids and company ids: positive integers a JSON number holds exactly. */
const MAX_INT = Number.MAX_SAFE_INTEGER;
const MAX_SUBSCRIPTION_TYPES = 64;

/** The command name used when a frame has none that can be echoed. */
export const FF_ERROR_CMD = 'error';

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_INT;
const isVersion = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length <= 64 && v.every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_INT);

/** The company a request names: a number, or `{ "id": number }` as `subscribe` sends it. */
function companyId(v: unknown): number | null | undefined {
  if (isPosInt(v)) return v;
  if (isPlainObject(v) && isPosInt(v.id)) return v.id;
  return v === undefined ? null : undefined;
}

/**
 * Splits a frame into its command name and JSON body and validates both. The name ends at the first
 * white space or `{`; the body may be absent (`{}`) and may span lines.
 */
export function parseFleetFreedomFrame(text: string, opts: FfParseOptions): FfParseResult {
  const m = /^\s*([^\s{]*)\s*([\s\S]*)$/.exec(text);
  const name = m?.[1] ?? '';
  const bodyText = (m?.[2] ?? '').trim();
  const cmd = CMD_RE.test(name) ? name : FF_ERROR_CMD;
  let body: Record<string, unknown> = {};
  if (bodyText !== '') {
    const parsed = parseJsonGuarded(bodyText, opts.maxDepth);
    if (!parsed.ok) return fail(cmd, null, parsed.code, parsed.message);
    if (!isPlainObject(parsed.value)) return fail(cmd, null, 'invalid_message', 'the body must be a JSON object');
    body = parsed.value;
  }
  const rawReqId = body.reqId;
  let reqId: FfReqId = null;
  if (rawReqId !== undefined && rawReqId !== null) {
    if ((typeof rawReqId === 'number' && Number.isFinite(rawReqId)) || (typeof rawReqId === 'string' && rawReqId.length <= 128)) reqId = rawReqId;
    else return fail(cmd, null, 'invalid_message', '"reqId" must be a number or a string of at most 128 characters');
  }
  if (cmd === FF_ERROR_CMD)
    return fail(cmd, reqId, 'invalid_message', name === '' ? 'a frame is `cmdName {JSON}`: the command name is missing' : 'the command name must be 1-64 letters, digits or "_"');
  if (cmd === 'login') return parseLogin(body, reqId);
  if (cmd === 'subscribe' || cmd === 'unsubscribe') return parseSubscribe(cmd, body, reqId);
  const o = OBJECT_CMD_RE.exec(cmd);
  if (o) return parseObjectCommand(cmd, o[1] as 'get' | 'merge' | 'remove', o[2]!.toLowerCase() as FfType, body, reqId);
  return fail(cmd, reqId, 'unknown_type', `unknown command "${cmd}"`);
}

function fail(cmd: string, reqId: FfReqId, code: ErrorCode, message: string): FfParseResult {
  return { ok: false, error: { cmd, reqId, code, message } };
}

function parseLogin(body: Record<string, unknown>, reqId: FfReqId): FfParseResult {
  const { username, password, userAgent } = body;
  if (typeof username !== 'string' || username.length === 0 || username.length > 256)
    return fail('login', reqId, 'invalid_message', '"username" must be a string of 1-256 characters');
  if (typeof password !== 'string' || password.length > 4096) return fail('login', reqId, 'invalid_message', '"password" must be a string');
  if (userAgent !== undefined && userAgent !== null && (typeof userAgent !== 'string' || userAgent.length > 256))
    return fail('login', reqId, 'invalid_message', '"userAgent" must be a string of at most 256 characters');
  return { ok: true, command: { kind: 'login', cmd: 'login', reqId, username, password, userAgent: typeof userAgent === 'string' ? userAgent : null } };
}

function parseSubscribe(cmd: 'subscribe' | 'unsubscribe', body: Record<string, unknown>, reqId: FfReqId): FfParseResult {
  const company = companyId(body.company);
  if (company === null || company === undefined) return fail(cmd, reqId, 'invalid_message', '"company" must be {"id": <company id>}');
  const list = body.subscriptionTypes;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SUBSCRIPTION_TYPES)
    return fail(cmd, reqId, 'invalid_message', `"subscriptionTypes" must be a list of 1-${MAX_SUBSCRIPTION_TYPES} subscription types`);
  const types: FfSubscriptionType[] = [];
  for (const t of list) {
    if (typeof t !== 'string') return fail(cmd, reqId, 'invalid_message', '"subscriptionTypes" must hold strings');
    const st = FF_SUBSCRIPTION_TYPES.get(t);
    if (!st) return fail(cmd, reqId, 'unknown_type', `unknown subscription type "${t.slice(0, 64)}"`);
    if (!types.includes(st)) types.push(st);
  }
  return { ok: true, command: { kind: cmd, cmd, reqId, company, types } };
}

function parseObjectCommand(cmd: string, verb: 'get' | 'merge' | 'remove', type: FfType, body: Record<string, unknown>, reqId: FfReqId): FfParseResult {
  const obj = body[type];
  if (!isPlainObject(obj)) return fail(cmd, reqId, 'invalid_message', `"${type}" must be an object`);
  const company = companyId(obj.company);
  if (company === undefined) return fail(cmd, reqId, 'invalid_message', `"${type}.company" must be a company id`);
  const id = obj.id;
  const v = obj.v;
  if (v !== undefined && v !== null && !isVersion(v)) return fail(cmd, reqId, 'invalid_message', `"${type}.v" must be a list of non-negative integers`);
  const version = isVersion(v) ? v : null;
  if (verb !== 'merge') {
    if (!isPosInt(id)) return fail(cmd, reqId, 'invalid_message', `"${type}.id" must be a positive integer`);
    return { ok: true, command: { kind: verb, cmd, reqId, type, id, company, v: verb === 'remove' ? version : null } };
  }
  if (id !== undefined && id !== null && !isPosInt(id)) return fail(cmd, reqId, 'invalid_message', `"${type}.id" must be a positive integer, or absent to create`);
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    if (key === 'id' || key === 'v' || key === 'company') continue;
    if (ffPartOf(type, key) < 0) return fail(cmd, reqId, 'invalid_message', `"${key.slice(0, 64)}" is not a field of ${type} (see the part lists)`);
    fields[key] = obj[key];
  }
  const indexed: readonly string[] = (FF_TYPES[type] as { indexed?: readonly string[] }).indexed ?? [];
  for (const f of indexed) {
    const val = fields[f];
    if (val !== undefined && val !== null && typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean')
      return fail(cmd, reqId, 'invalid_message', `"${type}.${f}" must be a string, number, boolean or null`);
  }
  return { ok: true, command: { kind: 'merge', cmd, reqId, type, id: isPosInt(id) ? id : null, v: version, company, fields } };
}

/**
 * The command name and `reqId` of a frame known only by its first bytes (one the shared limits refused
 * before it was parsed: rate, size), so even that refusal is answered as `<cmd>Response` with the
 * client's `reqId`. Best effort: `error` and null when they cannot be read.
 */
export function peekFfRequest(head: string | undefined): { readonly cmd: string; readonly reqId: FfReqId } {
  if (head === undefined) return { cmd: FF_ERROR_CMD, reqId: null };
  const c = /^\s*([A-Za-z][A-Za-z0-9_]{0,63})(?=[\s{]|$)/.exec(head);
  const r = /"reqId"\s*:\s*(-?\d{1,15}(?:\.\d{1,15})?|"[^"\\]{0,128}")/.exec(head);
  let reqId: FfReqId = null;
  if (r) {
    try {
      reqId = JSON.parse(r[1]!) as number | string;
    } catch {
      reqId = null;
    }
  }
  return { cmd: c ? c[1]! : FF_ERROR_CMD, reqId };
}
