import { describe, expect, it } from 'vitest';
import { busChannel, channelNameError, isValidTenant, splitBusChannel } from './channels.js';

describe('channel names', () => {
  it('accepts the conservative alphabet', () => {
    for (const n of ['telemetry', 'fme:stream-1', 'fleet:42:assetGeneral', 'a', 'x/y.z@w_v']) expect(channelNameError(n)).toBeUndefined();
  });
  it('refuses what could break a Redis key or hash tag', () => {
    for (const n of ['', '{0}', 'a{b}', 'a b', 'a\nb', '-lead', 'x'.repeat(256), '__proto__'])
      expect(channelNameError(n)).toMatchObject({ code: 'invalid_message' });
  });
});

describe('channel namespace', () => {
  it('builds <dialect>:<tenant>:<name> and splits it back', () => {
    const ch = busChannel('valtronics', 'acme', 'telemetry');
    expect(ch).toBe('valtronics:acme:telemetry');
    expect(splitBusChannel(ch)).toEqual({ dialect: 'valtronics', tenant: 'acme', name: 'telemetry' });
    expect(splitBusChannel('fme:default:a:b')).toEqual({ dialect: 'fme', tenant: 'default', name: 'a:b' });
    for (const bad of ['telemetry', ':a:b', 'a::b', 'a:b:']) expect(splitBusChannel(bad)).toBeNull();
  });
  it('a tenant is one segment: a tenant cannot reach into another tenant or dialect', () => {
    for (const t of ['acme', 'ACME-1', 'a.b_c@d']) expect(isValidTenant(t)).toBe(true);
    for (const t of ['', 'a:b', 'a{b}', ' a', 'x'.repeat(65), 1, null]) expect(isValidTenant(t)).toBe(false);
    expect(() => busChannel('valtronics', 'a:telemetry', 'x')).toThrow(/not a valid tenant/);
    expect(() => busChannel('val:tronics', 'a', 'x')).toThrow(/not a valid dialect/);
    expect(() => busChannel('valtronics', 'a', 'x y')).toThrow(/not a valid channel/);
  });
});
