/**
 * `oisp` client frames (seed 003, OISP IoT WebSocket server): the device registration
 * `{"type":"device","deviceId","deviceToken"}`, `{"type":"ping"}`, and a backend's actuation
 * `{"type":"actuation","credentials":{"username","password"},"body":{…}}`. Pure functions: text in, a
 * command or an error with a registered code out.
 */
import { isPlainObject, isValidTenant, parseJsonGuarded, type ErrorCode } from '@switchboard/core';
import { oispDeviceIdError } from './devices.js';

/** Longest device token accepted (a JWT of the platform is well under 2 KB). */
export const OISP_MAX_TOKEN_BYTES = 8 * 1024;

/** A parsed client frame. */
export type OispCommand =
  | { readonly type: 'device'; readonly deviceId: string; readonly deviceToken: string }
  | { readonly type: 'ping' }
  | {
      readonly type: 'actuation';
      readonly username: string;
      readonly password: string;
      /** The target device (`body.deviceId`). */
      readonly deviceId: string;
      /** The target's tenant: `body.accountId` when present, else null (the default tenant). */
      readonly accountId: string | null;
      /** `body` as JSON text: the `content` the device receives. */
      readonly data: string;
    };

/** A frame the codec refuses. */
export interface OispParseError {
  readonly code: ErrorCode;
  readonly message: string;
}

export type OispParseResult = { readonly ok: true; readonly command: OispCommand } | { readonly ok: false; readonly error: OispParseError };

const fail = (code: ErrorCode, message: string): OispParseResult => ({ ok: false, error: { code, message } });

/** Parses one text frame (`maxDepth` bounds the nesting of the whole frame). */
export function parseOispFrame(text: string, maxDepth: number): OispParseResult {
  const parsed = parseJsonGuarded(text, maxDepth);
  if (!parsed.ok) return fail(parsed.code, parsed.message);
  const msg = parsed.value;
  if (!isPlainObject(msg)) return fail('invalid_message', 'a message must be a JSON object');
  const type = msg.type;
  if (typeof type !== 'string') return fail('invalid_message', '"type" must be a string: device, ping or actuation');
  switch (type) {
    case 'device': {
      const idErr = oispDeviceIdError(msg.deviceId);
      if (idErr !== null) return fail('invalid_message', `"deviceId": ${idErr}`);
      const token = msg.deviceToken;
      if (typeof token !== 'string' || token.length === 0) return fail('invalid_message', '"deviceToken" must be a non-empty string');
      if (token.length > OISP_MAX_TOKEN_BYTES) return fail('invalid_message', `"deviceToken" must be at most ${OISP_MAX_TOKEN_BYTES} bytes`);
      return { ok: true, command: { type, deviceId: msg.deviceId as string, deviceToken: token } };
    }
    case 'ping':
      return { ok: true, command: { type } };
    case 'actuation':
      return parseActuation(msg);
    default:
      return fail('unknown_type', `unknown type "${type.slice(0, 32)}": device, ping or actuation`);
  }
}

function parseActuation(msg: Record<string, unknown>): OispParseResult {
  const creds = msg.credentials;
  if (!isPlainObject(creds) || typeof creds.username !== 'string' || typeof creds.password !== 'string')
    return fail('invalid_message', '"credentials" must be {"username":string,"password":string}');
  const body = msg.body;
  if (!isPlainObject(body)) return fail('invalid_message', '"body" must be an object (the actuation content)');
  const idErr = oispDeviceIdError(body.deviceId);
  if (idErr !== null) return fail('invalid_message', `"body.deviceId": ${idErr}`);
  const accountId = body.accountId;
  if (accountId !== undefined && !isValidTenant(accountId)) return fail('invalid_message', '"body.accountId" must be an account id (letters, digits, "_", ".", "@", "-")');
  return {
    ok: true,
    command: {
      type: 'actuation',
      username: creds.username,
      password: creds.password,
      deviceId: body.deviceId as string,
      accountId: accountId === undefined ? null : accountId,
      data: JSON.stringify(body),
    },
  };
}
