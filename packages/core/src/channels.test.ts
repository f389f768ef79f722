import { describe, expect, it } from 'vitest';
import { channelNameError } from './channels.js';

describe('channel names', () => {
  it('accepts the conservative alphabet', () => {
    for (const n of ['telemetry', 'fme:stream-1', 'fleet:42:assetGeneral', 'a', 'x/y.z@w_v']) expect(channelNameError(n)).toBeUndefined();
  });
  it('refuses what could break a Redis key or hash tag', () => {
    for (const n of ['', '{0}', 'a{b}', 'a b', 'a\nb', '-lead', 'x'.repeat(129), '__proto__'])
      expect(channelNameError(n)).toMatchObject({ code: 'invalid_message' });
  });
});
