/**
 * Dialect wire-code registries. Some dialects' clients expect codes of their own on the wire (Fleet
 * Freedom's numeric `errorCode`); each such table maps the registered {@link ERROR_CODES} onto them, here
 * next to the other registries, so `docs/errors.md` documents every code a client can see and a test
 * fails when the docs fall behind.
 *
 * A registered code a table does not list explicitly falls back by its HTTP status (`byStatus`), so a
 * code added later is still answered sensibly; list it explicitly when the fallback is not right.
 */
import { ERROR_CODES, type ErrorCode } from './codes.js';

/** One wire code: its value, what it means, and the registered codes it answers. */
export interface WireCodeSpec {
  readonly code: number;
  readonly doc: string;
  readonly from: readonly ErrorCode[];
}

/** A dialect's wire codes. */
export interface WireCodeTable<N extends string = string> {
  /** The dialect (its name in the registry). */
  readonly dialect: string;
  /** The field of its frames that carries the code. */
  readonly field: string;
  readonly codes: Readonly<Record<N, WireCodeSpec>>;
  /** The code of success. */
  readonly success: N;
  /** Fallback for registered codes not listed in any `from`, by HTTP status; anything else → `otherwise`. */
  readonly byStatus: Readonly<Record<number, N>>;
  readonly clientError: N;
  readonly otherwise: N;
}

/** Fleet Freedom's `errorCode` values (docs/dialects/fleetfreedom.md). */
export const FLEETFREEDOM_WIRE_CODES = {
  dialect: 'fleetfreedom',
  field: 'errorCode',
  success: 'success',
  codes: {
    success: { code: 0, doc: 'The request succeeded.', from: [] },
    internal: { code: 1, doc: 'An unexpected error; the node logged it with details. Retry later.', from: ['internal_error'] },
    malformed: {
      code: 2,
      doc: 'The frame is not `cmdName {JSON}`, the JSON is invalid, too deep or has a `__proto__`/`constructor`/`prototype` key, or a field is missing or has the wrong type (`message` names it).',
      from: ['invalid_json', 'invalid_message', 'too_deep', 'forbidden_key', 'invalid_filter', 'batch_too_large', 'unsupported_media_type'],
    },
    unknownCommand: { code: 3, doc: 'The command (or a subscription type) is not one Fleet Freedom knows.', from: ['unknown_type', 'unknown_channel'] },
    notLoggedIn: {
      code: 4,
      doc: 'The command needs a logged-in session: send `login` first (or connect with a live ghostId).',
      from: ['not_authenticated', 'invalid_token', 'expired_token', 'revoked_token', 'unauthorized'],
    },
    loginFailed: { code: 5, doc: '`login` refused: unknown user or wrong password (the answer never says which).', from: ['invalid_credentials'] },
    lockedOut: { code: 6, doc: '`login` refused without checking the password: too many failures for this user or address.', from: ['locked_out'] },
    forbidden: {
      code: 7,
      doc: 'Not allowed: another company than the user\'s own, or an operation users may not do (removing their company).',
      from: ['forbidden', 'channel_forbidden', 'user_mismatch'],
    },
    notFound: { code: 8, doc: 'No such object in the user\'s company (objects of other companies are never found either).', from: ['not_found', 'not_subscribed'] },
    versionConflict: {
      code: 9,
      doc: 'A merge or remove carried a `v` that is not the stored one at the parts it touches; nothing changed and the answer carries the stored object.',
      from: ['version_conflict', 'already_exists'],
    },
    rateLimited: {
      code: 10,
      doc: 'Too many messages per second on this connection (metric `switchboard_rate_limit_rejections_total{rule}`), or too many unacknowledged publishes.',
      from: ['rate_limited', 'too_many_in_flight'],
    },
    tooLarge: { code: 11, doc: 'The frame, or the object it would make, is larger than the limit.', from: ['message_too_large'] },
    limitReached: {
      code: 12,
      doc: 'A limit of the connection or the user: too many subscriptions, or too many connections (then the connection is closed with 4009).',
      from: ['too_many_subscriptions', 'connection_limit'],
    },
    unavailable: { code: 13, doc: 'A backend (session service, Redis) is unavailable; retry later.', from: ['unavailable', 'not_replicated', 'publish_outcome_unknown'] },
  },
  byStatus: { 401: 'notLoggedIn', 403: 'forbidden', 404: 'notFound', 409: 'versionConflict', 413: 'tooLarge', 429: 'rateLimited', 503: 'unavailable' },
  clientError: 'malformed',
  otherwise: 'internal',
} as const satisfies WireCodeTable;

/** OISP's `code` values (seed 003's "Basic response codes", plus 413 and 429; docs/dialects/oisp.md). */
export const OISP_WIRE_CODES = {
  dialect: 'oisp',
  field: 'code',
  success: 'ok',
  codes: {
    ok: { code: 200, doc: 'Registered ("Subscribed to ws server"), a `ping` answered ("pong"), an actuation accepted ("Actuation sent").', from: [] },
    unauthorized: {
      code: 401,
      doc: '"Invalid device token" (then close 1008), "Wrong message format" (then close 1007), "Invalid credentials" of an actuation (then close 1008), or a message before registration ("Device not registered").',
      from: ['invalid_json', 'invalid_message', 'unknown_type', 'too_deep', 'forbidden_key', 'invalid_token', 'expired_token', 'invalid_credentials', 'not_authenticated'],
    },
    tooLarge: { code: 413, doc: 'The frame is larger than `OISP_MAX_MESSAGE_BYTES`; the connection stays open.', from: ['message_too_large'] },
    rateLimited: {
      code: 429,
      doc: 'Too many messages per second (closed with 4029 when it goes on), or a connection limit refused the registration (then closed with 4009).',
      from: ['rate_limited', 'connection_limit'],
    },
    serverError: { code: 500, doc: '"Internal server error": a backend (bus, session service) failed, or no device public key is configured.', from: ['internal_error', 'unavailable'] },
  },
  byStatus: { 401: 'unauthorized', 403: 'unauthorized', 413: 'tooLarge', 429: 'rateLimited' },
  clientError: 'unauthorized',
  otherwise: 'serverError',
} as const satisfies WireCodeTable;

/** Every dialect wire-code table, rendered into docs/errors.md. */
export const WIRE_CODE_TABLES: readonly WireCodeTable[] = [FLEETFREEDOM_WIRE_CODES, OISP_WIRE_CODES];

/** The name of the wire code that answers `code` in `table` (explicit `from`, else the HTTP fallback). */
export function wireCodeName<N extends string>(table: WireCodeTable<N>, code: ErrorCode): N {
  for (const [name, spec] of Object.entries(table.codes) as [N, WireCodeSpec][]) if (spec.from.includes(code)) return name;
  const status = ERROR_CODES[code].http;
  const byStatus = table.byStatus[status];
  if (byStatus !== undefined) return byStatus;
  return status >= 400 && status < 500 ? table.clientError : table.otherwise;
}

/** The wire value that answers `code` in `table`. */
export function wireCode<N extends string>(table: WireCodeTable<N>, code: ErrorCode): number {
  return table.codes[wireCodeName(table, code)].code;
}

function tableRow(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

/** The markdown section of one table, for docs/errors.md. */
export function renderWireCodesMarkdown(table: WireCodeTable): string {
  const lines = [
    `### \`${table.dialect}\`: \`${table.field}\``,
    '',
    tableRow(['value', 'name', 'meaning', 'answers']),
    tableRow(['---', '---', '---', '---']),
  ];
  for (const [name, spec] of Object.entries<WireCodeSpec>(table.codes)) {
    lines.push(tableRow([String(spec.code), `\`${name}\``, spec.doc, spec.from.map((c) => `\`${c}\``).join(', ') || '—']));
  }
  const fallback = Object.entries(table.byStatus)
    .map(([status, name]) => `${status} → \`${name}\``)
    .join(', ');
  lines.push(
    '',
    `A registered code not listed above is answered by its HTTP status: ${fallback}; any other 4xx → \`${table.clientError}\`, anything else → \`${table.otherwise}\`.`,
  );
  return lines.join('\n') + '\n';
}
