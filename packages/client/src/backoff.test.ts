import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, closeAction } from './backoff.js';

describe('backoffDelayMs', () => {
  it('is full jitter: uniformly between 0 and min(max, initial · 2^attempt)', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 600_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, initial, max, r) => {
        const cap = Math.min(max, initial * 2 ** Math.min(attempt, 30));
        const d = backoffDelayMs(attempt, initial, max, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(cap);
        expect(d).toBe(Math.floor(r * cap));
      }),
    );
  });

  it('doubles its cap per attempt up to the maximum', () => {
    const top = (attempt: number) => backoffDelayMs(attempt, 500, 30_000, () => 0.999999);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50].map(top)).toEqual([499, 999, 1999, 3999, 7999, 15_999, 29_999, 29_999, 29_999]);
    expect(backoffDelayMs(3, 500, 30_000, () => 0)).toBe(0);
  });

  it('spreads a crowd: 1000 clients dropped at once do not come back in the same 100 ms', () => {
    const delays = Array.from({ length: 1000 }, () => backoffDelayMs(4, 500, 30_000));
    const buckets = new Map<number, number>();
    for (const d of delays) buckets.set(Math.floor(d / 100), (buckets.get(Math.floor(d / 100)) ?? 0) + 1);
    expect(Math.max(...buckets.values())).toBeLessThan(50);
  });
});

describe('closeAction', () => {
  it('follows docs/close-codes.md', () => {
    expect(closeAction(1012)).toBe('reconnect_now');
    expect(closeAction(4001)).toBe('auth_failed');
    expect(closeAction(4003)).toBe('auth_failed');
    expect(closeAction(4012)).toBe('auth_failed');
    expect(closeAction(4013)).toBe('stop');
    expect(closeAction(4011)).toBe('reconnect');
    for (const code of [1000, 1006, 1011, 4008, 4009, 4010, 4029]) expect(closeAction(code)).toBe('reconnect');
  });
});
