/**
 * The publish API's request checking: `{dialect?, tenant?, channel, attrs?, data, idempotency_key?}` or
 * `{dialect?, tenant?, messages:[…]}`. The channel is named as the dialect's own clients know it; the
 * dialect normalises the payload, and the edge builds the bus channel `<dialect>:<tenant>:<name>`.
 */
import { NotReplicatedError } from '@switchboard/bus';
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

function parseAttrs(value: unknown): { ok: true; attrs: Record<string, AttrValue> } | { ok: false; message: string } {
  if (value === undefined) return { ok: true, attrs: {} };
  if (!isPlainObject(value)) return { ok: false, message: '"attrs" must be an object' };
  const keys = Object.keys(value);
  if (keys.length > MAX_ATTRS) return { ok: false, message: `at most ${MAX_ATTRS} attrs` };
  const attrs: Record<string, AttrValue> = {};
  for (const k of keys) {
    if (!ATTR_KEY_RE.test(k)) return { ok: false, message: `attr name "${k.slice(0, 64)}" is not an identifier` };
    const v = value[k];
    if (typeof v === 'string' && v.length <= MAX_ATTR_STRING) attrs[k] = v;
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') attrs[k] = v;
    else return { ok: false, message: `attr "${k}" must be a string (≤ ${MAX_ATTR_STRING} chars), number or boolean` };
  }
  return { ok: true, attrs };
}

/** The tenant a message goes to: as given, or the key's only tenant, or `default` for an unscoped key. */
function resolveTenant(given: unknown, scope: KeyScope): { ok: true; tenant: string } | Fail {
  if (given !== undefined) {
    if (!isValidTenant(given)) return { ok: false, code: 'invalid_message', message: '"tenant" must be a tenant name (letters, digits, "_", ".", "@", "-")' };
    if (scope.tenants !== null && !scope.tenants.has(given))
      return { ok: false, code: 'forbidden', message: `this API key may not publish to tenant "${given}"`, denied: 'tenant' };
    return { ok: true, tenant: given };
  }
  if (scope.tenants === null) return { ok: true, tenant: DEFAULT_TENANT };
  if (scope.tenants.size === 1) return { ok: true, tenant: [...scope.tenants][0]! };
  return { ok: false, code: 'invalid_message', message: 'this API key covers several tenants: name one in "tenant"' };
}

function parseOne(
  value: unknown,
  inherited: { dialect: unknown; tenant: unknown; idempotencyKey?: string },
  scope: KeyScope,
  normalizer: PublishNormalizer,
): { ok: true; req: PublishRequest; name: string } | Fail {
  if (!isPlainObject(value)) return { ok: false, code: 'invalid_message', message: 'a message must be an object' };
  const dialect = value.dialect ?? inherited.dialect ?? DEFAULT_PUBLISH_DIALECT;
  if (typeof dialect !== 'string') return { ok: false, code: 'invalid_message', message: '"dialect" must be a string' };
  const normalize = normalizer(dialect);
  if (!normalize) return { ok: false, code: 'unknown_channel', message: `no dialect "${dialect.slice(0, 32)}" takes publishes` };
  const tenant = resolveTenant(value.tenant ?? inherited.tenant, scope);
  if (!tenant.ok) return tenant;
  const channel = value.channel;
  if (typeof channel !== 'string') return { ok: false, code: 'invalid_message', message: '"channel" must be a string' };
  const attrs = parseAttrs(value.attrs);
  if (!attrs.ok) return { ok: false, code: 'invalid_message', message: attrs.message };
  if (value.data === undefined) return { ok: false, code: 'invalid_message', message: 'missing "data"' };
  const idem = value.idempotency_key ?? inherited.idempotencyKey;
  if (idem !== undefined && idempotencyKeyError(idem)) return { ok: false, code: 'invalid_message', message: idempotencyKeyError(idem)!.message };
  const n = normalize(channel, attrs.attrs, value.data);
  if (!n.ok) return n;
  if (scope.channels !== null) {
    const named = `${dialect}:${n.name}`;
    if (!scope.channels.some((re) => re.test(named)))
      return { ok: false, code: 'forbidden', message: `this API key may not publish to channel "${named.slice(0, 96)}"`, denied: 'channel' };
  }
  let bus: string;
  try {
    bus = busChannel(dialect, tenant.tenant, n.name);
  } catch {
    return { ok: false, code: 'invalid_message', message: `"${channel.slice(0, 64)}" does not make a valid channel name` };
  }
  return { ok: true, req: { channel: bus, attrs: n.attrs, data: n.data, ...(typeof idem === 'string' ? { idempotencyKey: idem } : {}) }, name: channel };
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
    const inherited = { dialect: body.dialect, tenant: body.tenant };
    for (let i = 0; i < body.messages.length; i++) {
      const one = parseOne(body.messages[i], inherited, opts.scope, opts.normalizer);
      if (!one.ok) return { ...one, message: `messages[${i}]: ${one.message}`, index: i };
      requests.push(one.req);
      names.push(one.name);
    }
    return { ok: true, batch: true, requests, names };
  }
  // The `Idempotency-Key` header names a single publish's key (a body field wins).
  const one = parseOne(body, { dialect: undefined, tenant: undefined, ...(opts.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : {}) }, opts.scope, opts.normalizer);
  if (!one.ok) return one;
  return { ok: true, batch: false, requests: [one.req], names: [one.name] };
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
