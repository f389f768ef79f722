import { describe, expect, it } from 'vitest';
import { ChannelAllowList, isValidChannelName } from './channels.js';

describe('channel names', () => {
  it('accepts the conservative alphabet', () => {
    for (const n of ['telemetry', 'fme:stream-1', 'fleet:42:assetGeneral', 'a', 'x/y.z@w_v']) expect(isValidChannelName(n)).toBe(true);
  });
  it('refuses what could break a Redis key or hash tag', () => {
    for (const n of ['', '{0}', 'a{b}', 'a b', 'a\nb', '-lead', 'x'.repeat(129), 42, null, '__proto__'])
      expect(isValidChannelName(n)).toBe(false);
  });
  it('allow-list takes exact names and prefixes', () => {
    const l = new ChannelAllowList(['telemetry', 'fme:*']);
    expect(l.allows('telemetry')).toBe(true);
    expect(l.allows('fme:abc')).toBe(true);
    expect(l.allows('fme:')).toBe(false);
    expect(l.allows('alerts')).toBe(false);
    expect(l.allows('fme:{x}')).toBe(false);
  });
});
