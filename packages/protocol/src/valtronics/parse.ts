/**
 * Parsing of `valtronics` client frames (seed 002) into commands: pure functions, no I/O.
 */
import { checkJsonValue, isPlainObject, parseDurationMs, type ErrorCode, type Filter, type StreamPosition } from '@switchboard/core';
import { VALTRONICS_CHANNELS, channelSpec, isValtronicsChannel, type ChannelSpec, type ValtronicsChannel } from './channels.js';

/** Every filter key a seed client may put at the top level of `subscribe` or under `filters`. */
const FILTER_KEYS = new Set(['device_id', 'metrics', 'frequency', 'severity', 'alert_type', 'status_types']);

const MIN_FREQUENCY_MS = 100;
const MAX_FREQUENCY_MS = 3_600_000;
const MAX_FILTER_VALUES = 1000;
/** Longest request id and filter value. */
export const MAX_VALUE_LENGTH = 128;

/** An optional request id the client may attach; echoed in the answers. */
export type RequestId = string | number | undefined;

/** A parsed `subscribe`. */
export interface SubscribeCommand {
  readonly type: 'subscribe';
  readonly id: RequestId;
  readonly channel: ValtronicsChannel;
  readonly filter: Filter;
  readonly projection: readonly string[] | null;
  /** 0 for `real-time`, an interval otherwise; null when the client gave no `frequency`. */
  readonly frequencyMs: number | null;
  /** The filters as the server understood them, echoed in `subscribe_response`. */
  readonly echo: Record<string, unknown>;
  readonly recover: StreamPosition | null;
}

/** A parsed client message. */
export type ValtronicsCommand =
  | {
      readonly type: 'auth';
      readonly id: RequestId;
      readonly token: string;
      readonly sessionId: string | null;
      readonly recover: Readonly<Record<string, StreamPosition>> | null;
    }
  | SubscribeCommand
  | {
      readonly type: 'unsubscribe';
      readonly id: RequestId;
      readonly channel: ValtronicsChannel;
      readonly deviceIds: readonly string[] | null;
    }
  | { readonly type: 'ping'; readonly id: RequestId; readonly timestamp: unknown }
  | { readonly type: 'batch'; readonly id: RequestId; readonly messages: readonly unknown[] };

/** A refused client message: the registered code, a message, and context for the error frame. */
export interface ValtronicsParseError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly id?: RequestId;
  readonly requestType?: string;
  readonly channel?: string;
}

/** Result of parsing one client message. */
export type ParseResult =
  | { readonly ok: true; readonly command: ValtronicsCommand }
  | { readonly ok: false; readonly error: ValtronicsParseError };

/** Limits and context of the parser. */
export interface ValtronicsParseOptions {
  readonly maxDepth: number;
  readonly maxBatch: number;
  /** The channel a specialised endpoint is scoped to; null on `/ws`. */
  readonly endpointChannel: ValtronicsChannel | null;
}

function fail(code: ErrorCode, message: string, ctx: Partial<ValtronicsParseError> = {}): ParseResult {
  return { ok: false, error: { code, message, ...ctx } };
}

/** Parses one text frame (already checked against the byte limit). */
export function parseValtronicsFrame(text: string, opts: ValtronicsParseOptions): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('invalid_json', 'message is not valid JSON');
  }
  const bad = checkJsonValue(value, opts.maxDepth);
  // A frame refused for its content (a forbidden key, too deep) still names its request: the answer
  // carries the `id`, so a client can match it to what it sent.
  if (bad) return fail(bad.code, bad.message, { id: requestIdOf(value) });
  return parseValtronicsMessage(value, opts, false);
}

/** The valid `id` of a top-level message object, if it has one (read without trusting the rest). */
function requestIdOf(value: unknown): RequestId {
  if (!isPlainObject(value) || !Object.prototype.hasOwnProperty.call(value, 'id')) return undefined;
  const id = value.id;
  if (typeof id === 'string' && id.length <= MAX_VALUE_LENGTH) return id;
  if (typeof id === 'number' && Number.isFinite(id)) return id;
  return undefined;
}

/**
 * Parses one message object. Inside a batch, `inBatch` forbids nested batches. The value must already be
 * depth- and key-checked (as {@link parseValtronicsFrame} does).
 */
export function parseValtronicsMessage(value: unknown, opts: ValtronicsParseOptions, inBatch: boolean): ParseResult {
  if (!isPlainObject(value)) return fail('invalid_message', 'a message must be a JSON object');
  const rawId = value.id;
  let id: RequestId;
  if (rawId !== undefined) {
    if ((typeof rawId !== 'string' || rawId.length > MAX_VALUE_LENGTH) && !Number.isFinite(rawId))
      return fail('invalid_message', '"id" must be a string of at most 128 characters or a number');
    id = rawId as string | number;
  }
  const type = value.type;
  if (type === undefined) return fail('invalid_message', 'missing "type"', { id });
  if (typeof type !== 'string') return fail('invalid_message', '"type" must be a string', { id });
  switch (type) {
    case 'auth':
      return parseAuth(value, id);
    case 'subscribe':
      return parseSubscribe(value, id, opts);
    case 'unsubscribe':
      return parseUnsubscribe(value, id, opts);
    case 'ping':
      return { ok: true, command: { type: 'ping', id, timestamp: value.timestamp } };
    case 'batch': {
      if (inBatch) return fail('invalid_message', 'a batch cannot contain a batch', { id, requestType: type });
      const messages = value.messages;
      if (!Array.isArray(messages))
        return fail('invalid_message', '"messages" must be an array', { id, requestType: type });
      if (messages.length > opts.maxBatch)
        return fail('batch_too_large', `a batch holds at most ${opts.maxBatch} messages, got ${messages.length}`, {
          id,
          requestType: type,
        });
      return { ok: true, command: { type: 'batch', id, messages } };
    }
    default:
      return fail('unknown_type', `unknown message type "${type.slice(0, 64)}"`, { id });
  }
}

function parsePosition(value: unknown): StreamPosition | null {
  if (!isPlainObject(value)) return null;
  const { epoch, offset } = value;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64) return null;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return null;
  return { epoch, offset };
}

function parseAuth(value: Record<string, unknown>, id: RequestId): ParseResult {
  const ctx = { id, requestType: 'auth' };
  const token = value.token;
  if (typeof token !== 'string' || token.length === 0)
    return fail('invalid_message', '"token" must be a non-empty string', ctx);
  if (token.length > 8192) return fail('invalid_token', 'token is too long', ctx);
  const sid = value.session_id;
  if (sid !== undefined && (typeof sid !== 'string' || sid.length === 0 || sid.length > MAX_VALUE_LENGTH))
    return fail('invalid_message', '"session_id" must be a non-empty string', ctx);
  let recover: Record<string, StreamPosition> | null = null;
  if (value.recover !== undefined) {
    if (!isPlainObject(value.recover))
      return fail('invalid_message', '"recover" must map channels to {"epoch","offset"}', ctx);
    recover = Object.create(null) as Record<string, StreamPosition>;
    for (const [channel, pos] of Object.entries(value.recover)) {
      const p = parsePosition(pos);
      if (!p) return fail('invalid_message', `"recover.${channel.slice(0, 64)}" must be {"epoch","offset"}`, ctx);
      recover[channel] = p;
    }
  }
  return {
    ok: true,
    command: { type: 'auth', id, token, sessionId: sid ?? null, recover },
  };
}

function resolveChannel(
  raw: unknown,
  opts: ValtronicsParseOptions,
  ctx: Partial<ValtronicsParseError>,
): { ok: true; channel: ValtronicsChannel } | { ok: false; result: ParseResult } {
  if (raw === undefined) {
    if (opts.endpointChannel) return { ok: true, channel: opts.endpointChannel };
    return { ok: false, result: fail('invalid_message', 'missing "channel"', ctx) };
  }
  if (typeof raw !== 'string') return { ok: false, result: fail('invalid_message', '"channel" must be a string', ctx) };
  if (!isValtronicsChannel(raw))
    return {
      ok: false,
      result: fail('unknown_channel', `unknown channel "${raw.slice(0, 64)}"; channels: ${VALTRONICS_CHANNELS.join(', ')}`, {
        ...ctx,
        channel: raw.slice(0, 64),
      }),
    };
  if (opts.endpointChannel && raw !== opts.endpointChannel)
    return {
      ok: false,
      result: fail('channel_forbidden', `this endpoint serves only the "${opts.endpointChannel}" channel`, {
        ...ctx,
        channel: raw,
      }),
    };
  return { ok: true, channel: raw };
}

function scalarList(value: unknown, key: string, numbersAllowed: boolean): string[] | string {
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return `"${key}" must not be empty`;
  if (items.length > MAX_FILTER_VALUES) return `"${key}" holds more than ${MAX_FILTER_VALUES} values`;
  const out: string[] = [];
  for (const item of items) {
    if (typeof item === 'string' && item.length > 0 && item.length <= MAX_VALUE_LENGTH) out.push(item);
    else if (numbersAllowed && typeof item === 'number' && Number.isFinite(item)) out.push(String(item));
    else
      return `"${key}" must be ${numbersAllowed ? 'a number or string' : 'a string'} or an array of them`;
  }
  return out;
}

function parseSubscribe(value: Record<string, unknown>, id: RequestId, opts: ValtronicsParseOptions): ParseResult {
  const ctx: Partial<ValtronicsParseError> = { id, requestType: 'subscribe' };
  const ch = resolveChannel(value.channel, opts, ctx);
  if (!ch.ok) return ch.result;
  const channel = ch.channel;
  const spec = channelSpec(channel);
  const cctx = { ...ctx, channel };

  // Seed clients put filter keys both at the top level (JS client spreads them) and under `filters`
  // (Python client): gather both; list values are united, `frequency` must agree.
  const raw: Record<string, unknown[]> = Object.create(null) as Record<string, unknown[]>;
  for (const key of Object.keys(value)) {
    if (FILTER_KEYS.has(key)) (raw[key] ??= []).push(value[key]);
  }
  if (value.filters !== undefined) {
    if (!isPlainObject(value.filters)) return fail('invalid_message', '"filters" must be an object', cctx);
    for (const key of Object.keys(value.filters)) {
      if (!FILTER_KEYS.has(key))
        return fail('invalid_filter', `unknown filter "${key.slice(0, 64)}"; ${allowedFiltersText(spec, channel)}`, cctx);
      (raw[key] ??= []).push(value.filters[key]);
    }
  }

  const filter: Record<string, string[]> = {};
  const echo: Record<string, unknown> = {};
  let projection: string[] | null = null;
  let frequencyMs: number | null = null;
  for (const [key, values] of Object.entries(raw)) {
    if (key === 'metrics') {
      if (!spec.projection)
        return fail('invalid_filter', `"metrics" does not apply to channel "${channel}"; ${allowedFiltersText(spec, channel)}`, cctx);
      const set = new Set<string>();
      for (const v of values) {
        const list = scalarList(v, key, false);
        if (typeof list === 'string') return fail('invalid_filter', list, cctx);
        for (const m of list) set.add(m);
      }
      projection = [...set].sort();
      echo.metrics = projection;
    } else if (key === 'frequency') {
      if (!spec.frequency)
        return fail('invalid_filter', `"frequency" does not apply to channel "${channel}"; ${allowedFiltersText(spec, channel)}`, cctx);
      let ms: number | null = null;
      for (const v of values) {
        const parsed = parseFrequency(v);
        if (parsed === null)
          return fail(
            'invalid_filter',
            `"frequency" must be "real-time" or an interval such as "500ms", "30s", "5m" (between 100ms and 1h)`,
            cctx,
          );
        if (ms !== null && ms !== parsed) return fail('invalid_filter', 'conflicting "frequency" values', cctx);
        ms = parsed;
      }
      frequencyMs = ms ?? 0;
      echo.frequency = ms === 0 || ms === null ? 'real-time' : formatFrequency(ms);
    } else {
      const attr = spec.filters[key];
      if (attr === undefined)
        return fail('invalid_filter', `"${key}" does not apply to channel "${channel}"; ${allowedFiltersText(spec, channel)}`, cctx);
      const set = new Set<string>();
      for (const v of values) {
        const list = scalarList(v, key, key === 'device_id');
        if (typeof list === 'string') return fail('invalid_filter', list, cctx);
        for (const item of list) set.add(item);
      }
      const sorted = [...set].sort();
      filter[attr] = sorted;
      echo[key] = key === 'device_id' ? sorted.map(deviceIdOut) : sorted;
    }
  }

  let recover: StreamPosition | null = null;
  if (value.recover !== undefined) {
    recover = parsePosition(value.recover);
    if (!recover) return fail('invalid_message', '"recover" must be {"epoch": string, "offset": integer ≥ 0}', cctx);
  }
  return {
    ok: true,
    command: { type: 'subscribe', id, channel, filter, projection, frequencyMs, echo, recover },
  };
}

function parseUnsubscribe(value: Record<string, unknown>, id: RequestId, opts: ValtronicsParseOptions): ParseResult {
  const ctx: Partial<ValtronicsParseError> = { id, requestType: 'unsubscribe' };
  const ch = resolveChannel(value.channel, opts, ctx);
  if (!ch.ok) return ch.result;
  let deviceIds: string[] | null = null;
  const raw = value.device_id ?? (isPlainObject(value.filters) ? value.filters.device_id : undefined);
  if (raw !== undefined) {
    const list = scalarList(raw, 'device_id', true);
    if (typeof list === 'string') return fail('invalid_filter', list, { ...ctx, channel: ch.channel });
    deviceIds = list;
  }
  return { ok: true, command: { type: 'unsubscribe', id, channel: ch.channel, deviceIds } };
}

function allowedFiltersText(spec: ChannelSpec, channel: string): string {
  const keys = [...Object.keys(spec.filters)];
  if (spec.projection) keys.push('metrics');
  if (spec.frequency) keys.push('frequency');
  return keys.length ? `filters of "${channel}": ${keys.join(', ')}` : `"${channel}" takes no filters`;
}

/** `real-time` → 0, `30s` → 30000; null when invalid or out of range. */
export function parseFrequency(value: unknown): number | null {
  if (value === 'real-time' || value === 'realtime') return 0;
  if (typeof value !== 'string') return null;
  const ms = parseDurationMs(value);
  if (ms === null || ms < MIN_FREQUENCY_MS || ms > MAX_FREQUENCY_MS) return null;
  return ms;
}

function formatFrequency(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Device ids travel as strings inside filters; numeric ones go back to the client as numbers. */
export function deviceIdOut(id: string): string | number {
  return /^-?(0|[1-9]\d{0,14})$/.test(id) ? Number(id) : id;
}

