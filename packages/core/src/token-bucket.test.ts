import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate', () => {
    const b = new TokenBucket(100, 100, 0);
    for (let i = 0; i < 100; i++) expect(b.take(1, 0)).toBe(true);
    expect(b.take(1, 0)).toBe(false);
    expect(b.take(1, 9)).toBe(false);
    expect(b.take(1, 10)).toBe(true);
    expect(b.take(9, 100)).toBe(true);
    expect(b.take(1, 100)).toBe(false);
  });

  it('never holds more than its burst', () => {
    const b = new TokenBucket(10, 5, 0);
    expect(b.available(1_000_000)).toBe(5);
    expect(b.take(6, 1_000_000)).toBe(false);
    expect(b.take(5, 1_000_000)).toBe(true);
  });

  it('takes nothing when a multi-token take fails', () => {
    const b = new TokenBucket(1, 3, 0);
    expect(b.take(4, 0)).toBe(false);
    expect(b.take(3, 0)).toBe(true);
  });
});
