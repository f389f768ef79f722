import { describe, expect, it } from 'vitest';
import { LoginFailures } from './admin-page.js';

describe('admin login failures', () => {
  it('refuses an address after N refused logins in a minute, others not, and forgives at the next minute', () => {
    const f = new LoginFailures(3);
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) expect(f.begin('1.2.3.4', t0 + i)).toBe(true);
    expect(f.begin('1.2.3.4', t0 + 10)).toBe(false);
    expect(f.begin('5.6.7.8', t0 + 10)).toBe(true);
    expect(f.begin('1.2.3.4', t0 + 60_000)).toBe(true);
  });

  it('counts attempts in flight, so concurrent ones cannot overshoot; a forgiven one does not count', () => {
    const f = new LoginFailures(2);
    expect([f.begin('a', 1), f.begin('a', 1), f.begin('a', 1)]).toEqual([true, true, false]);
    f.forgive('a');
    expect(f.begin('a', 2)).toBe(true);
    expect(f.begin('a', 2)).toBe(false);
  });

  it('0 means no limit', () => {
    const f = new LoginFailures(0);
    for (let i = 0; i < 100; i++) expect(f.begin('1.2.3.4', 5)).toBe(true);
  });
});
