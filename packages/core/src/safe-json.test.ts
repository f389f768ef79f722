import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseJsonGuarded } from './safe-json.js';

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
