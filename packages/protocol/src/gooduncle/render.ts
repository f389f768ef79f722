/**
 * `gooduncle` server frames (seed 004): every response is the seed's envelope
 * `{"session":{"id","roles"},"request":{"time","payload"},"response":{"time","code","errors","payload"},"passport":[…]}`,
 * assembled from JSON texts so that an object's text (a store change event's `data`) is spliced in as is.
 */
import type { ErrorCode } from '@switchboard/core';
import type { GoodUncleFieldError } from './parse.js';

/** The seed's response codes ("Response Codes"), exactly. */
export type GoodUncleCode = 'ok' | 'forbidden' | 'not found' | 'bad request' | 'error';

/**
 * Registered error code → the seed's response code. Credentials and roles are `forbidden`; what does not
 * exist (an object, a topic, a subscription) is `not found`; a request that is wrong as sent is
 * `bad request`; what the server could not do now is `error`.
 */
const WIRE_CODES: Partial<Record<ErrorCode, GoodUncleCode>> = {
  forbidden: 'forbidden',
  channel_forbidden: 'forbidden',
  not_authenticated: 'forbidden',
  invalid_credentials: 'forbidden',
  invalid_token: 'forbidden',
  expired_token: 'forbidden',
  user_mismatch: 'forbidden',
  locked_out: 'forbidden',
  connection_limit: 'forbidden',
  not_found: 'not found',
  unknown_channel: 'not found',
  not_subscribed: 'not found',
  invalid_json: 'bad request',
  invalid_message: 'bad request',
  unknown_type: 'bad request',
  message_too_large: 'bad request',
  too_deep: 'bad request',
  forbidden_key: 'bad request',
  invalid_filter: 'bad request',
  version_conflict: 'bad request',
  too_many_subscriptions: 'bad request',
  rate_limited: 'error',
  unavailable: 'error',
  internal_error: 'error',
};

/** The seed's response code of a registered error code (`error` for any code not mapped above). */
export function goodUncleCode(code: ErrorCode): GoodUncleCode {
  return WIRE_CODES[code] ?? 'error';
}

/** The codes mapped explicitly, for the dialect's documentation and tests. */
export const GOODUNCLE_CODE_MAP: Readonly<Partial<Record<ErrorCode, GoodUncleCode>>> = WIRE_CODES;

/** The JSON text of `session`. */
export function goodUncleSessionJson(id: string, roles: readonly string[]): string {
  return JSON.stringify({ id, roles });
}

/** One entry of `passport`: a service or node that took part in the response. */
export type GoodUnclePassportEntry =
  | { readonly service: 'edge'; readonly node: string }
  | { readonly service: 'session' }
  | { readonly service: 'store'; readonly epoch: string; readonly offset: number };

/** What a response is made of; the `…Json` fields are JSON texts spliced in as they are. */
export interface GoodUncleResponse {
  readonly session: string;
  readonly requestTime: number;
  /** `request.payload`: the request as sent (see `parseGoodUncleFrame`), `null` when it could not be echoed. */
  readonly requestJson: string;
  readonly time: number;
  readonly code: GoodUncleCode;
  readonly errors?: readonly GoodUncleFieldError[];
  /** `response.payload` (`{}` when absent). */
  readonly payloadJson?: string;
  readonly passport: readonly GoodUnclePassportEntry[];
}

/** One response frame. */
export function renderGoodUncleResponse(r: GoodUncleResponse): string {
  return (
    `{"session":${r.session},"request":{"time":${r.requestTime},"payload":${r.requestJson}},` +
    `"response":{"time":${r.time},"code":${JSON.stringify(r.code)},"errors":${JSON.stringify(r.errors ?? [])},"payload":${r.payloadJson ?? '{}'}},` +
    `"passport":${JSON.stringify(r.passport)}}`
  );
}

/** How a live query's result set moved with one change: an object entered it, changed in it, or left it. */
export type GoodUncleChange = 'entered' | 'changed' | 'left';

/** The write behind a change, as the client's request types name them. */
export type GoodUncleOp = 'create' | 'update' | 'delete';

/**
 * A live query's update frame in parts, so that a subscriber group renders one with two concatenations:
 * `head` (session and request, fixed while the session's roles are) + time + the middle + the object text
 * + `tail` (the edge's passport entry).
 */
export function goodUncleChangeHead(session: string, requestTime: number, requestJson: string): string {
  return `{"session":${session},"request":{"time":${requestTime},"payload":${requestJson}},"response":{"time":`;
}

/** The tail of a live query's update frame: this edge's passport entry. */
export function goodUncleChangeTail(node: string): string {
  return `,{"service":"edge","node":${JSON.stringify(node)}}]}`;
}

/** A live query's update frame; `objectJson` is the object's JSON text (a change event's `data`). */
export function renderGoodUncleChange(
  head: string,
  time: number,
  change: GoodUncleChange,
  op: GoodUncleOp,
  objectJson: string,
  epochJson: string,
  offset: number,
  tail: string,
): string {
  return (
    `${head}${time},"code":"ok","errors":[],"payload":{"change":"${change}","op":"${op}","object":${objectJson}}},` +
    `"passport":[{"service":"store","epoch":${epochJson},"offset":${offset}}${tail}`
  );
}
