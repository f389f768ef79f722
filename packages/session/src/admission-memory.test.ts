import { describe, expect, it } from 'vitest';
import { MemoryAdmission } from './admission-memory.js';

const limits = { maxConnectionsPerUser: 3, maxConnectionsTotal: 5, newConnectionsPerUserPerMin: 4, newConnectionsPerIpPerMin: 0 };
const req = (userId: string, n: number, ip = '10.0.0.1') => ({ userId, connId: `n:${userId}:${n}`, nodeId: 'n', ip });

describe('MemoryAdmission', () => {
  it('caps concurrent connections per user, and admits again after a release', async () => {
    const a = new MemoryAdmission(limits);
    for (let i = 0; i < 3; i++) expect((await a.admit(req('u', i))).ok).toBe(true);
    expect(await a.admit(req('u', 3))).toMatchObject({ ok: false, rule: 'user_concurrent', code: 'connection_limit' });
    await a.release('n:u:0');
    expect((await a.admit(req('u', 4))).ok).toBe(true);
  });

  it('caps the total', async () => {
    const a = new MemoryAdmission({ ...limits, newConnectionsPerUserPerMin: 0 });
    for (let i = 0; i < 5; i++) expect((await a.admit(req(`u${i}`, 0))).ok).toBe(true);
    expect(await a.admit(req('x', 0))).toMatchObject({ ok: false, rule: 'total_concurrent', code: 'connection_limit' });
    expect(await a.count()).toBe(5);
  });

  it('limits new connections per user per minute with a sliding window', async () => {
    let t = 0;
    const a = new MemoryAdmission({ ...limits, maxConnectionsPerUser: 100, maxConnectionsTotal: 100 }, () => t);
    for (let i = 0; i < 4; i++) {
      expect((await a.admit(req('u', i))).ok).toBe(true);
      await a.release(`n:u:${i}`);
    }
    expect(await a.admit(req('u', 9))).toMatchObject({ ok: false, rule: 'user_rate', code: 'rate_limited' });
    expect((await a.admit(req('other', 0))).ok).toBe(true);
    t = 60_001;
    expect((await a.admit(req('u', 10))).ok).toBe(true);
  });

  it('limits per address only when configured', async () => {
    const a = new MemoryAdmission({ ...limits, maxConnectionsPerUser: 100, maxConnectionsTotal: 100, newConnectionsPerIpPerMin: 2 });
    expect((await a.admit(req('a', 0))).ok).toBe(true);
    expect((await a.admit(req('b', 0))).ok).toBe(true);
    expect(await a.admit(req('c', 0))).toMatchObject({ ok: false, rule: 'ip_rate' });
    expect((await a.admit(req('d', 0, '10.0.0.2'))).ok).toBe(true);
  });

  it('releasing an unknown connection is harmless; re-admitting the same id is idempotent', async () => {
    const a = new MemoryAdmission(limits);
    await a.release('nope');
    expect((await a.admit(req('u', 0))).ok).toBe(true);
    expect((await a.admit(req('u', 0))).ok).toBe(true);
    expect(await a.count()).toBe(1);
  });
});
