/**
 * The publish API's request checking: which channels a backend may publish to and how each payload is
 * normalised for its dialect before it reaches the bus.
 */
import { isPlainObject, parseJsonGuarded, type AttrValue, type ErrorCode, type PublishRequest } from '@switchboard/core';
import { isValtronicsChannel, normalizeValtronicsPublish } from '@switchboard/protocol';

const ATTR_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_ATTRS = 32;
const MAX_ATTR_STRING = 256;

/** A checked publish body: one or many requests. */
export type ParsedPublish =
  | { readonly ok: true; readonly batch: boolean; readonly requests: readonly PublishRequest[] }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly index?: number };

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

function parseOne(value: unknown, maxDepth: number): { ok: true; req: PublishRequest } | { ok: false; code: ErrorCode; message: string } {
  if (!isPlainObject(value)) return { ok: false, code: 'invalid_message', message: 'a message must be an object' };
  const channel = value.channel;
  if (typeof channel !== 'string') return { ok: false, code: 'invalid_message', message: '"channel" must be a string' };
  const attrs = parseAttrs(value.attrs);
  if (!attrs.ok) return { ok: false, code: 'invalid_message', message: attrs.message };
  if (value.data === undefined) return { ok: false, code: 'invalid_message', message: 'missing "data"' };
  if (isValtronicsChannel(channel)) {
    const n = normalizeValtronicsPublish(channel, attrs.attrs, value.data, maxDepth);
    if (!n.ok) return n;
    return { ok: true, req: { channel, attrs: n.value.attrs, data: n.value.data } };
  }
  return { ok: false, code: 'unknown_channel', message: `unknown channel "${channel.slice(0, 64)}"` };
}

/**
 * Parses `{"channel","attrs","data"}` or `{"messages":[...]}` (the batch form). Payloads are depth- and
 * key-checked; attrs must be flat scalars; channels must be publishable.
 */
export function parsePublishBody(text: string, opts: { maxDepth: number; maxBatch: number }): ParsedPublish {
  // Two levels for the envelope (`messages[i].data`) on top of the payload's own limit.
  const parsed = parseJsonGuarded(text, opts.maxDepth + 3);
  if (!parsed.ok) return parsed;
  const body = parsed.value;
  if (!isPlainObject(body)) return { ok: false, code: 'invalid_message', message: 'body must be a JSON object' };
  if (body.messages !== undefined) {
    if (!Array.isArray(body.messages)) return { ok: false, code: 'invalid_message', message: '"messages" must be an array' };
    if (body.messages.length === 0) return { ok: false, code: 'invalid_message', message: '"messages" is empty' };
    if (body.messages.length > opts.maxBatch)
      return { ok: false, code: 'batch_too_large', message: `at most ${opts.maxBatch} messages per request` };
    const requests: PublishRequest[] = [];
    for (let i = 0; i < body.messages.length; i++) {
      const one = parseOne(body.messages[i], opts.maxDepth);
      if (!one.ok) return { ...one, message: `messages[${i}]: ${one.message}`, index: i };
      requests.push(one.req);
    }
    return { ok: true, batch: true, requests };
  }
  const one = parseOne(body, opts.maxDepth);
  if (!one.ok) return one;
  return { ok: true, batch: false, requests: [one.req] };
}
