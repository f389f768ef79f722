/**
 * Hostile and malformed input on the `gooduncle` dialect: each case gets the seed's envelope with its
 * own code and the problem named (or, for what is not JSON, nothing at all, as the seed says), the
 * connection keeps working (or closes with its documented code), the node never crashes, and a
 * bystander's live query loses no change meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES } from '@switchboard/core';
import { TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';
import { TEST_TOPICS, ask, askRaw, isResponse, keepAlive, nextUpdate, ok, type Envelope } from './gooduncle.helpers.js';

let node: TestNode;
let writer: TestClient;
let bystander: TestClient;
let watch: Envelope;
let written = 0;
const stops: (() => void)[] = [];

async function client(): Promise<TestClient> {
  const c = await TestClient.connect(`${node.wsUrl}/gooduncle`);
  stops.push(keepAlive(c));
  return c;
}

/** One more change the bystander must see (paced under the writer's own rate limit). */
async function writeTick(): Promise<void> {
  await new Promise((r) => setTimeout(r, 100));
  ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'tick', n: ++written } }));
}

let probe = 0;
/** The connection still answers requests. */
async function stillWorks(c: TestClient): Promise<void> {
  const res = await ask(c, { type: 'read', topic: 'orders', id: 4_000_000_000, probe: ++probe });
  expect(res.response.code).toBe('not found');
}

beforeAll(async () => {
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000, rateLimitCloseAfter: 30 },
    {
      env: {
        GOODUNCLE_TOPICS: JSON.stringify(TEST_TOPICS),
        GOODUNCLE_MAX_MESSAGE_BYTES: '4096',
        GOODUNCLE_MESSAGES_PER_SEC: '20',
        GOODUNCLE_MESSAGES_BURST: '20',
        GOODUNCLE_MAX_SUBSCRIPTIONS_PER_CONNECTION: '3',
      },
    },
  );
  writer = await client();
  ok(await ask(writer, { type: 'upgrade', token: await node.token('writer', { roles: ['driver'] }) }));
  bystander = await client();
  watch = await ask(bystander, { type: 'subscribe', topic: 'orders', query: { status: 'tick' } });
  ok(watch);
});

afterAll(async () => {
  // Every change made while the others misbehaved reached the bystander, in order.
  const got: number[] = [];
  while (got.length < written) got.push(((await nextUpdate(bystander, watch, 5000)).response.payload.object as { n: number }).n);
  expect(got).toEqual(Array.from({ length: written }, (_, i) => i + 1));
  for (const s of stops) s();
  await node.close();
});

describe('gooduncle bad input: the seed envelope with the problem named, connection keeps working', () => {
  const cases: [string, string, string, string | null, string][] = [
    ['a JSON number', '5', 'bad request', null, 'invalid_message'],
    ['a JSON array', '[{"type":"read"}]', 'bad request', null, 'invalid_message'],
    ['JSON null', 'null', 'bad request', null, 'invalid_message'],
    ['a JSON string', '"read"', 'bad request', null, 'invalid_message'],
    ['missing type', '{"topic":"orders","id":1}', 'bad request', 'type', 'invalid_message'],
    ['type not a string', '{"type":["read"]}', 'bad request', 'type', 'invalid_message'],
    ['unknown type', '{"type":"teleport"}', 'bad request', 'type', 'unknown_type'],
    ['missing topic', '{"type":"read","id":1}', 'bad request', 'topic', 'invalid_message'],
    ['topic of the wrong type', '{"type":"read","topic":{"a":1},"id":1}', 'bad request', 'topic', 'invalid_message'],
    ['unknown topic', '{"type":"read","topic":"payroll","id":1}', 'not found', 'topic', 'unknown_channel'],
    ['topic named __proto__', '{"type":"read","topic":"__proto__","id":1}', 'not found', 'topic', 'unknown_channel'],
    ['topic named constructor', '{"type":"read","topic":"constructor","id":1}', 'not found', 'topic', 'unknown_channel'],
    ['id a string', '{"type":"read","topic":"orders","id":"1"}', 'bad request', 'id', 'invalid_message'],
    ['id negative', '{"type":"read","topic":"orders","id":-1}', 'bad request', 'id', 'invalid_message'],
    ['data not an object', '{"type":"create","topic":"public","data":"hello"}', 'bad request', 'data', 'invalid_message'],
    ['data writing id', '{"type":"create","topic":"public","data":{"id":5}}', 'bad request', 'data.id', 'invalid_message'],
    ['v not a version', '{"type":"update","topic":"public","id":1,"data":{"a":1},"v":"latest"}', 'bad request', 'v', 'invalid_message'],
    ['query not an object', '{"type":"subscribe","topic":"orders","query":"status=open"}', 'bad request', 'query', 'invalid_message'],
    ['query value an object', '{"type":"subscribe","topic":"orders","query":{"status":{"$ne":1}}}', 'bad request', 'query.status', 'invalid_filter'],
    ['query on a field that is not indexed', '{"type":"subscribe","topic":"orders","query":{"colour":"red"}}', 'bad request', 'query.colour', 'invalid_filter'],
    ['role missing', '{"type":"downgrade"}', 'bad request', 'role', 'invalid_message'],
    ['upgrade without credentials', '{"type":"upgrade"}', 'bad request', 'token', 'invalid_message'],
    ['upgrade with a password only', '{"type":"upgrade","password":"x"}', 'bad request', 'username', 'invalid_message'],
    ['unsubscribe of nothing', '{"type":"unsubscribe","topic":"orders","query":{"status":"never"}}', 'not found', 'query', 'not_subscribed'],
    ['__proto__ key', '{"type":"create","topic":"public","data":{"__proto__":{"polluted":true}}}', 'bad request', null, 'forbidden_key'],
    ['constructor key', '{"type":"create","topic":"public","constructor":{"prototype":{"polluted":true}}}', 'bad request', null, 'forbidden_key'],
    ['deep nesting', `{"type":"create","topic":"public","data":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`, 'bad request', null, 'too_deep'],
    ['an oversized message', JSON.stringify({ type: 'create', topic: 'public', data: { blob: 'x'.repeat(5000) } }), 'bad request', null, 'message_too_large'],
  ];

  it.each(cases)('%s', async (_name, frame, code, field, problem) => {
    const c = await client();
    const res = await askRaw(c, frame);
    expect(Object.keys(res)).toEqual(['session', 'request', 'response', 'passport']);
    expect(res.response.code).toBe(code);
    expect(res.response.errors[0]).toMatchObject({ field, code: problem });
    expect(res.response.errors[0]!.problem.length).toBeGreaterThan(0);
    // Echoed as sent, unless it must not travel on (forbidden keys, depth) or was never read (too large).
    if (['forbidden_key', 'too_deep', 'message_too_large'].includes(problem)) expect(res.request.payload).toBeNull();
    else {
      const sent = JSON.parse(frame) as Record<string, unknown> | null;
      // Credentials are the one exception: never echoed.
      if (sent && typeof sent === 'object' && 'password' in sent) sent.password = '[redacted]';
      expect(res.request.payload).toEqual(sent);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await writeTick();
    await stillWorks(c);
    await c.close();
  });

  it('what is not JSON gets no answer at all (the seed ignores it), and the connection keeps working', async () => {
    const c = await client();
    for (const f of ['', 'hello', '{"type":"read",', "{'type':'read'}", '\u0000\u0001', '`'.repeat(100)]) c.send(f);
    c.send(Buffer.from([0xff, 0xfe, 0x00]));
    expect(await c.collect(300, isResponse)).toEqual([]);
    await writeTick();
    await stillWorks(c);
    // A binary frame holding a JSON request is a request.
    c.send(Buffer.from(JSON.stringify({ type: 'read', topic: 'orders', id: 1_000_000 })));
    expect(((await c.next(isResponse)) as unknown as Envelope).response.code).toBe('not found');
    await c.close();
  });

  it('a stale v changes nothing; an id of another account is not found and unchanged', async () => {
    const acme = await client();
    ok(await ask(acme, { type: 'upgrade', token: await node.token('acme-writer', { roles: ['driver'], tenant: 'acme' }) }));
    const mine = ok(await ask(acme, { type: 'create', topic: 'notes', data: { text: 'acme' } })).object as { id: number; v: number[] };
    ok(await ask(acme, { type: 'update', topic: 'notes', id: mine.id, data: { text: 'acme 2' } }));
    const stale = await ask(acme, { type: 'update', topic: 'notes', id: mine.id, data: { text: 'lost update' }, v: mine.v });
    expect(stale.response).toMatchObject({ code: 'bad request', errors: [{ field: 'v', code: 'version_conflict' }], payload: { object: { v: [2], text: 'acme 2' } } });
    const delStale = await ask(acme, { type: 'delete', topic: 'notes', id: mine.id, v: [1] });
    expect(delStale.response.errors[0]!.code).toBe('version_conflict');
    // The writer's account (default) has no notes with that id: every operation on it is not found.
    for (const req of [
      { type: 'read', topic: 'notes', id: mine.id },
      { type: 'update', topic: 'notes', id: mine.id, data: { text: 'hijack' } },
      { type: 'delete', topic: 'notes', id: mine.id },
    ])
      expect((await ask(writer, req)).response).toMatchObject({ code: 'not found', errors: [{ field: 'id', code: 'not_found' }] });
    expect(ok(await ask(acme, { type: 'read', topic: 'notes', id: mine.id })).object).toEqual({ id: mine.id, v: [2], text: 'acme 2' });
    await writeTick();
    await acme.close();
  });

  it('a write that would grow an object past the store limit is refused whole', async () => {
    const c = await client();
    ok(await ask(c, { type: 'upgrade', token: await node.token('grower', { roles: ['driver'] }) }));
    const o = ok(await ask(c, { type: 'create', topic: 'notes', data: { a: 'x'.repeat(3000) } })).object as { id: number };
    // 3 KB per request fits the 4 KB message limit; the object stops at the store's 64 KiB.
    let refused: Envelope | null = null;
    for (let i = 0; i < 30 && !refused; i++) {
      const res = await ask(c, { type: 'update', topic: 'notes', id: o.id, data: { [`f${i}`]: 'y'.repeat(3000) } });
      if (res.response.code !== 'ok') refused = res;
      await new Promise((r) => setTimeout(r, 80));
    }
    expect(refused?.response).toMatchObject({ code: 'bad request', errors: [{ field: 'data', code: 'message_too_large' }] });
    await writeTick();
    await c.close();
  }, 15_000);

  it('more live queries than allowed: the extra one is refused, the others live on', async () => {
    const c = await client();
    for (const status of ['a', 'b', 'c']) ok(await ask(c, { type: 'subscribe', topic: 'orders', query: { status } }));
    const res = await ask(c, { type: 'subscribe', topic: 'orders', query: { status: 'd' } });
    expect(res.response).toMatchObject({ code: 'bad request', errors: [{ field: null, code: 'too_many_subscriptions' }] });
    // The same query again replaces itself and is not an extra one.
    ok(await ask(c, { type: 'subscribe', topic: 'orders', query: { status: 'a' } }));
    await writeTick();
    await c.close();
  });

  it('a flood is answered with `error` (rate_limited), counted by rule, and closed with 4029 when it goes on', async () => {
    const c = await client();
    const before = await node.metric('switchboard_rate_limit_rejections_total', { dialect: 'gooduncle', rule: 'messages_per_sec' });
    for (let i = 0; i < 25; i++) c.send({ type: 'read', topic: 'orders', id: 1, i });
    const answers = (await c.take(25, isResponse)) as unknown as Envelope[];
    const limited = answers.filter((a) => a.response.code === 'error');
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.response.errors[0]).toMatchObject({ field: null, code: 'rate_limited' });
    expect(limited[0]!.request.payload).toBeNull();
    expect(await node.metric('switchboard_rate_limit_rejections_total', { dialect: 'gooduncle', rule: 'messages_per_sec' })).toBeGreaterThan(before);
    await writeTick();
    for (let i = 0; i < 100; i++) c.send('`');
    expect((await c.closed).code).toBe(CLOSE_CODES.rate_limit_abuse.code);
    await writeTick();
  });

  it('a frame above the hard frame limit drops that connection only', async () => {
    const c = await client();
    c.send('x'.repeat(200 * 1024));
    expect((await c.closed).code).toBe(1006);
    await writeTick();
  });
});
