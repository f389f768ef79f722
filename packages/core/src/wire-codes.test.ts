import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from './codes.js';
import { FLEETFREEDOM_WIRE_CODES, OISP_WIRE_CODES, WIRE_CODE_TABLES, wireCode, wireCodeName, type WireCodeSpec } from './wire-codes.js';

describe('dialect wire-code tables', () => {
  for (const table of WIRE_CODE_TABLES) {
    const specs = Object.values<WireCodeSpec>(table.codes);
    it(`${table.dialect}: values are unique, success answers no error, every listed code is registered and listed once`, () => {
      const values = specs.map((s) => s.code);
      expect(new Set(values).size).toBe(values.length);
      expect(table.codes[table.success]!.from).toEqual([]);
      const listed = specs.flatMap((s) => s.from);
      expect(new Set(listed).size).toBe(listed.length);
      for (const c of listed) expect(Object.keys(ERROR_CODES)).toContain(c);
      for (const name of [...Object.values(table.byStatus), table.clientError, table.otherwise]) expect(Object.keys(table.codes)).toContain(name);
    });
    it(`${table.dialect}: every registered code has an answer other than success`, () => {
      const success = table.codes[table.success]!.code;
      for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) expect(wireCode(table, code)).not.toBe(success);
    });
  }

  it('fleetfreedom: success is 0', () => {
    expect(FLEETFREEDOM_WIRE_CODES.codes.success.code).toBe(0);
  });

  it('oisp: the seed codes (401 for what a client got wrong, 500 for server failures) and 413/429', () => {
    const t = OISP_WIRE_CODES;
    expect(t.codes.ok.code).toBe(200);
    for (const c of ['invalid_json', 'invalid_message', 'unknown_type', 'invalid_token', 'expired_token', 'invalid_credentials', 'not_authenticated', 'forbidden'] as const)
      expect(wireCode(t, c)).toBe(401);
    expect(wireCode(t, 'internal_error')).toBe(500);
    expect(wireCode(t, 'unavailable')).toBe(500);
    expect(wireCode(t, 'not_found')).toBe(401);
    expect(wireCode(t, 'message_too_large')).toBe(413);
    expect(wireCode(t, 'rate_limited')).toBe(429);
    expect(wireCode(t, 'connection_limit')).toBe(429);
  });

  it('fleetfreedom: the codes the dialect relies on', () => {
    const t = FLEETFREEDOM_WIRE_CODES;
    expect(wireCode(t, 'not_authenticated')).toBe(4);
    expect(wireCode(t, 'unknown_type')).toBe(3);
    expect(wireCode(t, 'invalid_json')).toBe(2);
    expect(wireCode(t, 'forbidden_key')).toBe(2);
    expect(wireCode(t, 'not_found')).toBe(8);
    expect(wireCode(t, 'forbidden')).toBe(7);
    expect(wireCode(t, 'version_conflict')).toBe(9);
    expect(wireCode(t, 'rate_limited')).toBe(10);
    expect(wireCode(t, 'internal_error')).toBe(1);
    // Every code is listed today; the HTTP fallback is what a code added later gets.
    const listed = new Set((Object.values(t.codes) as WireCodeSpec[]).flatMap((s) => s.from));
    expect((Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => !listed.has(c))).toEqual([]);
    const fake = { ...t, codes: { ...t.codes, forbidden: { ...t.codes.forbidden, from: [] } } };
    expect(wireCodeName(fake, 'forbidden')).toBe('forbidden');
    const noMalformed = { ...t, codes: { ...t.codes, malformed: { ...t.codes.malformed, from: [] } } };
    expect(wireCodeName(noMalformed, 'invalid_json')).toBe('malformed');
    const noInternal = { ...t, codes: { ...t.codes, internal: { ...t.codes.internal, from: [] } } };
    expect(wireCodeName(noInternal, 'internal_error')).toBe('internal');
  });
});
