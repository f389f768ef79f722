import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkJsonValue, isPlainObject, type AttrValue, type Attrs } from '@switchboard/core';
import { normalizeValtronicsPublish, type ValtronicsChannel } from '../../src/valtronics/index.js';

/**
 * The normalisation as it was written before its fast paths (every attr map copied, every payload rebuilt
 * and serialised): the fast paths must give exactly its answers, text of the data included.
 */
function reference(channel: ValtronicsChannel, attrs: Attrs, data: unknown, maxDepth: number) {
  if (channel === 'system') return { ok: false, code: 'channel_forbidden', message: `"${channel}" is produced by each node and cannot be published` };
  if (!isPlainObject(data)) return { ok: false, code: 'invalid_message', message: `"data" must be a JSON object for "${channel}"` };
  const guard = checkJsonValue(data, maxDepth);
  if (guard) return { ok: false, ...guard };
  const fromData = (key: string): AttrValue | undefined => {
    const v = data[key];
    return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
  };
  const outAttrs: Record<string, AttrValue> = { ...attrs };
  if (channel === 'telemetry') {
    const d = fromData('device_id');
    if (outAttrs.device_id === undefined && d !== undefined) outAttrs.device_id = d;
    if (outAttrs.device_id === undefined) return { ok: false, code: 'invalid_message', message: 'telemetry needs attrs.device_id' };
    const metrics = Object.prototype.hasOwnProperty.call(data, 'telemetry') && isPlainObject(data.telemetry) ? data.telemetry : data;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(metrics)) if (k !== 'device_id') copy[k] = v;
    return { ok: true, value: { attrs: outAttrs, data: JSON.stringify(copy) } };
  }
  const keys = channel === 'alerts' ? ['device_id', 'severity', 'alert_type'] : ['device_id', 'status'];
  const merged: Record<string, unknown> = {};
  for (const key of keys) {
    const dataKey = key === 'status' ? 'new_status' : key;
    const d = fromData(dataKey);
    if (outAttrs[key] === undefined && d !== undefined) outAttrs[key] = d;
    if (outAttrs[key] !== undefined && data[dataKey] === undefined) merged[dataKey] = outAttrs[key];
  }
  if (channel === 'devices' && outAttrs.device_id === undefined) return { ok: false, code: 'invalid_message', message: 'device status updates need attrs.device_id' };
  for (const [k, v] of Object.entries(data)) if (!['type', 'channel', 'offset', 'epoch'].includes(k)) merged[k] = v;
  return { ok: true, value: { attrs: outAttrs, data: JSON.stringify(merged) } };
}

// Keys that matter to the normalisation (attr fields, reserved fields, integer-like keys that JSON orders
// first), written as JSON text so that the payloads are what JSON.parse makes.
const KEYS = ['device_id', 'severity', 'alert_type', 'new_status', 'status', 'telemetry', 'type', 'channel', 'offset', 'epoch', '7', '0', 'x', 'é', 'toJSON'];
const scalar = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null));
const { value: jsonText } = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar.map((v) => JSON.stringify(v)),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
    fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('value')), { maxLength: 6 }).map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(', ')}}`),
  ),
}));
const objectText = fc.array(fc.tuple(fc.constantFrom(...KEYS), jsonText), { maxLength: 8 }).map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`);
const attrsArb = fc.dictionary(fc.constantFrom('device_id', 'severity', 'alert_type', 'status', 'other'), fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.boolean()), { maxKeys: 4 });

describe('normalizeValtronicsPublish', () => {
  it('answers exactly as the rebuild-everything normalisation, data text included', () => {
    fc.assert(
      fc.property(fc.constantFrom<ValtronicsChannel>('alerts', 'devices', 'telemetry', 'system'), attrsArb, objectText, fc.integer({ min: 1, max: 4 }), (channel, attrs, text, maxDepth) => {
        const data: unknown = JSON.parse(text);
        const before = JSON.stringify(attrs);
        expect(normalizeValtronicsPublish(channel, attrs, data, maxDepth)).toEqual(reference(channel, attrs, data, maxDepth));
        // The caller's attrs are never changed (a copy is made when an attr is added).
        expect(JSON.stringify(attrs)).toBe(before);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps the data text when nothing is added or dropped, and rebuilds it otherwise', () => {
    const plain = normalizeValtronicsPublish('alerts', {}, JSON.parse('{"s":1,"p":"x"}'), 8);
    expect(plain).toEqual({ ok: true, value: { attrs: {}, data: '{"s":1,"p":"x"}' } });
    const filled = normalizeValtronicsPublish('alerts', { device_id: 3 }, JSON.parse('{"7":1,"s":1}'), 8);
    expect(filled).toMatchObject({ ok: true, value: { data: '{"7":1,"device_id":3,"s":1}' } });
    const dropped = normalizeValtronicsPublish('devices', { device_id: 3 }, JSON.parse('{"type":"x","new_status":"up"}'), 8);
    expect(dropped).toEqual({ ok: true, value: { attrs: { device_id: 3, status: 'up' }, data: '{"device_id":3,"new_status":"up"}' } });
  });

  it('an object that is not what JSON.parse makes is rebuilt, as before', () => {
    const inherited = Object.assign(Object.create({ toJSON: () => 'proto' }) as Record<string, unknown>, { s: 1 });
    expect(normalizeValtronicsPublish('alerts', {}, inherited, 8)).toEqual({ ok: true, value: { attrs: {}, data: '{"s":1}' } });
    const own = { toJSON: () => 'own', t: 2 };
    expect(normalizeValtronicsPublish('telemetry', { device_id: 1 }, own, 8)).toEqual(reference('telemetry', { device_id: 1 }, own, 8));
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { device_id: 1, s: 1 });
    expect(normalizeValtronicsPublish('alerts', {}, bare, 8)).toEqual(reference('alerts', {}, bare, 8));
  });

  it('still refuses forbidden keys and nesting inside the data', () => {
    expect(normalizeValtronicsPublish('alerts', {}, JSON.parse('{"a":{"__proto__":1}}'), 8)).toMatchObject({ ok: false, code: 'forbidden_key' });
    expect(normalizeValtronicsPublish('telemetry', { device_id: 1 }, JSON.parse('{"a":[[[1]]]}'), 3)).toMatchObject({ ok: false, code: 'too_deep' });
  });
});
