/**
 * The publish API's request checking: `{dialect?, tenant?, channel, attrs?, data, idempotency_key?}` or
 * `{dialect?, tenant?, messages:[…]}`. The channel is named as the dialect's own clients know it; the
 * dialect normalises the payload, and the edge builds the bus channel `<dialect>:<tenant>:<name>`.
 */
import { NotReplicatedError, type PublishResult } from '@switchboard/bus';
import { DEFAULT_TENANT, SwitchboardError, busChannel, type AuthzReason, idempotencyKeyError, isPlainObject, isValidTenant, parseJsonGuarded, type AttrValue, type ErrorCode, type PublishRequest } from '@switchboard/core';
import type { KeyScope } from './api-keys.js';
import type { NormalizedPublish } from './dialect.js';

const ATTR_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_ATTRS = 32;
const MAX_ATTR_STRING = 256;

/** The dialect used when a publish names none. */
export const DEFAULT_PUBLISH_DIALECT = 'valtronics';

/** Normalises a publish for a dialect (its `normalizePublish`); undefined for a dialect that takes none. */
export type PublishNormalizer = (dialect: string) => ((name: string, attrs: Readonly<Record<string, AttrValue>>, data: unknown) => NormalizedPublish) | undefined;

/** A checked publish body: one or many requests. */
export type ParsedPublish =
  | { readonly ok: true; readonly batch: boolean; readonly requests: readonly PublishRequest[]; readonly names: readonly string[] }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly index?: number; readonly denied?: AuthzReason };

type Fail = { ok: false; code: ErrorCode; message: string; denied?: AuthzReason };

/** The attrs of a message, or the reason they are refused (a string). */
function parseAttrs(value: unknown): Record<string, AttrValue> | string {
  if (value === undefined) return {};
  if (!isPlainObject(value)) return '"attrs" must be an object';
  const keys = Object.keys(value);
  if (keys.length > MAX_ATTRS) return `at most ${MAX_ATTRS} attrs`;
  const attrs: Record<string, AttrValue> = {};
  for (const k of keys) {
    if (!ATTR_KEY_RE.test(k)) return `attr name "${k.slice(0, 64)}" is not an identifier`;
    const v = value[k];
    if (typeof v === 'string' && v.length <= MAX_ATTR_STRING) attrs[k] = v;
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') attrs[k] = v;
    else return `attr "${k}" must be a string (≤ ${MAX_ATTR_STRING} chars), number or boolean`;
  }
  return attrs;
}

/** The tenant a message goes to (a string): as given, or the key's only tenant, or `default` for an unscoped key. */
function resolveTenant(given: unknown, scope: KeyScope): string | Fail {
  if (given !== undefined) {
    if (!isValidTenant(given)) return { ok: false, code: 'invalid_message', message: '"tenant" must be a tenant name (letters, digits, "_", ".", "@", "-")' };
    if (scope.tenants !== null && !scope.tenants.has(given))
      return { ok: false, code: 'forbidden', message: `this API key may not publish to tenant "${given}"`, denied: 'tenant' };
    return given;
  }
  if (scope.tenants === null) return DEFAULT_TENANT;
  if (scope.tenants.size === 1) return [...scope.tenants][0]!;
  return { ok: false, code: 'invalid_message', message: 'this API key covers several tenants: name one in "tenant"' };
}

/** What the messages of one body share: the body's defaults, the last dialect's normaliser and tenant. */
interface BodyContext {
  readonly dialect: unknown;
  readonly tenant: unknown;
  readonly idempotencyKey: string | undefined;
  readonly normalizer: PublishNormalizer;
  /** The messages of a batch almost always name one dialect: its normaliser is looked up once. */
  lastDialect: string | undefined;
  lastNormalize: ReturnType<PublishNormalizer>;
  /** And one tenant: the last `tenant` value given (or inherited) and what it resolved to. */
  lastTenantGiven: unknown;
  lastTenant: string | Fail | undefined;
}

function bodyContext(dialect: unknown, tenant: unknown, idempotencyKey: string | undefined, normalizer: PublishNormalizer): BodyContext {
  return { dialect, tenant, idempotencyKey, normalizer, lastDialect: undefined, lastNormalize: undefined, lastTenantGiven: undefined, lastTenant: undefined };
}

function parseOne(value: unknown, inherited: BodyContext, scope: KeyScope): { ok: true; req: PublishRequest; name: string } | Fail {
  if (!isPlainObject(value)) return { ok: false, code: 'invalid_message', message: 'a message must be an object' };
  const dialect = value.dialect ?? inherited.dialect ?? DEFAULT_PUBLISH_DIALECT;
  if (typeof dialect !== 'string') return { ok: false, code: 'invalid_message', message: '"dialect" must be a string' };
  if (dialect !== inherited.lastDialect) {
    inherited.lastNormalize = inherited.normalizer(dialect);
    inherited.lastDialect = dialect;
  }
  const normalize = inherited.lastNormalize;
  if (!normalize) return { ok: false, code: 'unknown_channel', message: `no dialect "${dialect.slice(0, 32)}" takes publishes` };
  const given = value.tenant ?? inherited.tenant;
  if (inherited.lastTenant === undefined || given !== inherited.lastTenantGiven) {
    inherited.lastTenant = resolveTenant(given, scope);
    inherited.lastTenantGiven = given;
  }
  const tenant = inherited.lastTenant;
  if (typeof tenant !== 'string') return tenant;
  const channel = value.channel;
  if (typeof channel !== 'string') return { ok: false, code: 'invalid_message', message: '"channel" must be a string' };
  const attrs = parseAttrs(value.attrs);
  if (typeof attrs === 'string') return { ok: false, code: 'invalid_message', message: attrs };
  if (value.data === undefined) return { ok: false, code: 'invalid_message', message: 'missing "data"' };
  const idem = value.idempotency_key ?? inherited.idempotencyKey;
  if (idem !== undefined && idempotencyKeyError(idem)) return { ok: false, code: 'invalid_message', message: idempotencyKeyError(idem)!.message };
  const n = normalize(channel, attrs, value.data);
  if (!n.ok) return n;
  if (scope.channels !== null) {
    const named = `${dialect}:${n.name}`;
    if (!scope.channels.some((re) => re.test(named)))
      return { ok: false, code: 'forbidden', message: `this API key may not publish to channel "${named.slice(0, 96)}"`, denied: 'channel' };
  }
  let bus: string;
  try {
    bus = busChannel(dialect, tenant, n.name);
  } catch {
    return { ok: false, code: 'invalid_message', message: `"${channel.slice(0, 64)}" does not make a valid channel name` };
  }
  const req: { -readonly [K in keyof PublishRequest]: PublishRequest[K] } = { channel: bus, attrs: n.attrs, data: n.data };
  if (typeof idem === 'string') req.idempotencyKey = idem;
  return { ok: true, req, name: channel };
}

/** Options of {@link parsePublishBody} and {@link parsePublishValue}. */
export interface PublishParseOptions {
  readonly maxDepth: number;
  readonly maxBatch: number;
  readonly scope: KeyScope;
  readonly normalizer: PublishNormalizer;
  /** The `Idempotency-Key` header of a single publish (a body field wins). */
  readonly idempotencyKey?: string;
}

/**
 * Parses a publish body. Payloads are depth- and key-checked; attrs must be flat scalars; the dialect
 * decides which of its channels take publishes; the key's scope decides the tenants.
 */
export function parsePublishBody(text: string, opts: PublishParseOptions): ParsedPublish {
  // Two levels for the envelope (`messages[i].data`) on top of the payload's own limit.
  const parsed = parseJsonGuarded(text, opts.maxDepth + 3);
  if (!parsed.ok) return parsed;
  return parsePublishValue(parsed.value, opts);
}

/** Checks an already parsed (and depth- and key-checked) publish body; see {@link parsePublishBody}. */
export function parsePublishValue(body: unknown, opts: PublishParseOptions): ParsedPublish {
  if (!isPlainObject(body)) return { ok: false, code: 'invalid_message', message: 'body must be a JSON object' };
  if (body.messages !== undefined) {
    if (!Array.isArray(body.messages)) return { ok: false, code: 'invalid_message', message: '"messages" must be an array' };
    if (body.messages.length === 0) return { ok: false, code: 'invalid_message', message: '"messages" is empty' };
    if (body.messages.length > opts.maxBatch) return { ok: false, code: 'batch_too_large', message: `at most ${opts.maxBatch} messages per request` };
    const requests: PublishRequest[] = [];
    const names: string[] = [];
    const inherited = bodyContext(body.dialect, body.tenant, undefined, opts.normalizer);
    for (let i = 0; i < body.messages.length; i++) {
      const one = parseOne(body.messages[i], inherited, opts.scope);
      if (!one.ok) return { ...one, message: `messages[${i}]: ${one.message}`, index: i };
      requests.push(one.req);
      names.push(one.name);
    }
    return { ok: true, batch: true, requests, names };
  }
  // The `Idempotency-Key` header names a single publish's key (a body field wins).
  const one = parseOne(body, bodyContext(undefined, undefined, opts.idempotencyKey, opts.normalizer), opts.scope);
  if (!one.ok) return one;
  return { ok: true, batch: false, requests: [one.req], names: [one.name] };
}

/** The last channel name and epoch serialised by {@link renderPublishAnswer}: answers repeat them. */
let lastName = '';
let lastNameJson = '""';
let lastEpoch = '';
let lastEpochJson = '""';

/**
 * The answer to an acknowledged publish: `{id?, channel, offset, epoch, duplicate?}`, or for a batch
 * `{id?, results: [{channel, offset, epoch, duplicate?}, …]}` (`id` only on the publish socket), as
 * `JSON.stringify` would write it. Written directly: a batch names the same channel and epoch over and
 * over (and so do the answers of single publishes one after another), so each is serialised once instead
 * of building an object per message to serialise.
 */
export function renderPublishAnswer(names: readonly string[], positions: readonly PublishResult[], batch: boolean, id?: string | number): string {
  let out = id === undefined ? '{' : `{"id":${JSON.stringify(id)},`;
  if (batch) out += '"results":[';
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    // Only what the bus promises (a number and a string) is written by hand.
    if (typeof p.offset !== 'number' || typeof p.epoch !== 'string') return renderPublishAnswerSlowly(names, positions, batch, id);
    const name = names[i]!;
    if (name !== lastName) {
      lastNameJson = JSON.stringify(name);
      lastName = name;
    }
    if (p.epoch !== lastEpoch) {
      lastEpochJson = JSON.stringify(p.epoch);
      lastEpoch = p.epoch;
    }
    if (batch) out += i === 0 ? '{' : ',{';
    out += `"channel":${lastNameJson},"offset":${JSON.stringify(p.offset)},"epoch":${lastEpochJson}`;
    if (p.duplicate) out += ',"duplicate":true';
    if (batch) out += '}';
  }
  return batch ? `${out}]}` : `${out}}`;
}

function renderPublishAnswerSlowly(names: readonly string[], positions: readonly PublishResult[], batch: boolean, id?: string | number): string {
  const results = positions.map((p, i) => ({ channel: names[i], offset: p.offset, epoch: p.epoch, ...(p.duplicate ? { duplicate: true } : {}) }));
  const body = batch ? { results } : results[0];
  return JSON.stringify(id === undefined ? body : { id, ...body });
}

/**
 * How a failed publish is answered: the bus's own refusals with their code (`not_replicated` with its
 * position); a publish refused before anything was sent (no connection) as `unavailable` — nothing was
 * published; anything else (a timeout, a connection lost mid-command) as `publish_outcome_unknown` — it
 * may have been committed, and a retry with the same idempotency key publishes it once.
 */
export function publishFailure(err: unknown): { code: ErrorCode; message: string; extra: Record<string, unknown> } {
  if (err instanceof NotReplicatedError) return { code: err.code, message: err.message, extra: { offset: err.position.offset, epoch: err.position.epoch } };
  if (err instanceof SwitchboardError) return { code: err.code, message: err.message, extra: {} };
  if (err instanceof Error && /isn't writeable|not connected|closed before/i.test(err.message))
    return { code: 'unavailable', message: 'the message bus is unavailable; nothing was published; retry', extra: {} };
  return {
    code: 'publish_outcome_unknown',
    message: 'the message bus did not answer: the publish may have been committed; retry with the same idempotency key to publish it once',
    extra: {},
  };
}
