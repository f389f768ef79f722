/**
 * `fme` client frames (seed 001, "WebSocket Server Messaging Protocol"): `open` (with `ws_stream_ids`, or
 * the older single `ws_stream_id`), `send`, `close` and the two `admin` queries. Pure functions: text in,
 * a command or an error with a registered code out.
 */
import { isPlainObject, parseJsonGuarded, type ErrorCode } from '@switchboard/core';
import { fmeStreamIdError } from './streams.js';

/** The admin queries of the seed ("Getting Information about Open WebSocket Channels"). */
export type FmeAdminQuery = 'getnumchannels' | 'getchannelinfo';

/** A parsed client frame. */
export type FmeCommand =
  /** Stream ids in the order given, without repeats. */
  | { readonly op: 'open'; readonly streams: readonly string[] }
  /** `data`: the JSON text of `ws_msg` (receivers get a string as is, anything else as this text). */
  | { readonly op: 'send'; readonly data: string }
  | { readonly op: 'close' }
  | { readonly op: 'admin'; readonly query: FmeAdminQuery };

/** A frame the codec refuses, with the operation when it was readable. */
export interface FmeParseError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly op?: string;
}

/** Parse limits. */
export interface FmeParseOptions {
  readonly maxDepth: number;
  /** Most stream ids one `open` may name (the connection's stream limit). */
  readonly maxStreams: number;
}

export type FmeParseResult = { readonly ok: true; readonly command: FmeCommand } | { readonly ok: false; readonly error: FmeParseError };

const fail = (code: ErrorCode, message: string, op?: string): FmeParseResult => ({ ok: false, error: op === undefined ? { code, message } : { code, message, op } });

const ADMIN_QUERIES: Readonly<Record<string, FmeAdminQuery>> = {
  'getnumchannels()': 'getnumchannels',
  getnumchannels: 'getnumchannels',
  'getchannelinfo()': 'getchannelinfo',
  getchannelinfo: 'getchannelinfo',
};

/** Parses one text frame. */
export function parseFmeFrame(text: string, opts: FmeParseOptions): FmeParseResult {
  const parsed = parseJsonGuarded(text, opts.maxDepth);
  if (!parsed.ok) return fail(parsed.code, parsed.message);
  const msg = parsed.value;
  if (!isPlainObject(msg)) return fail('invalid_message', 'a message must be a JSON object');
  const op = msg.ws_op;
  if (typeof op !== 'string') return fail('invalid_message', '"ws_op" must be a string: open, send, close or admin');
  switch (op) {
    case 'open':
      return parseOpen(msg, opts);
    case 'send':
      if (!('ws_msg' in msg)) return fail('invalid_message', '"ws_msg" is missing', op);
      return { ok: true, command: { op, data: JSON.stringify(msg.ws_msg) } };
    case 'close':
      return { ok: true, command: { op } };
    case 'admin': {
      const q = msg.ws_msg;
      if (typeof q !== 'string') return fail('invalid_message', '"ws_msg" must name an admin query: getnumchannels() or getchannelinfo()', op);
      const query = Object.prototype.hasOwnProperty.call(ADMIN_QUERIES, q.trim()) ? ADMIN_QUERIES[q.trim()] : undefined;
      if (query === undefined) return fail('unknown_type', `unknown admin query "${q.slice(0, 32)}": getnumchannels() or getchannelinfo()`, op);
      return { ok: true, command: { op, query } };
    }
    default:
      return fail('unknown_type', `unknown ws_op "${op.slice(0, 32)}": open, send, close or admin`);
  }
}

function parseOpen(msg: Record<string, unknown>, opts: FmeParseOptions): FmeParseResult {
  const many = msg.ws_stream_ids;
  const one = msg.ws_stream_id;
  if (many === undefined && one === undefined) return fail('invalid_message', '"ws_stream_ids" (an array of stream ids) is missing', 'open');
  if (many !== undefined && !Array.isArray(many)) return fail('invalid_message', '"ws_stream_ids" must be an array of strings', 'open');
  // Copied without spreading: a frame may hold tens of thousands of ids.
  const ids: unknown[] = many !== undefined ? (many as unknown[]).slice() : [];
  if (one !== undefined) ids.push(one);
  if (ids.length === 0) return fail('invalid_message', '"ws_stream_ids" is empty', 'open');
  const streams: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const err = fmeStreamIdError(id);
    if (err !== null) {
      const where = many !== undefined && i < (many as unknown[]).length ? `ws_stream_ids[${i}]` : 'ws_stream_id';
      return fail('invalid_message', `${where}: ${err}`, 'open');
    }
    if (!seen.has(id as string)) {
      seen.add(id as string);
      streams.push(id as string);
      // Stops at the limit: a frame naming thousands of ids costs no more than the limit.
      if (streams.length > opts.maxStreams) return fail('too_many_subscriptions', `at most ${opts.maxStreams} streams per connection`, 'open');
    }
  }
  return { ok: true, command: { op: 'open', streams } };
}
