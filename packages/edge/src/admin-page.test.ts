import { describe, expect, it } from 'vitest';
import { LoginFailures } from './admin-page.js';

describe('admin login failures', () => {
  it('refuses an address after N refused logins in a minute, others not, and forgives at the next minute', () => {
    const f = new LoginFailures(3);
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) {
      expect(f.allowed('1.2.3.4', t0 + i)).toBe(true);
      f.failed('1.2.3.4', t0 + i);
    }
    expect(f.allowed('1.2.3.4', t0 + 10)).toBe(false);
    expect(f.allowed('5.6.7.8', t0 + 10)).toBe(true);
    expect(f.allowed('1.2.3.4', t0 + 60_000)).toBe(true);
  });

  it('0 means no limit', () => {
    const f = new LoginFailures(0);
    for (let i = 0; i < 100; i++) f.failed('1.2.3.4', 5);
    expect(f.allowed('1.2.3.4', 6)).toBe(true);
  });
});
