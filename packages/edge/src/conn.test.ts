import { describe, expect, it } from 'vitest';
import { ConnectionRegistry, type Conn } from './conn.js';

const conn = (connId: string) => ({ connId, dialect: 'oisp', closed: false }) as unknown as Conn;

describe('ConnectionRegistry index', () => {
  it('holds one or several connections under a key, and several keys per connection, until they close', () => {
    const r = new ConnectionRegistry('n');
    const a = conn('n:1');
    const b = conn('n:2');
    r.add(a, 0);
    r.add(b, 0);
    expect(r.byKey('k')).toEqual([]);
    r.index(a, 'k');
    r.index(a, 'k');
    expect(r.byKey('k')).toEqual([a]);
    r.index(b, 'k');
    r.index(a, 'other');
    expect(r.byKey('k')).toEqual([a, b]);
    expect(r.byKey('other')).toEqual([a]);
    // A copy: closing what it lists while iterating does not disturb the iteration.
    const listed = r.byKey('k');
    r.remove(a);
    expect(listed).toEqual([a, b]);
    expect(r.byKey('k')).toEqual([b]);
    expect(r.byKey('other')).toEqual([]);
    r.remove(b);
    expect(r.byKey('k')).toEqual([]);
    const closed = { ...conn('n:3'), closed: true } as Conn;
    r.index(closed, 'k');
    expect(r.byKey('k')).toEqual([]);
  });
});
