/** Backend publishes to a device (`POST /api/publish` with `"dialect":"oisp"`, the channel = the device id). */
import { checkJsonValue, isPlainObject, type ErrorCode } from '@switchboard/core';
import { oispDeviceChannelName, oispDeviceIdError } from './devices.js';

/**
 * An actuation for device `deviceId` with `data` as the inner `content` object (accountId, deviceId,
 * gatewayId, componentId, command, params), normalised, or why not. A `deviceId` inside the content must
 * name the same device: a mismatch is a mistake the device could not detect.
 */
export function normalizeOispPublish(
  deviceId: string,
  data: unknown,
  maxDepth: number,
): { ok: true; name: string; data: string } | { ok: false; code: ErrorCode; message: string } {
  const err = oispDeviceIdError(deviceId);
  if (err !== null) return { ok: false, code: 'invalid_message', message: `"channel" (the device id): ${err}` };
  if (!isPlainObject(data)) return { ok: false, code: 'invalid_message', message: '"data" must be the actuation content object' };
  const bad = checkJsonValue(data, maxDepth);
  if (bad) return { ok: false, ...bad };
  if (data.deviceId !== undefined && data.deviceId !== deviceId)
    return { ok: false, code: 'invalid_message', message: '"data.deviceId" names another device than "channel"' };
  return { ok: true, name: oispDeviceChannelName(deviceId), data: JSON.stringify(data) };
}
