import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ERROR_CODES, type ErrorCode } from '@switchboard/core';
import { goodUncleSeed } from '@switchboard/testkit';
import {
  GOODUNCLE_REQUEST_TYPES,
  goodUncleChangeHead,
  goodUncleChangeTail,
  goodUncleCode,
  goodUncleQueryKey,
  goodUncleSessionJson,
  parseGoodUncleFrame,
  renderGoodUncleChange,
  renderGoodUncleResponse,
  type GoodUncleFrame,
} from '../../src/gooduncle/index.js';

const { CLIENT_FRAMES, TYPICAL_RESPONSE, REQUEST_TYPES, RESPONSE_CODES } = goodUncleSeed;

const parse = (text: string): GoodUncleFrame => parseGoodUncleFrame(text, 16);
function request(text: string) {
  const r = parse(text);
  if (r.kind !== 'request') throw new Error(`expected ${text} to parse: ${JSON.stringify(r)}`);
  return r;
}
function refused(text: string) {
  const r = parse(text);
  if (r.kind !== 'refused') throw new Error(`expected ${text} to be refused: ${JSON.stringify(r)}`);
  return r;
}

/** The JSON type of each value of the seed's "Typical Response" down to its sections' fields (`payload` is any object). */
function shape(v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) return 'array';
  if (v !== null && typeof v === 'object') return depth >= 2 ? 'object' : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x, depth + 1)]));
  return typeof v;
}

describe('gooduncle codec: the seed frames', () => {
  it('the keep-alive "`" and the seed\'s literal (JavaScript, not JSON) are ignored, never answered', () => {
    expect(parse(CLIENT_FRAMES.keepAlive)).toEqual({ kind: 'ignored' });
    expect(parse(CLIENT_FRAMES.typicalRequestLiteral)).toEqual({ kind: 'ignored' });
    for (const t of ['', ' ', 'ping', '{', '{"type":', "{'type':'read'}", '`'.repeat(10)]) expect(parse(t)).toEqual({ kind: 'ignored' });
  });

  it('the typical request is a read that lacks its topic and id: refused field by field, echoed as sent', () => {
    const r = refused(CLIENT_FRAMES.typicalRequest);
    expect(r.echo).toBe(CLIENT_FRAMES.typicalRequest);
    expect(r.errors).toEqual([
      { field: 'topic', code: 'invalid_message', problem: 'missing "topic"' },
      { field: 'id', code: 'invalid_message', problem: 'missing "id"' },
    ]);
  });

  it('knows exactly the seed\'s request types', () => {
    expect([...GOODUNCLE_REQUEST_TYPES]).toEqual(REQUEST_TYPES);
  });

  it('renders the seed\'s envelope: the keys and value types of the "Typical Response"', () => {
    const text = renderGoodUncleResponse({
      session: goodUncleSessionJson('s-1', []),
      requestTime: 1,
      requestJson: CLIENT_FRAMES.typicalRequest,
      time: 2,
      code: 'ok',
      passport: [{ service: 'edge', node: 'edge-a' }],
    });
    const frame = JSON.parse(text);
    expect(shape(frame)).toEqual(shape(TYPICAL_RESPONSE));
    expect(Object.keys(frame)).toEqual(Object.keys(TYPICAL_RESPONSE));
    expect(frame.request.payload).toEqual({ type: 'read', foo: 'bar' });
    expect(frame.passport).toEqual([{ service: 'edge', node: 'edge-a' }]);
  });

  it('maps every registered error code onto one of the seed\'s five response codes', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) expect(RESPONSE_CODES).toContain(goodUncleCode(code));
    expect(goodUncleCode('forbidden')).toBe('forbidden');
    expect(goodUncleCode('not_found')).toBe('not found');
    expect(goodUncleCode('invalid_message')).toBe('bad request');
    expect(goodUncleCode('version_conflict')).toBe('bad request');
    expect(goodUncleCode('unavailable')).toBe('error');
  });
});

describe('gooduncle codec: requests', () => {
  it('parses every request type', () => {
    expect(request('{"type":"upgrade","token":"t"}').request).toEqual({ type: 'upgrade', token: 't' });
    expect(request('{"type":"upgrade","username":"u","password":"p"}').request).toEqual({ type: 'upgrade', username: 'u', password: 'p' });
    expect(request('{"type":"downgrade","role":"staff"}').request).toEqual({ type: 'downgrade', role: 'staff' });
    expect(request('{"type":"create","topic":"orders","data":{"status":"open"}}').request).toEqual({ type: 'create', topic: 'orders', data: { status: 'open' } });
    expect(request('{"type":"read","topic":"orders","id":3}').request).toEqual({ type: 'read', topic: 'orders', id: 3 });
    expect(request('{"type":"update","topic":"orders","id":3,"data":{"a":1},"v":[2]}').request).toEqual({ type: 'update', topic: 'orders', id: 3, data: { a: 1 }, v: [2] });
    expect(request('{"type":"update","topic":"orders","id":3,"data":{"a":1},"v":2}').request).toMatchObject({ v: [2] });
    expect(request('{"type":"update","topic":"orders","id":3,"data":{"a":1}}').request).toMatchObject({ v: null });
    expect(request('{"type":"delete","topic":"orders","id":3}').request).toEqual({ type: 'delete', topic: 'orders', id: 3, v: null });
    expect(request('{"type":"subscribe","topic":"orders","query":{"status":"open"}}').request).toMatchObject({ type: 'subscribe', topic: 'orders', query: { status: 'open' } });
    expect(request('{"type":"subscribe","topic":"orders"}').request).toMatchObject({ query: {} });
    expect(request('{"type":"unsubscribe","topic":"orders","query":{}}').request).toMatchObject({ type: 'unsubscribe', key: 'orders?[]' });
  });

  it('one key per (topic, query), whatever the order of the query\'s fields', () => {
    expect(goodUncleQueryKey('t', { a: 1, b: 'x' })).toBe(goodUncleQueryKey('t', { b: 'x', a: 1 }));
    expect(goodUncleQueryKey('t', { a: 1 })).not.toBe(goodUncleQueryKey('t', { a: '1' }));
    expect(goodUncleQueryKey('t', {})).not.toBe(goodUncleQueryKey('u', {}));
  });

  it('echoes the request as sent, but never a password or a token', () => {
    const sent = '{"type":"upgrade", "username":"u","password":"hunter2"}';
    const r = request(sent);
    expect(JSON.parse(r.echo)).toEqual({ type: 'upgrade', username: 'u', password: '[redacted]' });
    expect(r.echo).not.toContain('hunter2');
    expect(refused('{"type":"upgrade","token":"secret-token","username":"u"}').echo).not.toContain('secret-token');
    const plain = '{ "type" : "read", "topic":"orders", "id": 1 }';
    expect(request(plain).echo).toBe(plain);
  });

  it('refuses each problem with its field and registered code', () => {
    const cases: [string, (string | null)[], ErrorCode][] = [
      ['5', [null], 'invalid_message'],
      ['[1,2]', [null], 'invalid_message'],
      ['null', [null], 'invalid_message'],
      ['{}', ['type'], 'invalid_message'],
      ['{"type":7}', ['type'], 'invalid_message'],
      ['{"type":"teleport"}', ['type'], 'unknown_type'],
      ['{"type":"read","topic":5,"id":"1"}', ['topic', 'id'], 'invalid_message'],
      ['{"type":"read","topic":"no such!","id":1}', ['topic'], 'unknown_channel'],
      ['{"type":"read","topic":"t","id":0}', ['id'], 'invalid_message'],
      ['{"type":"read","topic":"t","id":1.5}', ['id'], 'invalid_message'],
      ['{"type":"read","topic":"t","id":4294967296}', ['id'], 'invalid_message'],
      ['{"type":"create","topic":"t"}', ['data'], 'invalid_message'],
      ['{"type":"create","topic":"t","data":[1]}', ['data'], 'invalid_message'],
      ['{"type":"create","topic":"t","data":{"id":1,"v":[1]}}', ['data.id', 'data.v'], 'invalid_message'],
      ['{"type":"update","topic":"t","id":1,"data":{}}', ['data'], 'invalid_message'],
      ['{"type":"update","topic":"t","id":1,"data":{"a":1},"v":"1"}', ['v'], 'invalid_message'],
      ['{"type":"delete","topic":"t","id":1,"v":[-1]}', ['v'], 'invalid_message'],
      ['{"type":"subscribe","topic":"t","query":[]}', ['query'], 'invalid_message'],
      ['{"type":"subscribe","topic":"t","query":{"a":{"b":1}}}', ['query.a'], 'invalid_filter'],
      ['{"type":"subscribe","topic":"t","query":{"id":1}}', ['query.id'], 'invalid_filter'],
      ['{"type":"subscribe","topic":"t","query":{"a b":1}}', ['query.a b'], 'invalid_filter'],
      ['{"type":"downgrade"}', ['role'], 'invalid_message'],
      ['{"type":"downgrade","role":"a b"}', ['role'], 'invalid_message'],
      ['{"type":"upgrade"}', ['token'], 'invalid_message'],
      ['{"type":"upgrade","token":""}', ['token'], 'invalid_message'],
      ['{"type":"upgrade","username":"u"}', ['password'], 'invalid_message'],
      ['{"type":"upgrade","token":"t","password":"p"}', ['token'], 'invalid_message'],
    ];
    for (const [text, fields, code] of cases) {
      const r = refused(text);
      expect(r.errors.map((e) => e.field), text).toEqual(fields);
      expect(r.errors[0]!.code, text).toBe(code);
      for (const e of r.errors) expect(e.problem.length, text).toBeGreaterThan(0);
    }
  });

  it('refuses forbidden keys and deep nesting without echoing them', () => {
    for (const text of [
      '{"type":"create","topic":"t","data":{"__proto__":{"admin":true}}}',
      '{"type":"create","topic":"t","data":{"constructor":{"prototype":{"x":1}}}}',
      `{"type":"create","topic":"t","data":${'{"a":'.repeat(30)}1${'}'.repeat(30)}}`,
    ]) {
      const r = refused(text);
      expect(r.echo).toBe('null');
      expect(['forbidden_key', 'too_deep']).toContain(r.errors[0]!.code);
    }
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('never throws, whatever the frame', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ type: 'update', topic: 'orders', id: 1, data: v, v }))), (text) => {
        const r = parse(text);
        expect(['ignored', 'request', 'refused']).toContain(r.kind);
        if (r.kind !== 'ignored') JSON.parse(r.echo);
      }),
      { numRuns: 500 },
    );
  });
});

describe('gooduncle codec: live query updates', () => {
  it('splices the object text into the envelope, with the store position and this edge in the passport', () => {
    const head = goodUncleChangeHead(goodUncleSessionJson('s', ['staff']), 10, '{"type":"subscribe","topic":"orders","query":{}}');
    const text = renderGoodUncleChange(head, 20, 'entered', 'create', '{"id":1,"v":[1],"status":"open"}', '"ep"', 7, goodUncleChangeTail('edge-b'));
    expect(JSON.parse(text)).toEqual({
      session: { id: 's', roles: ['staff'] },
      request: { time: 10, payload: { type: 'subscribe', topic: 'orders', query: {} } },
      response: { time: 20, code: 'ok', errors: [], payload: { change: 'entered', op: 'create', object: { id: 1, v: [1], status: 'open' } } },
      passport: [
        { service: 'store', epoch: 'ep', offset: 7 },
        { service: 'edge', node: 'edge-b' },
      ],
    });
    expect(shape(JSON.parse(text))).toMatchObject({ session: shape(TYPICAL_RESPONSE.session), request: { time: 'number' }, passport: 'array' });
  });
});
