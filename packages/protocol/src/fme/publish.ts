/** Backend publishes to an FME stream (`POST /api/publish` with `"dialect":"fme"`). */
import { checkJsonValue, type ErrorCode } from '@switchboard/core';
import { fmeStreamIdError, fmeStreamName } from './streams.js';

/** A publish to stream `streamId` with `data` as the relayed `ws_msg`, normalised, or why not. */
export function normalizeFmePublish(
  streamId: string,
  data: unknown,
  maxDepth: number,
): { ok: true; name: string; data: string } | { ok: false; code: ErrorCode; message: string } {
  const err = fmeStreamIdError(streamId);
  if (err !== null) return { ok: false, code: 'invalid_message', message: `"channel": ${err}` };
  const bad = checkJsonValue(data, maxDepth);
  if (bad) return { ok: false, ...bad };
  return { ok: true, name: fmeStreamName(streamId), data: JSON.stringify(data) };
}
