/**
 * The registries of error codes and WebSocket close codes. Every code the system emits is declared here
 * with its documentation; `docs/errors.md` and `docs/close-codes.md` are generated from these tables
 * (`npm run docs`) and a test fails when they are out of date or a code is undocumented.
 *
 * Error codes are dialect-neutral: `valtronics` sends them verbatim as `{"type":"error","code":...}`,
 * the other dialects map them onto their own error forms.
 */

import { WIRE_CODE_TABLES, renderWireCodesMarkdown } from './wire-codes.js';

interface ErrorCodeSpec {
  /** HTTP status used when the code answers an HTTP request. */
  readonly http: number;
  readonly doc: string;
}

/** Every error code, with its HTTP status and meaning. */
export const ERROR_CODES = {
  invalid_json: { http: 400, doc: 'The frame or request body is not valid JSON.' },
  invalid_message: {
    http: 400,
    doc: 'The message is JSON but a field is missing or has the wrong type; `message` names the field.',
  },
  unknown_type: { http: 400, doc: "The message's `type` (or command, or object type) is not one the dialect knows." },
  message_too_large: {
    http: 413,
    doc: 'The frame or request body is larger than the configured limit (1 KB per `valtronics` frame by default).',
  },
  too_deep: { http: 400, doc: 'The payload nests objects/arrays deeper than the configured limit.' },
  forbidden_key: {
    http: 400,
    doc: 'The payload contains a `__proto__`, `constructor` or `prototype` key, which is never accepted.',
  },
  batch_too_large: { http: 400, doc: 'A `batch` holds more messages than the limit (50 by default).' },
  too_many_in_flight: {
    http: 429,
    doc: 'A publish socket already has `SWITCHBOARD_PUBLISH_SOCKET_MAX_IN_FLIGHT` messages (20,000 by default) waiting for their acknowledgements: nothing of this frame was published. Wait for acknowledgements before sending more, then send it again (with idempotency keys it is published once).',
  },
  rate_limited: {
    http: 429,
    doc: 'A rate limit was exceeded: messages per second on a connection, or new connections per minute for a user or address. The metric label `rule` says which.',
  },
  not_authenticated: { http: 401, doc: 'The request needs a successful `auth` first.' },
  invalid_token: {
    http: 401,
    doc: 'The token is malformed, has a bad signature, a disallowed algorithm, the wrong issuer or audience, an unknown key id, or is not yet valid.',
  },
  expired_token: { http: 401, doc: 'The token has expired (`exp` is in the past).' },
  user_mismatch: {
    http: 403,
    doc: 'A re-`auth` on an authenticated connection named a different user; refresh tokens must keep the subject.',
  },
  invalid_credentials: { http: 401, doc: 'Login refused: unknown user or wrong password (the answer never says which).' },
  locked_out: {
    http: 429,
    doc: 'Login refused without checking the password: too many failures for this user or address; `retry_after` says when to try again.',
  },
  revoked_token: {
    http: 401,
    doc: 'The token, or the session it names, was revoked: the user logged out, was deleted or changed password, or an admin revoked the session. Log in again.',
  },
  already_exists: { http: 409, doc: 'A user with that name already exists.' },
  unauthorized: { http: 401, doc: 'An HTTP API request lacks a valid `Authorization: Bearer <api key>`.' },
  forbidden: {
    http: 403,
    doc: 'The credentials are valid but do not allow this: an API key scoped to other tenants, a subprotocol/upgrade a dialect refuses, an object of another tenant (a Fleet Freedom company), or a request beyond the roles of the session.',
  },
  unknown_channel: { http: 404, doc: 'The channel does not exist or is not in the allow-list.' },
  channel_forbidden: {
    http: 403,
    doc: 'The channel exists but may not be used here: another specialised endpoint, or a node-local channel that cannot be published to.',
  },
  invalid_filter: {
    http: 400,
    doc: 'A filter key is not accepted on this channel, or its value has the wrong type (e.g. a bad `frequency`).',
  },
  not_subscribed: { http: 400, doc: '`unsubscribe` named a channel or device this connection is not subscribed to; an FME `send` came before any `open`.' },
  too_many_subscriptions: { http: 400, doc: 'The connection already holds the maximum number of subscriptions, or its user does across the cluster.' },
  connection_limit: {
    http: 429,
    doc: 'Admission refused: the per-user or total concurrent connection limit is reached.',
  },
  unsupported_media_type: { http: 415, doc: 'An HTTP request body is not `application/json`.' },
  not_found: { http: 404, doc: 'No such HTTP route, or no such object in the tenant (an object of another tenant is never found either).' },
  version_conflict: {
    http: 409,
    doc: 'A write carried a version (`v`) that is not the stored one at the parts it touches; nothing changed, and the answer carries the stored object.',
  },
  unavailable: { http: 503, doc: 'A backend (bus, session service) is unavailable; retry later.' },
  publish_outcome_unknown: {
    http: 503,
    doc: 'The bus did not answer a publish in time: it may or may not have been committed. Retry with the same idempotency key (`Idempotency-Key` / `idempotency_key`) to publish it exactly once.',
  },
  not_replicated: {
    http: 503,
    doc: 'The publish was committed on the Redis master but fewer than `SWITCHBOARD_PUBLISH_MIN_REPLICAS` replicas acknowledged it within `SWITCHBOARD_PUBLISH_REPLICA_TIMEOUT_MS`: a failover now may lose it, and it may also be delivered. The answer carries its `offset` and `epoch`.',
  },
  internal_error: { http: 500, doc: 'An unexpected error; the node logged it with details.' },
} as const satisfies Record<string, ErrorCodeSpec>;

/** One of the registered error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** A failure that carries a registered code and a human-readable message. */
export class SwitchboardError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SwitchboardError';
  }
}

interface CloseCodeSpec {
  readonly code: number;
  readonly doc: string;
}

/** Every WebSocket close code the server sends, and why. */
export const CLOSE_CODES = {
  normal: { code: 1000, doc: 'Normal closure; `oisp`: the device registered again (on this or another edge) and this older connection was replaced.' },
  frame_too_large_abort: {
    code: 1006,
    doc: 'Not sent on the wire: a frame above the listener\'s hard limit (`maxPayloadBytes`) makes uWebSockets.js drop the TCP connection natively, before any JavaScript runs, so clients report 1006 (abnormal closure). Frames above the softer per-dialect message limit get an error reply and the connection stays open.',
  },
  invalid_payload: {
    code: 1007,
    doc: '`oisp`: the frame was not a readable message (invalid JSON, not an object, a missing or ill-typed field, an unknown `type`), after the answer `{"code":401,"content":"Wrong message format"}`.',
  },
  policy_violation: {
    code: 1008,
    doc: '`oisp`: a device token that does not verify (signature, algorithm, expiry, `sub` of another device) or an actuation with wrong service-account credentials, after the 401 answer.',
  },
  internal_error: { code: 1011, doc: 'The server hit an unexpected error on this connection.' },
  service_restart: {
    code: 1012,
    doc: 'The node is draining (deploy or scale-in): reconnect, possibly to another node, and resume/recover.',
  },
  auth_timeout: { code: 4001, doc: 'No successful `auth` within `authTimeoutMs` of connecting.' },
  auth_failed: { code: 4003, doc: 'Too many failed `auth` attempts on one connection.' },
  slow_consumer: {
    code: 4008,
    doc: 'The client read too slowly: its send buffer passed the backpressure limit (or, with others, the node\'s budget for all send buffers, `SWITCHBOARD_SLOW_CONSUMER_BUDGET_BYTES`), so messages would have been dropped. Reconnect and recover by offset. A publish socket whose publisher does not read its acknowledgements gets it when they pass four times the limit, instead of losing any (what it sent since its last acknowledgement read may or may not be published: resend it with idempotency keys). A client that stopped reading altogether (its buffer drained nothing for one and a half check intervals) cannot read this frame: it is dropped without one (the client sees 1006) as soon as it holds a quarter of its limit, so that its buffer is freed at once.',
  },
  insufficient_state: {
    code: 4010,
    doc: 'The node lost continuity on a subscribed channel and its history no longer covers the gap (e.g. Redis lost data). Reconnect and resubscribe with `recover`: the answer says `recovered: false` explicitly.',
  },
  client_silent: {
    code: 4002,
    doc: 'The client sent nothing for longer than its dialect\'s silence timeout (an application-level keep-alive, e.g. Good Uncle\'s 3000 ms).',
  },
  admission_refused: {
    code: 4009,
    doc: 'A connection limit refused the connection (concurrent per user, total, or new connections per minute).',
  },
  token_expired: {
    code: 4011,
    doc: 'The token the connection authenticated with expired (its `exp` plus the clock-skew allowance `SWITCHBOARD_CLOCK_SKEW_SEC` passed) and no fresh token came: a `valtronics` client renews it before then by sending `auth` again with a new token for the same user. Reconnect with a fresh token.',
  },
  session_revoked: {
    code: 4012,
    doc: 'The identity was revoked while connected: logout, user deleted, password changed, or the session revoked by an admin. Do not reconnect with the same token; log in again.',
  },
  session_replaced: {
    code: 4013,
    doc: 'The session was resumed on another connection (a session lives on one socket at a time); this older one is closed. Do not reconnect automatically, or the two will take the session from each other.',
  },
  rate_limit_abuse: {
    code: 4029,
    doc: 'The client kept sending over its message rate limit after being told (`rateLimitCloseAfter` violations in a row).',
  },
} as const satisfies Record<string, CloseCodeSpec>;

/** Name of a registered close code. */
export type CloseCodeName = keyof typeof CLOSE_CODES;

function tableRow(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

/** Markdown for `docs/errors.md`, generated from {@link ERROR_CODES}. */
export function renderErrorCodesMarkdown(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from packages/core/src/codes.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'Every error the server reports carries one of these codes. The `valtronics` dialect sends them as',
    '`{"type":"error","code":"<code>","message":"..."}` (or as `error` in `auth_response`); the HTTP API',
    'answers `{"error":"<code>","message":"..."}` with the status shown. Other dialects map them onto their',
    'own error forms (see each dialect page).',
    '',
    tableRow(['code', 'HTTP', 'meaning']),
    tableRow(['---', '---', '---']),
  ];
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    lines.push(tableRow([`\`${code}\``, String(spec.http), spec.doc]));
  }
  lines.push(
    '',
    '## Dialect wire codes',
    '',
    'Dialects whose clients expect codes of their own map the codes above onto them',
    '(`packages/core/src/wire-codes.ts`).',
    '',
  );
  for (const table of WIRE_CODE_TABLES) lines.push(renderWireCodesMarkdown(table));
  return lines.join('\n');
}

/** Markdown for `docs/close-codes.md`, generated from {@link CLOSE_CODES}. */
export function renderCloseCodesMarkdown(): string {
  const lines = [
    '# WebSocket close codes',
    '',
    '<!-- Generated from packages/core/src/codes.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'The server closes a WebSocket only with one of these codes. 4000–4999 are Switchboard-specific; 1006 is',
    'never sent, it is what a client reports when the connection is dropped without a close frame.',
    '',
    tableRow(['code', 'name', 'meaning']),
    tableRow(['---', '---', '---']),
  ];
  for (const [name, spec] of Object.entries(CLOSE_CODES)) {
    lines.push(tableRow([String(spec.code), `\`${name}\``, spec.doc]));
  }
  return lines.join('\n') + '\n';
}
