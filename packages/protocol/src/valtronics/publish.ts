/**
 * Publishing to `valtronics` channels: what a backend publishes is normalised so that rendering is plain
 * string splicing.
 */
import { checkJsonValue, isPlainObject, type AttrValue, type Attrs, type ErrorCode } from '@switchboard/core';
import { ATTR_DOMAINS, channelSpec, isLocalChannel, type ValtronicsChannel } from './channels.js';

/** A publish normalised for a valtronics channel: attrs for filters and the JSON text of the payload. */
export interface NormalizedPublish {
  readonly attrs: Attrs;
  readonly data: string;
}

const RESERVED_FIELDS = new Set(['type', 'channel', 'offset', 'epoch']);
const ALERT_KEYS = ['device_id', 'severity', 'alert_type'] as const;
const DEVICE_KEYS = ['device_id', 'status'] as const;

function attrFromData(data: Record<string, unknown>, key: string): AttrValue | undefined {
  const v = data[key];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/**
 * True when `JSON.stringify(value)` is exactly the text of a copy of its own properties (what the slow
 * path serialises): an ordinary object, as `JSON.parse` makes them, without a `toJSON` of its own.
 */
function serialisesAsCopy(value: Record<string, unknown>): boolean {
  return Object.getPrototypeOf(value) === Object.prototype && typeof value.toJSON !== 'function';
}

function hasReservedField(data: Record<string, unknown>): boolean {
  return Object.hasOwn(data, 'type') || Object.hasOwn(data, 'channel') || Object.hasOwn(data, 'offset') || Object.hasOwn(data, 'epoch');
}

/**
 * Checks and normalises a publish to a valtronics channel. For `alerts` and `devices` the attrs that
 * filters use (`device_id`, `severity`, `alert_type`, `status`) and the message fields are made
 * consistent: an attr missing is taken from the data (`status` from `new_status`), a field missing in
 * the data is taken from the attrs. For `telemetry` the data is the metrics map. The attrs returned are
 * `attrs` itself when nothing was added to them.
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
  // Copied on the first attr taken from the data, so that a publish that adds none allocates nothing.
  let outAttrs: Record<string, AttrValue> | null = null;
  if (channel === 'telemetry') {
    if (attrs.device_id === undefined) {
      const fromData = attrFromData(data, 'device_id');
      if (fromData === undefined) return { ok: false, code: 'invalid_message', message: 'telemetry needs attrs.device_id' };
      outAttrs = { ...attrs, device_id: fromData };
    }
    const metrics = Object.hasOwn(data, 'telemetry') && isPlainObject(data.telemetry) ? data.telemetry : data;
    // The metrics as they are when there is no device_id to drop: the same text as the copy below.
    if (!Object.hasOwn(metrics, 'device_id') && serialisesAsCopy(metrics)) return { ok: true, value: { attrs: outAttrs ?? attrs, data: JSON.stringify(metrics) } };
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(metrics)) if (k !== 'device_id') copy[k] = v;
    return { ok: true, value: { attrs: outAttrs ?? attrs, data: JSON.stringify(copy) } };
  }
  const keys = channel === 'alerts' ? ALERT_KEYS : DEVICE_KEYS;
  // Whether a field of the attrs goes into the data (then the data is rebuilt, those fields first).
  let fills = false;
  for (const key of keys) {
    const dataKey = key === 'status' ? 'new_status' : key;
    if ((outAttrs ?? attrs)[key] === undefined) {
      const fromData = attrFromData(data, dataKey);
      if (fromData !== undefined) (outAttrs ??= { ...attrs })[key] = fromData;
    }
    if ((outAttrs ?? attrs)[key] !== undefined && data[dataKey] === undefined) fills = true;
  }
  const finalAttrs = outAttrs ?? attrs;
  if (channel === 'devices' && finalAttrs.device_id === undefined)
    return { ok: false, code: 'invalid_message', message: 'device status updates need attrs.device_id' };
  // Nothing to add and nothing to drop: the data's own text is the rebuilt object's.
  if (!fills && !hasReservedField(data) && serialisesAsCopy(data)) return { ok: true, value: { attrs: finalAttrs, data: JSON.stringify(data) } };
  const merged: Record<string, unknown> = {};
  for (const key of keys) {
    const dataKey = key === 'status' ? 'new_status' : key;
    if (finalAttrs[key] !== undefined && data[dataKey] === undefined) merged[dataKey] = finalAttrs[key];
  }
  for (const [k, v] of Object.entries(data)) if (!RESERVED_FIELDS.has(k)) merged[k] = v;
  return { ok: true, value: { attrs: finalAttrs, data: JSON.stringify(merged) } };
}


/** What a publish's attrs can reach: `errors` no subscriber can ever match, `warnings` look like mistakes. */
export interface AttrCheck {
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

const INTEGER_RE = /^-?(0|[1-9]\d*)$/;

/**
 * Checks the attrs of a publish to `channel` against what its filters can match: an attr no filter of
 * the channel reads is an error (it can only be a mistake: attrs exist for filters); a value unlike the
 * seed's (a device id that is not a number, a severity none of the seed's clients filter on) is a
 * warning, since a subscriber may still filter on exactly that value.
 */
export function checkValtronicsAttrs(channel: ValtronicsChannel, attrs: Attrs): AttrCheck {
  const spec = channelSpec(channel);
  const matched = [...new Set(Object.values(spec.filters))];
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(attrs)) {
    if (!matched.includes(key)) {
      errors.push(
        matched.length === 0
          ? `attr "${key}": "${channel}" has no filters, so no attr reaches a subscriber`
          : `attr "${key}" is matched by no filter of "${channel}" (its filters match: ${matched.join(', ')})`,
      );
      continue;
    }
    const domain = ATTR_DOMAINS[key];
    const text = String(value);
    if (domain?.integer && !(typeof value === 'number' ? Number.isInteger(value) : INTEGER_RE.test(text)))
      warnings.push(`${key} "${text}" is not a number like the seed's device ids: only a subscriber filtering on exactly "${text}" receives it`);
    if (domain?.seedValues && !domain.seedValues.includes(text))
      warnings.push(`${key} "${text}" is none of the values the seed's clients filter on (${domain.seedValues.join(', ')}): only a subscriber filtering on exactly "${text}" (or not on ${key}) receives it`);
  }
  return { errors, warnings };
}
