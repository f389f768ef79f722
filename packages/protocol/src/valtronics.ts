/**
 * The `valtronics` dialect codec (seed 002): pure functions from client frames to commands and from
 * results/envelopes to server frames. No I/O, shared by the edge and the client SDK.
 */
import {
  checkJsonValue,
  isPlainObject,
  parseDurationMs,
  parseJsonGuarded,
  type AttrValue,
  type Attrs,
  type Envelope,
  type ErrorCode,
  type Filter,
  type StreamPosition,
} from '@switchboard/core';

/** The four channels of the seed. */
export const VALTRONICS_CHANNELS = ['telemetry', 'alerts', 'devices', 'system'] as const;
/** One of {@link VALTRONICS_CHANNELS}. */
export type ValtronicsChannel = (typeof VALTRONICS_CHANNELS)[number];

/** Specialised endpoints and the channel each is scoped to; `/ws` serves every channel. */
export const VALTRONICS_ENDPOINTS: Readonly<Record<string, ValtronicsChannel | null>> = {
  '/ws': null,
  '/ws/telemetry': 'telemetry',
  '/ws/alerts': 'alerts',
  '/ws/system': 'system',
  '/ws/devices': 'devices',
};

interface ChannelSpec {
  /** `type` of the update frames. */
  readonly updateType: string;
  /** Filter key on the wire → attribute it matches. */
  readonly filters: Readonly<Record<string, string>>;
  /** Whether `metrics` projects the payload. */
  readonly projection: boolean;
  /** Whether `frequency` (conflation) is accepted. */
  readonly frequency: boolean;
  /** Node-local channel, produced by the edge itself and never published. */
  readonly local: boolean;
}

const CHANNELS: Readonly<Record<ValtronicsChannel, ChannelSpec>> = {
  telemetry: {
    updateType: 'telemetry_update',
    filters: { device_id: 'device_id' },
    projection: true,
    frequency: true,
    local: false,
  },
  alerts: {
    updateType: 'alert',
    filters: { device_id: 'device_id', severity: 'severity', alert_type: 'alert_type' },
    projection: false,
    frequency: false,
    local: false,
  },
  devices: {
    updateType: 'device_status_update',
    filters: { device_id: 'device_id', status_types: 'status' },
    projection: false,
    frequency: true,
    local: false,
  },
  system: { updateType: 'system_status_update', filters: {}, projection: true, frequency: true, local: true },
};

/** Every filter key a seed client may put at the top level of `subscribe` or under `filters`. */
const FILTER_KEYS = new Set(['device_id', 'metrics', 'frequency', 'severity', 'alert_type', 'status_types']);

const MIN_FREQUENCY_MS = 100;
const MAX_FREQUENCY_MS = 3_600_000;
const MAX_FILTER_VALUES = 1000;
const MAX_VALUE_LENGTH = 128;

/** True when `name` is one of the four valtronics channels. */
export function isValtronicsChannel(name: unknown): name is ValtronicsChannel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(CHANNELS, name);
}

/** True for the node-local `system` channel. */
export function isLocalChannel(name: ValtronicsChannel): boolean {
  return CHANNELS[name].local;
}

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
  const parsed = parseJsonGuarded(text, opts.maxDepth);
  if (!parsed.ok) return fail(parsed.code, parsed.message);
  return parseValtronicsMessage(parsed.value, opts, false);
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
  const spec = CHANNELS[channel];
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
function deviceIdOut(id: string): string | number {
  return /^-?(0|[1-9]\d{0,14})$/.test(id) ? Number(id) : id;
}

// ---------------------------------------------------------------------------------------------------
// Server frames

function withId(fields: Record<string, unknown>, id: RequestId): Record<string, unknown> {
  if (id !== undefined) fields.id = id;
  return fields;
}

/** `{"type":"error","code","message"}` plus context (`request`, `channel`, `id`) when known. */
export function renderError(err: ValtronicsParseError): string {
  const out: Record<string, unknown> = { type: 'error', code: err.code, message: err.message };
  if (err.requestType) out.request = err.requestType;
  if (err.channel) out.channel = err.channel;
  return JSON.stringify(withId(out, err.id));
}

/** Successful `auth_response`. */
export function renderAuthOk(args: {
  id: RequestId;
  userId: string;
  roles: readonly string[];
  expiresAt: number | undefined;
  sessionId?: string;
  resumed?: boolean;
}): string {
  const out: Record<string, unknown> = {
    type: 'auth_response',
    success: true,
    user_id: args.userId,
    roles: args.roles,
  };
  if (args.expiresAt !== undefined) out.expires_at = new Date(args.expiresAt * 1000).toISOString();
  if (args.sessionId !== undefined) out.session_id = args.sessionId;
  if (args.resumed !== undefined) out.resumed = args.resumed;
  return JSON.stringify(withId(out, args.id));
}

/** Failed `auth_response`: `success:false` with `error` (a registered code) and `message`. */
export function renderAuthFailed(id: RequestId, code: ErrorCode, message: string): string {
  return JSON.stringify(withId({ type: 'auth_response', success: false, error: code, message }, id));
}

/** `subscribe_response` with the understood filters and the channel position. */
export function renderSubscribeOk(args: {
  id: RequestId;
  channel: string;
  filters: Record<string, unknown>;
  position: StreamPosition | null;
  recovered?: boolean;
  replayed?: number;
}): string {
  const out: Record<string, unknown> = { type: 'subscribe_response', channel: args.channel, success: true };
  if (Object.keys(args.filters).length > 0) out.filters = args.filters;
  if (args.position) {
    out.epoch = args.position.epoch;
    out.offset = args.position.offset;
  }
  if (args.recovered !== undefined) out.recovered = args.recovered;
  if (args.replayed !== undefined) out.replayed = args.replayed;
  return JSON.stringify(withId(out, args.id));
}

/** `unsubscribe_response`; `remaining` lists the devices still subscribed after a partial unsubscribe. */
export function renderUnsubscribeOk(id: RequestId, channel: string, remaining?: readonly string[]): string {
  const out: Record<string, unknown> = { type: 'unsubscribe_response', channel, success: true };
  if (remaining) out.device_id = remaining.map(deviceIdOut);
  return JSON.stringify(withId(out, id));
}

/** `pong`, echoing the client's `timestamp`. */
export function renderPong(id: RequestId, timestamp: unknown, nowMs: number): string {
  const out: Record<string, unknown> = { type: 'pong' };
  if (typeof timestamp === 'string' || typeof timestamp === 'number') out.timestamp = timestamp;
  out.server_time = new Date(nowMs).toISOString();
  return JSON.stringify(withId(out, id));
}

// ---------------------------------------------------------------------------------------------------
// Publishing: normalise what a backend publishes so that rendering is plain string splicing.

/** A publish normalised for a valtronics channel: attrs for filters and the JSON text of the payload. */
export interface NormalizedPublish {
  readonly attrs: Attrs;
  readonly data: string;
}

const RESERVED_FIELDS = new Set(['type', 'channel', 'offset', 'epoch']);

function attrFromData(data: Record<string, unknown>, key: string): AttrValue | undefined {
  const v = data[key];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/**
 * Checks and normalises a publish to a valtronics channel. For `alerts` and `devices` the attrs that
 * filters use (`device_id`, `severity`, `alert_type`, `status`) and the message fields are made
 * consistent: an attr missing is taken from the data (`status` from `new_status`), a field missing in
 * the data is taken from the attrs. For `telemetry` the data is the metrics map.
 */
export function normalizeValtronicsPublish(
  channel: ValtronicsChannel,
  attrs: Attrs,
  data: unknown,
  maxDepth: number,
): { ok: true; value: NormalizedPublish } | { ok: false; code: ErrorCode; message: string } {
  if (CHANNELS[channel].local)
    return { ok: false, code: 'channel_forbidden', message: `"${channel}" is produced by each node and cannot be published` };
  if (!isPlainObject(data)) return { ok: false, code: 'invalid_message', message: `"data" must be a JSON object for "${channel}"` };
  const guard = checkJsonValue(data, maxDepth);
  if (guard) return { ok: false, ...guard };
  const outAttrs: Record<string, AttrValue> = { ...attrs };
  if (channel === 'telemetry') {
    const fromData = attrFromData(data, 'device_id');
    if (outAttrs.device_id === undefined && fromData !== undefined) outAttrs.device_id = fromData;
    if (outAttrs.device_id === undefined)
      return { ok: false, code: 'invalid_message', message: 'telemetry needs attrs.device_id' };
    const metrics = Object.prototype.hasOwnProperty.call(data, 'telemetry') && isPlainObject(data.telemetry) ? data.telemetry : data;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(metrics)) if (k !== 'device_id') copy[k] = v;
    return { ok: true, value: { attrs: outAttrs, data: JSON.stringify(copy) } };
  }
  const keys = channel === 'alerts' ? ['device_id', 'severity', 'alert_type'] : ['device_id', 'status'];
  const merged: Record<string, unknown> = {};
  for (const key of keys) {
    const dataKey = key === 'status' ? 'new_status' : key;
    const fromData = attrFromData(data, dataKey);
    if (outAttrs[key] === undefined && fromData !== undefined) outAttrs[key] = fromData;
    if (outAttrs[key] !== undefined && data[dataKey] === undefined) merged[dataKey] = outAttrs[key];
  }
  if (channel === 'devices' && outAttrs.device_id === undefined)
    return { ok: false, code: 'invalid_message', message: 'device status updates need attrs.device_id' };
  for (const [k, v] of Object.entries(data)) if (!RESERVED_FIELDS.has(k)) merged[k] = v;
  return { ok: true, value: { attrs: outAttrs, data: JSON.stringify(merged) } };
}

// ---------------------------------------------------------------------------------------------------
// Update frames: rendered once per subscriber group, never per subscriber.

let memoEnv: Envelope | null = null;
let memoParsed: Record<string, unknown> = {};

/** Parses an envelope's data once even when many projection groups render the same message. */
function parsedData(env: Envelope): Record<string, unknown> {
  if (memoEnv !== env) {
    memoEnv = env;
    memoParsed = JSON.parse(env.data) as Record<string, unknown>;
  }
  return memoParsed;
}

function project(obj: Record<string, unknown>, keys: readonly string[]): string {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (Object.prototype.hasOwnProperty.call(obj, k)) out[k] = obj[k];
  return JSON.stringify(out);
}

function tail(env: Envelope): string {
  return `"offset":${env.offset},"epoch":${JSON.stringify(env.epoch)}}`;
}

/**
 * Renders an update frame for a valtronics channel: the seed's exact fields plus `offset` and `epoch`.
 * `projection` keeps only the listed telemetry metrics (or system metrics).
 */
export function renderValtronicsUpdate(channel: ValtronicsChannel, env: Envelope, projection: readonly string[] | null): string {
  switch (channel) {
    case 'telemetry': {
      const device = env.attrs.device_id;
      const body = projection ? project(parsedData(env), projection) : env.data;
      return `{"type":"telemetry_update","channel":"telemetry","device_id":${device === undefined ? 'null' : JSON.stringify(device)},"telemetry":${body},${tail(env)}`;
    }
    case 'system': {
      const data = parsedData(env);
      const metrics = isPlainObject(data.metrics) ? data.metrics : {};
      const body = projection ? project(metrics, projection) : JSON.stringify(metrics);
      return `{"type":"system_status_update","channel":"system","metrics":${body},"timestamp":${JSON.stringify(data.timestamp ?? null)},${tail(env)}`;
    }
    default: {
      const type = CHANNELS[channel].updateType;
      // data is a JSON object normalised at publish time: splice its fields in without parsing.
      const inner = env.data.length > 2 ? env.data.slice(1, -1) + ',' : '';
      return `{"type":"${type}","channel":"${channel}",${inner}${tail(env)}`;
    }
  }
}
