import { describe, expect, it } from 'vitest';
import { clientAddress, normalizeAddress } from './net.js';

describe('clientAddress', () => {
  const proxies = new Set(['10.0.0.1', '10.0.0.2']);

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(clientAddress('203.0.113.9', '1.2.3.4', proxies)).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', '1.2.3.4', new Set())).toBe('203.0.113.9');
  });

  it('takes the rightmost entry that is not a trusted proxy (a client cannot prepend its own)', () => {
    expect(clientAddress('10.0.0.1', '6.6.6.6, 198.51.100.7', proxies)).toBe('198.51.100.7');
    expect(clientAddress('10.0.0.1', '198.51.100.7, 10.0.0.2', proxies)).toBe('198.51.100.7');
    expect(clientAddress('::ffff:10.0.0.1', ['198.51.100.7'], proxies)).toBe('198.51.100.7');
  });

  it('falls back to the peer on garbage or when every hop is a proxy', () => {
    expect(clientAddress('10.0.0.1', 'not-an-ip', proxies)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', '10.0.0.2', proxies)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', undefined, proxies)).toBe('10.0.0.1');
  });

  it('normalizes IPv4-mapped IPv6 addresses', () => {
    expect(normalizeAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('0000:0000:0000:0000:0000:ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('::1')).toBe('::1');
  });
});
