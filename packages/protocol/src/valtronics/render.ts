/**
 * `valtronics` server frames (seed 002): replies and update frames. Update frames are rendered once per
 * subscriber group, never per subscriber.
 */
import { isPlainObject, type Envelope, type ErrorCode, type StreamPosition } from '@switchboard/core';
import { updateTypeOf, type ValtronicsChannel } from './channels.js';
import { deviceIdOut, type RequestId, type ValtronicsParseError } from './parse.js';


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
// Update frames: rendered once per subscriber group, never per subscriber.

/**
 * Parses an envelope's data once even when many projection groups render the same message: one cache
 * per renderer family (a dialect instance), so it is explicit who shares it.
 */
export class ParsedDataCache {
  private env: Envelope | null = null;
  private parsed: Record<string, unknown> = {};

  /** The parsed `data` of `env`, parsed only when `env` is not the last one asked for. */
  of(env: Envelope): Record<string, unknown> {
    if (this.env !== env) {
      this.parsed = JSON.parse(env.data) as Record<string, unknown>;
      this.env = env;
    }
    return this.parsed;
  }
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
export function renderValtronicsUpdate(
  channel: ValtronicsChannel,
  env: Envelope,
  projection: readonly string[] | null,
  cache: ParsedDataCache,
): string {
  switch (channel) {
    case 'telemetry': {
      const device = env.attrs.device_id;
      const body = projection ? project(cache.of(env), projection) : env.data;
      return `{"type":"telemetry_update","channel":"telemetry","device_id":${device === undefined ? 'null' : JSON.stringify(device)},"telemetry":${body},${tail(env)}`;
    }
    case 'system': {
      const data = cache.of(env);
      const metrics = isPlainObject(data.metrics) ? data.metrics : {};
      const body = projection ? project(metrics, projection) : JSON.stringify(metrics);
      return `{"type":"system_status_update","channel":"system","metrics":${body},"timestamp":${JSON.stringify(data.timestamp ?? null)},${tail(env)}`;
    }
    default: {
      const type = updateTypeOf(channel);
      // data is a JSON object normalised at publish time: splice its fields in without parsing.
      const inner = env.data.length > 2 ? env.data.slice(1, -1) + ',' : '';
      return `{"type":"${type}","channel":"${channel}",${inner}${tail(env)}`;
    }
  }
}
