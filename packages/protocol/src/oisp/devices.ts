/**
 * OISP device ids and the channel names they become. A device id of the channel alphabet is its own name;
 * any other id is carried as `_` + base64url of its UTF-8 bytes (a plain name starts with a letter or
 * digit, an encoded one with `_`, so two ids never share a name).
 */

/** Longest device id, in UTF-8 bytes (its encoded name still fits a channel name with any tenant). */
export const OISP_MAX_DEVICE_ID_BYTES = 128;

const PLAIN_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$/;
/** In `u` mode a surrogate pair is one code point, so this matches unpaired halves only. */
const LONE_SURROGATE_RE = /[\uD800-\uDFFF]/u;
// TextEncoder and btoa rather than Buffer: the codec is shared with browser clients.
const utf8 = new TextEncoder();

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Why a value cannot be a device id, or null when it can. */
export function oispDeviceIdError(id: unknown): string | null {
  if (typeof id !== 'string') return 'a device id must be a string';
  if (id.length === 0) return 'a device id must not be empty';
  if (LONE_SURROGATE_RE.test(id)) return 'a device id must be well-formed Unicode';
  if (utf8.encode(id).length > OISP_MAX_DEVICE_ID_BYTES) return `a device id must be at most ${OISP_MAX_DEVICE_ID_BYTES} bytes`;
  return null;
}

/** The channel name (within the tenant) of a valid device id: one channel per device. */
export function oispDeviceChannelName(id: string): string {
  return PLAIN_RE.test(id) ? id : `_${toBase64Url(utf8.encode(id))}`;
}
