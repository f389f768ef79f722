import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { decodePayload, encodePayload } from './codec.js';
import { msgpackWithinLimits } from './msgpack-guard.js';

const packr = new Packr({ useRecords: false });
function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce((m: number, c) => Math.max(m, depthOf(c)), 0);
}

describe('msgpack guard', () => {
  it('accepts exactly what nests within the limit', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 1, max: 8 }), (v, limit) => {
        const buf = packr.pack(v);
        expect(msgpackWithinLimits(buf, limit)).toBe(depthOf(v) <= limit);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses deep nesting without recursion, and truncated or lying input', () => {
    const deep = Buffer.alloc(200_000, 0x91);
    expect(msgpackWithinLimits(deep, 16)).toBe(false);
    const ok = packr.pack({ a: [1, 2, 3], b: 'x' });
    expect(msgpackWithinLimits(ok.subarray(0, ok.length - 1), 8)).toBe(false);
    expect(msgpackWithinLimits(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), 8)).toBe(false);
    expect(msgpackWithinLimits(Buffer.from([0xc1]), 8)).toBe(false);
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        expect(typeof msgpackWithinLimits(b, 4)).toBe('boolean');
        const p = decodePayload(b);
        expect(p === null || typeof p.data === 'string').toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('round-trips payloads, and refuses what was not written by us', () => {
    const p = { ts: 1700000000123, attrs: { device_id: 1, severity: 'critical', ok: true }, data: '{"x":"ü"}' };
    expect(decodePayload(encodePayload(p))).toEqual(p);
    expect(decodePayload(packr.pack({ nested: [[[[1]]]] }))).toBeNull();
    expect(decodePayload(packr.pack([1, 'x', 'y']))).toBeNull();
  });
});
