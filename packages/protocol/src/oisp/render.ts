/**
 * `oisp` server frames: `{"code":<n>,"content":…}`, as the seed's "Basic response codes" define them —
 * 200 "Subscribed to ws server", 401 "Invalid device token" / "Wrong message format", 500 internal error —
 * and the actuation, code 1024, exactly the seed's frame. docs/dialects/oisp.md lists every frame.
 */

/** Code of an actuation frame. */
export const OISP_ACTUATION_CODE = 1024;

/** The answer to a successful registration (seed: 200 "Subscribed to ws server"). */
export const OISP_SUBSCRIBED = '{"code":200,"content":"Subscribed to ws server"}';

/** The answer to `{"type":"ping"}`. */
export const OISP_PONG = '{"code":200,"content":"pong"}';

/** The answer to an accepted actuation (to the backend that sent it). */
export const OISP_ACTUATION_SENT = '{"code":200,"content":"Actuation sent"}';

/** Messages of the seed's 401 and 500 answers. */
export const OISP_MESSAGES = {
  invalidToken: 'Invalid device token',
  wrongFormat: 'Wrong message format',
  internal: 'Internal server error',
} as const;

/** `{"code":<code>,"content":<message>}`. */
export function renderOispResponse(code: number, content: string): string {
  return JSON.stringify({ code, content });
}

const ACTUATION_HEAD = `{"code":${OISP_ACTUATION_CODE},"content":{"type":"command","transport":"ws","content":`;

/**
 * The actuation frame a device receives for `content` (JSON text of the seed's inner object):
 * `{"code":1024,"content":{"type":"command","transport":"ws","content":<content>}}`, spliced, no other key.
 */
export function renderOispActuation(content: string): string {
  return ACTUATION_HEAD + content + '}}';
}
