/**
 * Publishing to `valtronics` channels: what a backend publishes is normalised so that rendering is plain
 * string splicing.
 */
import { checkJsonValue, isPlainObject, type AttrValue, type Attrs, type ErrorCode } from '@switchboard/core';
import { isLocalChannel, type ValtronicsChannel } from './channels.js';

/** A publish normalised for a valtronics channel: attrs for filters and the JSON text of the payload. */
export interface NormalizedPublish {
  readonly attrs: Attrs;
  readonly data: string;
}

const RESERVED_FIELDS = new Set(['type', 'channel', 'offset', 'epoch']);

function attrFromData(data: Record<string, unknown>, key: string): AttrValue | undefined {
  const v = data[key];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/**
 * Checks and normalises a publish to a valtronics channel. For `alerts` and `devices` the attrs that
 * filters use (`device_id`, `severity`, `alert_type`, `status`) and the message fields are made
 * consistent: an attr missing is taken from the data (`status` from `new_status`), a field missing in
 * the data is taken from the attrs. For `telemetry` the data is the metrics map.
 */
export function normalizeValtronicsPublish(
  channel: ValtronicsChannel,
  attrs: Attrs,
  data: unknown,
  maxDepth: number,
): { ok: true; value: NormalizedPublish } | { ok: false; code: ErrorCode; message: string } {
  if (isLocalChannel(channel))
    return { ok: false, code: 'channel_forbidden', message: `"${channel}" is produced by each node and cannot be published` };
  if (!isPlainObject(data)) return { ok: false, code: 'invalid_message', message: `"data" must be a JSON object for "${channel}"` };
  const guard = checkJsonValue(data, maxDepth);
  if (guard) return { ok: false, ...guard };
  const outAttrs: Record<string, AttrValue> = { ...attrs };
  if (channel === 'telemetry') {
    const fromData = attrFromData(data, 'device_id');
    if (outAttrs.device_id === undefined && fromData !== undefined) outAttrs.device_id = fromData;
    if (outAttrs.device_id === undefined)
      return { ok: false, code: 'invalid_message', message: 'telemetry needs attrs.device_id' };
    const metrics = Object.prototype.hasOwnProperty.call(data, 'telemetry') && isPlainObject(data.telemetry) ? data.telemetry : data;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(metrics)) if (k !== 'device_id') copy[k] = v;
    return { ok: true, value: { attrs: outAttrs, data: JSON.stringify(copy) } };
  }
  const keys = channel === 'alerts' ? ['device_id', 'severity', 'alert_type'] : ['device_id', 'status'];
  const merged: Record<string, unknown> = {};
  for (const key of keys) {
    const dataKey = key === 'status' ? 'new_status' : key;
    const fromData = attrFromData(data, dataKey);
    if (outAttrs[key] === undefined && fromData !== undefined) outAttrs[key] = fromData;
    if (outAttrs[key] !== undefined && data[dataKey] === undefined) merged[dataKey] = outAttrs[key];
  }
  if (channel === 'devices' && outAttrs.device_id === undefined)
    return { ok: false, code: 'invalid_message', message: 'device status updates need attrs.device_id' };
  for (const [k, v] of Object.entries(data)) if (!RESERVED_FIELDS.has(k)) merged[k] = v;
  return { ok: true, value: { attrs: outAttrs, data: JSON.stringify(merged) } };
}

