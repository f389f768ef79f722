import { describe, expect, it } from 'vitest';
import { wallClockMs } from './time.js';

describe('wallClockMs', () => {
  it('is wall-clock time with sub-millisecond precision', () => {
    const samples = Array.from({ length: 200 }, () => wallClockMs());
    expect(Math.abs(samples[0]! - Date.now())).toBeLessThan(50);
    expect(samples.some((s) => !Number.isInteger(s))).toBe(true);
    for (let i = 1; i < samples.length; i++) expect(samples[i]!).toBeGreaterThanOrEqual(samples[i - 1]!);
  });
});
