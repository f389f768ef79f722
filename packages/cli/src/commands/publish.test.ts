import { describe, expect, it } from 'vitest';
import { parseAttrArgs } from './publish.js';

describe('parseAttrArgs', () => {
  it('turns numbers into numbers and keeps the rest as strings', () => {
    expect(parseAttrArgs(['device_id=1', 'severity=critical', 'x=-2.5', 'zip=01234', 'eq=a=b'])).toEqual({
      device_id: 1,
      severity: 'critical',
      x: -2.5,
      zip: '01234',
      eq: 'a=b',
    });
  });
  it('refuses a pair without a key', () => {
    expect(() => parseAttrArgs(['=1'])).toThrow(/key=value/);
    expect(() => parseAttrArgs(['novalue'])).toThrow(/key=value/);
  });
});
