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

describe('the channel name caches', () => {
  it('never let an invalid name through, however the valid ones before it were split', () => {
    // A cache keyed by the joined name would answer these from the first call's entry.
    expect(busChannel('va', 'acme', 'x:y')).toBe('va:acme:x:y');
    expect(() => busChannel('va:acme', 'x', 'y')).toThrow(/not a valid dialect/);
    expect(() => busChannel('va', 'acme:x', 'y')).toThrow(/not a valid tenant/);
    for (let i = 0; i < 2; i++) {
      expect(() => busChannel('va', 'acme', 'x y')).toThrow(/not a valid channel/);
      expect(channelNameError('va:acme:x y')).toMatchObject({ code: 'invalid_message' });
    }
  });

  it('stay right past their bound: earlier names again, invalid names still refused', () => {
    for (let i = 0; i < 10_000; i++) {
      expect(busChannel('va', `t${i % 7}`, `n${i}`)).toBe(`va:t${i % 7}:n${i}`);
      if (i % 1000 === 0) {
        expect(() => busChannel('va', `t${i % 7}`, `n${i}{x}`)).toThrow(/not a valid channel/);
        expect(channelNameError(`va:t:{${i}}`)).toMatchObject({ code: 'invalid_message' });
        expect(busChannel('va', 't0', 'n0')).toBe('va:t0:n0');
      }
    }
    expect(busChannel('va', 't1', 'n1')).toBe('va:t1:n1');
    expect(() => busChannel('va', 't1', 'x'.repeat(256))).toThrow(/not a valid channel/);
    expect(channelNameError('x'.repeat(256))).toMatchObject({ code: 'invalid_message' });
  });
});
