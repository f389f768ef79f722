/**
 * FME stream ids and the channel names they become. FME clients name streams with any string; bus
 * channel names allow a conservative alphabet only (they end up in Redis keys). An id made of that
 * alphabet is its own name; any other id is carried as `_` + base64url of its UTF-8 bytes. A plain name
 * starts with a letter or digit, an encoded one with `_`, so two ids never share a name.
 */

/** Longest stream id, in UTF-8 bytes (its encoded name then still fits a channel name with any tenant). */
export const FME_MAX_STREAM_ID_BYTES = 128;

const PLAIN_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$/;
/** In `u` mode a surrogate pair is one code point, so this matches unpaired halves only. */
const LONE_SURROGATE_RE = /[\uD800-\uDFFF]/u;
// TextEncoder and btoa/atob rather than Buffer: the codec is shared with browser clients.
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Why a value cannot be a stream id, or null when it can. */
export function fmeStreamIdError(id: unknown): string | null {
  if (typeof id !== 'string') return 'a stream id must be a string';
  if (id.length === 0) return 'a stream id must not be empty';
  if (LONE_SURROGATE_RE.test(id)) return 'a stream id must be well-formed Unicode';
  if (utf8.encode(id).length > FME_MAX_STREAM_ID_BYTES) return `a stream id must be at most ${FME_MAX_STREAM_ID_BYTES} bytes`;
  return null;
}

/** The channel name (within the tenant) of a valid stream id. */
export function fmeStreamName(id: string): string {
  return PLAIN_RE.test(id) ? id : `_${toBase64Url(utf8.encode(id))}`;
}

/** The stream id a channel name stands for (the inverse of {@link fmeStreamName}). */
export function fmeStreamId(name: string): string {
  return name.startsWith('_') ? utf8Decoder.decode(fromBase64Url(name.slice(1))) : name;
}
