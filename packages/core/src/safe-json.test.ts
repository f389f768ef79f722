import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkJsonValue, parseJsonGuarded } from './safe-json.js';

describe('parseJsonGuarded', () => {
  it('parses ordinary JSON', () => {
    expect(parseJsonGuarded('{"a":[1,{"b":2}]}', 8)).toEqual({ ok: true, value: { a: [1, { b: 2 }] } });
  });
  it('refuses invalid JSON', () => {
    expect(parseJsonGuarded('{"a":', 8)).toMatchObject({ ok: false, code: 'invalid_json' });
  });
  it('refuses nesting deeper than the limit without exhausting the stack', () => {
    expect(parseJsonGuarded('[[[[1]]]]', 4)).toMatchObject({ ok: true });
    expect(parseJsonGuarded('[[[[[1]]]]]', 4)).toMatchObject({ ok: false, code: 'too_deep' });
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(parseJsonGuarded(deep, 16)).toMatchObject({ ok: false, code: 'too_deep' });
  });
  it('refuses __proto__, constructor and prototype keys at any depth', () => {
    for (const text of ['{"__proto__":{"x":1}}', '{"a":{"constructor":{}}}', '[{"prototype":1}]']) {
      expect(parseJsonGuarded(text, 8)).toMatchObject({ ok: false, code: 'forbidden_key' });
    }
  });
  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = parseJsonGuarded(s, 8);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseJsonGuarded(JSON.stringify(v), 64);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });
});

/** The walk as first written (a call per member, scalars included): the faster one answers the same. */
function referenceWalk(value: unknown, depth: number, maxDepth: number): { code: string; message: string } | null {
  if (value === null || typeof value !== 'object') return null;
  if (depth >= maxDepth) return { code: 'too_deep', message: `payload nests deeper than ${maxDepth} levels` };
  if (Array.isArray(value)) {
    for (const item of value) {
      const err = referenceWalk(item, depth + 1, maxDepth);
      if (err) return err;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    if (['__proto__', 'constructor', 'prototype'].includes(key)) return { code: 'forbidden_key', message: `key "${key}" is not allowed` };
    const err = referenceWalk((value as Record<string, unknown>)[key], depth + 1, maxDepth);
    if (err) return err;
  }
  return null;
}

describe('checkJsonValue', () => {
  it('answers exactly as the first walk: the same first error, or none', () => {
    const { value: text } = fc.letrec<{ value: string }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null)).map((v) => JSON.stringify(v)),
        fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
        fc
          .array(fc.tuple(fc.constantFrom('a', 'b', '0', '__proto__', 'constructor', 'prototype', 'proto'), tie('value')), { maxLength: 4 })
          .map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
      ),
    }));
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 5 }), (t, maxDepth) => {
        const value: unknown = JSON.parse(t);
        expect(checkJsonValue(value, maxDepth)).toEqual(referenceWalk(value, 0, maxDepth));
      }),
      { numRuns: 3000 },
    );
  });
});
