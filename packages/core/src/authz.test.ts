import { describe, expect, it } from 'vitest';
import { ChannelPolicy, channelPattern } from './authz.js';

describe('ChannelPolicy', () => {
  it('allows everything when no policy is configured', () => {
    expect(new ChannelPolicy({}).allows([], 'valtronics', 'telemetry')).toBe(true);
  });

  it('allows a channel when a role of the identity (or `*`) has a matching pattern', () => {
    const p = new ChannelPolicy({ operator: ['valtronics:*'], viewer: ['valtronics:alerts'], '*': ['valtronics:system'] });
    expect(p.allows(['operator'], 'valtronics', 'telemetry')).toBe(true);
    expect(p.allows(['viewer'], 'valtronics', 'alerts')).toBe(true);
    expect(p.allows(['viewer'], 'valtronics', 'telemetry')).toBe(false);
    expect(p.allows([], 'valtronics', 'system')).toBe(true);
    expect(p.allows([], 'valtronics', 'alerts')).toBe(false);
    expect(p.allows(['operator'], 'fleetfreedom', 'assetGeneral')).toBe(false);
  });

  it('patterns match whole names; regex characters are literal', () => {
    expect(channelPattern('a.b').test('axb')).toBe(false);
    expect(channelPattern('valtronics:alert*').test('valtronics:alerts')).toBe(true);
    expect(channelPattern('valtronics:alert').test('valtronics:alerts')).toBe(false);
  });
});
