import { describe, expect, it } from 'vitest';
import { checkValtronicsAttrs, parseValtronicsMessage } from '../../src/valtronics/index.js';

describe('valtronics publish attrs: checked against what the filters can match', () => {
  it('an attr no filter of the channel reads is an error naming the ones that are read', () => {
    const r = checkValtronicsAttrs('telemetry', { device_id: 1, severity: 'critical' });
    expect(r.errors).toEqual(['attr "severity" is matched by no filter of "telemetry" (its filters match: device_id)']);
    expect(r.warnings).toEqual([]);
    // devices: the `status_types` filter matches the `status` attr.
    expect(checkValtronicsAttrs('devices', { device_id: 1, status: 'offline' })).toEqual({ errors: [], warnings: [] });
    expect(checkValtronicsAttrs('devices', { status_types: 'offline' }).errors[0]).toMatch(/"status_types".*device_id, status/);
    expect(checkValtronicsAttrs('system', { x: 1 }).errors[0]).toMatch(/has no filters/);
  });

  it('every attr the check accepts is one a subscribe filter of that channel can name', () => {
    const filterKeyOf: Record<string, string> = { device_id: 'device_id', severity: 'severity', alert_type: 'alert_type', status: 'status_types' };
    for (const channel of ['telemetry', 'alerts', 'devices'] as const) {
      for (const [attr, key] of Object.entries(filterKeyOf)) {
        const accepted = checkValtronicsAttrs(channel, { [attr]: 'v' }).errors.length === 0;
        const parsed = parseValtronicsMessage({ type: 'subscribe', channel, [key]: ['v'] }, { maxDepth: 8, maxBatch: 50, endpointChannel: null }, false);
        expect([channel, attr, accepted]).toEqual([channel, attr, parsed.ok]);
      }
    }
  });

  it('values unlike the seed\'s are warnings: a device id that is not a number, an unknown severity or status', () => {
    const r = checkValtronicsAttrs('alerts', { device_id: 'abc', severity: 'bogus', alert_type: 'anything' });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toMatch(/^device_id "abc" is not a number/);
    expect(r.warnings[1]).toMatch(/^severity "bogus" is none of the values the seed's clients filter on \(critical, warning\)/);
    expect(checkValtronicsAttrs('alerts', { device_id: 7, severity: 'warning' })).toEqual({ errors: [], warnings: [] });
    expect(checkValtronicsAttrs('alerts', { device_id: '12' }).warnings).toEqual([]);
    expect(checkValtronicsAttrs('devices', { device_id: 1.5, status: 'asleep' }).warnings).toHaveLength(2);
  });
});
