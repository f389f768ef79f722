/**
 * Conformance of the `gooduncle` dialect with its seed (004), over real WebSockets against a real uWS
 * edge: the seed's frames and timing (the server's "`" every ~300 ms, a silent client closed after
 * 3000 ms, invalid JSON ignored but keeping the connection open), the seed's envelope on every
 * response, anonymous sessions that `upgrade` and `downgrade`, objects on topics, and live queries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES, loadConfig } from '@switchboard/core';
import type { ObjectStore } from '@switchboard/store';
import { TestClient, goodUncleSeed } from '@switchboard/testkit';
import { goodUncleConfig } from '../src/dialects/gooduncle/config.js';
import { valtronicsConfig } from '../src/dialects/valtronics/config.js';
import { startTestNode, type TestNode } from './helpers.js';
import { TEST_TOPICS, ask, isResponse, keepAlive, nextUpdate, ok, updatesOf, type Envelope } from './gooduncle.helpers.js';

const { CLIENT_FRAMES, TYPICAL_RESPONSE, TIMING } = goodUncleSeed;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let node: TestNode;
let ownUrl: string;
const stops: (() => void)[] = [];

beforeAll(async () => {
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000, messagesPerSec: 10_000, messagesBurst: 10_000 },
    { env: { GOODUNCLE_PORT: '0', GOODUNCLE_TOPICS: JSON.stringify(TEST_TOPICS) } },
  );
  ownUrl = `ws://127.0.0.1:${node.edge.port('gooduncle')}`;
  await node.session.createUser({ name: 'carol', password: 'carol-password-1', roles: ['chef', 'staff'] });
  await node.session.createUser({ name: 'acme-admin', password: 'acme-password-1', roles: ['admin'], tenant: 'acme' });
});
afterAll(async () => {
  for (const s of stops) s();
  await node.close();
});

/** The node's real store, whose queries take `delayMs` more, waiting before or after reading (what a busy Redis does to a subscribe). */
class SlowQueries implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly delayMs: number,
    private readonly wait: 'before' | 'after',
  ) {}
  get: ObjectStore['get'] = (...a) => this.inner.get(...a);
  create: ObjectStore['create'] = (...a) => this.inner.create(...a);
  merge: ObjectStore['merge'] = (...a) => this.inner.merge(...a);
  remove: ObjectStore['remove'] = (...a) => this.inner.remove(...a);
  channel: ObjectStore['channel'] = (...a) => this.inner.channel(...a);
  ready: ObjectStore['ready'] = () => this.inner.ready();
  close: ObjectStore['close'] = () => this.inner.close();
  query: ObjectStore['query'] = async (...a) => {
    if (this.wait === 'before') await sleep(this.delayMs);
    const res = await this.inner.query(...a);
    if (this.wait === 'after') await sleep(this.delayMs);
    return res;
  };
}

/** A Good Uncle client that keeps itself alive as the seed's clients do. */
async function client(url = `${node.wsUrl}/gooduncle`): Promise<TestClient> {
  const c = await TestClient.connect(url);
  stops.push(keepAlive(c));
  return c;
}

async function upgraded(roles: string[], tenant?: string): Promise<TestClient> {
  const c = await client();
  ok(await ask(c, { type: 'upgrade', token: await node.token(`u-${roles.join('-')}`, { roles, ...(tenant ? { tenant } : {}) }) }));
  return c;
}

/** The JSON type of each value down to the envelope sections' fields. */
function shape(v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) return 'array';
  if (v !== null && typeof v === 'object') return depth >= 2 ? 'object' : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x, depth + 1)]));
  return typeof v;
}

describe('gooduncle: connections and the seed\'s keep-alive protocol', () => {
  it('is served at /gooduncle on the main port and at / on GOODUNCLE_PORT, and answers only requests', async () => {
    for (const url of [`${node.wsUrl}/gooduncle`, ownUrl, `${ownUrl}/`]) {
      const c = await client(url);
      const res = await ask(c, { type: 'read', topic: 'orders', id: 1 });
      expect(res.response.code).toBe('not found');
      await c.close();
    }
    await expect(TestClient.connect(`${ownUrl}/ws`)).rejects.toThrow(/404/);
    await expect(TestClient.connect(`${node.wsUrl}/gooduncle/elsewhere`)).rejects.toThrow(/404/);
  });

  it(`sends a single "\`" every ~${TIMING.serverKeepAliveMs} ms: at least 8 in 3 s, one publish per tick`, async () => {
    const c = await client();
    const t0 = Date.now();
    await sleep(3000);
    const ticks = c.frames.filter((f) => f.text === CLIENT_FRAMES.keepAlive);
    expect(ticks.length).toBeGreaterThanOrEqual(8);
    expect(ticks.length).toBeLessThanOrEqual(11);
    // Nothing else arrived: the server sends responses only in response to requests.
    expect(c.frames.every((f) => f.text === '`')).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
    await c.close();
  });

  it(`closes a client that sent nothing for ${TIMING.clientSilenceMs} ms, within 3000–3500 ms, with 4002`, async () => {
    const c = await TestClient.connect(`${node.wsUrl}/gooduncle`);
    const opened = Date.now();
    const { code } = await c.closed;
    const ms = Date.now() - opened;
    expect(code).toBe(CLOSE_CODES.client_silent.code);
    expect(ms).toBeGreaterThanOrEqual(3000);
    expect(ms).toBeLessThan(3500);
    // It heard the server the whole time: never more than ~1000 ms without a frame ("faulty connection").
    expect(c.frames.filter((f) => f.text === '`').length).toBeGreaterThanOrEqual(8);
  });

  it('invalid JSON is ignored but keeps the connection open', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/gooduncle`);
    const opened = Date.now();
    for (let i = 0; Date.now() - opened < 4500; i++) {
      c.send(i % 2 ? CLIENT_FRAMES.typicalRequestLiteral : 'not json at all');
      await sleep(500);
    }
    expect(c.open).toBe(true);
    expect(c.frames.filter((f) => f.text !== '`')).toEqual([]);
    // And it still answers a request.
    expect((await ask(c, { type: 'read', topic: 'orders', id: 1 })).response.code).toBe('not found');
    const closed = c.closed;
    // Once it stops talking, the silence rule applies again.
    const { code } = await closed;
    expect(code).toBe(CLOSE_CODES.client_silent.code);
  }, 15_000);

  it('anonymous sessions have no auth deadline, even when a core SWITCHBOARD_AUTH_TIMEOUT_MS is set', async () => {
    const env = { SWITCHBOARD_AUTH_TIMEOUT_MS: '300' };
    const cfg = loadConfig(env, {}, 'all', [goodUncleConfig, valtronicsConfig]);
    expect(goodUncleConfig.of(cfg).authTimeoutMs).toBe(0);
    expect(valtronicsConfig.of(cfg).authTimeoutMs).toBe(300);
    const n = await startTestNode({}, { env });
    try {
      const c = await TestClient.connect(`${n.wsUrl}/gooduncle`);
      const stop = keepAlive(c);
      const v = await TestClient.connect(`${n.wsUrl}/ws`);
      expect((await v.closed).code).toBe(CLOSE_CODES.auth_timeout.code);
      await sleep(600);
      expect(c.open).toBe(true);
      stop();
      await c.close();
    } finally {
      await n.close();
    }
  });
});

describe('gooduncle: configuration', () => {
  it('GOODUNCLE_TOPICS is validated with the rest of the configuration', async () => {
    for (const bad of ['not json', '[]', '{}', '{"a b":{}}', '{"t":{"indexed":["id"]}}', '{"t":{"read":"everyone"}}', '{"t":{"colour":"red"}}'])
      await expect(startTestNode({}, { env: { GOODUNCLE_TOPICS: bad } }), bad).rejects.toThrow(/GOODUNCLE_TOPICS/);
  });
});

describe('gooduncle: the seed\'s envelope', () => {
  it('the typical request gets the typical response\'s keys and value types, and names what it lacks', async () => {
    const c = await client();
    c.send(CLIENT_FRAMES.typicalRequest);
    const res = (await c.next(isResponse)) as unknown as Envelope;
    expect(Object.keys(res)).toEqual(Object.keys(TYPICAL_RESPONSE));
    expect(shape(res)).toEqual(shape(TYPICAL_RESPONSE));
    expect(res.request.payload).toEqual({ type: 'read', foo: 'bar' });
    expect(res.response.code).toBe('bad request');
    expect(res.response.errors.map((e) => [e.field, e.code])).toEqual([
      ['topic', 'invalid_message'],
      ['id', 'invalid_message'],
    ]);
    expect(res.session.roles).toEqual([]);
    expect(res.passport).toEqual([{ service: 'edge', node: node.config.nodeId }]);
    expect(res.response.time).toBeGreaterThanOrEqual(res.request.time);
    // The seed's literal (JavaScript, not JSON) is ignored: no response at all.
    c.send(CLIENT_FRAMES.typicalRequestLiteral);
    expect(await c.collect(400, isResponse)).toEqual([]);
    await c.close();
  });

  it('one session id per connection, on every response; a new connection is a new session', async () => {
    const a = await client();
    const b = await client();
    const a1 = await ask(a, { type: 'read', topic: 'orders', id: 1 });
    const a2 = await ask(a, { type: 'subscribe', topic: 'orders', query: { status: 'nobody-uses-this' } });
    const b1 = await ask(b, { type: 'read', topic: 'orders', id: 1 });
    expect(a1.session.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a2.session.id).toBe(a1.session.id);
    expect(b1.session.id).not.toBe(a1.session.id);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('gooduncle: sessions and roles', () => {
  it('forbidden before upgrade; upgrade with a token adds the user\'s roles; then the write goes through', async () => {
    const c = await client();
    const before = await ask(c, { type: 'create', topic: 'orders', data: { status: 'open' } });
    expect(before.response.code).toBe('forbidden');
    expect(before.response.errors).toEqual([{ field: 'topic', code: 'forbidden', problem: expect.stringContaining('upgrade') }]);
    expect(ok(await ask(c, { type: 'subscribe', topic: 'orders', query: { status: 'forbidden-check' } }))).toMatchObject({ objects: [] });
    const up = await ask(c, { type: 'upgrade', token: await node.token('dana', { roles: ['driver'] }) });
    expect(ok(up)).toEqual({ user: 'dana', account: 'default', roles: ['driver'] });
    expect(up.session.roles).toEqual(['driver']);
    expect(up.request.payload!.token).toBe('[redacted]');
    expect(up.passport).toEqual([{ service: 'edge', node: node.config.nodeId }, { service: 'session' }]);
    const created = await ask(c, { type: 'create', topic: 'orders', data: { status: 'forbidden-check', customer: 'dana' } });
    expect(ok(created).object).toMatchObject({ v: [1], status: 'forbidden-check', customer: 'dana' });
    expect(created.session.roles).toEqual(['driver']);
    // Nothing was written by the forbidden create: only this one object matches.
    const sub = await ask(c, { type: 'subscribe', topic: 'orders', query: { status: 'forbidden-check' } });
    expect((ok(sub).objects as unknown[]).length).toBe(1);
    await c.close();
  });

  it('upgrade with username and password (through the session service), and refusals', async () => {
    const c = await client();
    const bad = await ask(c, { type: 'upgrade', username: 'carol', password: 'wrong-password-1' });
    expect(bad.response.code).toBe('forbidden');
    expect(bad.response.errors[0]).toMatchObject({ field: 'username', code: 'invalid_credentials' });
    expect(bad.request.payload!.password).toBe('[redacted]');
    expect(bad.session.roles).toEqual([]);
    const good = await ask(c, { type: 'upgrade', username: 'carol', password: 'carol-password-1' });
    expect(ok(good)).toEqual({ user: 'carol', account: 'default', roles: ['chef', 'staff'] });
    // Another user's token on the same session: refused, roles unchanged.
    const other = await ask(c, { type: 'upgrade', token: await node.token('mallory', { roles: ['admin'] }) });
    expect(other.response.code).toBe('forbidden');
    expect(other.response.errors[0]!.code).toBe('user_mismatch');
    expect(other.session.roles).toEqual(['chef', 'staff']);
    const expired = await ask(c, { type: 'upgrade', token: 'not-a-jwt' });
    expect(expired.response).toMatchObject({ code: 'forbidden', errors: [{ field: 'token', code: 'invalid_token' }] });
    await c.close();
  });

  it('downgrade removes a role; a role the session lacks is not found; live queries it may no longer read end', async () => {
    const c = await client();
    ok(await ask(c, { type: 'upgrade', username: 'carol', password: 'carol-password-1' }));
    const secrets = await ask(c, { type: 'subscribe', topic: 'secrets', query: { kind: 'recipe' } });
    ok(secrets);
    const orders = await ask(c, { type: 'subscribe', topic: 'orders', query: { status: 'downgrade-check' } });
    ok(orders);
    const down = await ask(c, { type: 'downgrade', role: 'staff' });
    ok(down);
    expect(down.session.roles).toEqual(['chef']);
    const ended = await nextUpdate(c, secrets);
    expect(ended.response).toMatchObject({ code: 'forbidden', errors: [{ field: 'topic', code: 'forbidden' }] });
    expect(ended.request.payload).toMatchObject({ type: 'subscribe', topic: 'secrets' });
    expect((await ask(c, { type: 'read', topic: 'secrets', id: 1 })).response.code).toBe('forbidden');
    expect((await ask(c, { type: 'downgrade', role: 'staff' })).response).toMatchObject({ code: 'not found', errors: [{ field: 'role', code: 'not_found' }] });
    // The orders query (anyone reads) lives on; the secrets one is gone.
    expect((await ask(c, { type: 'unsubscribe', topic: 'secrets', query: { kind: 'recipe' } })).response.code).toBe('not found');
    ok(await ask(c, { type: 'unsubscribe', topic: 'orders', query: { status: 'downgrade-check' } }));
    // With no role left, writing needs an upgrade again.
    ok(await ask(c, { type: 'downgrade', role: 'chef' }));
    expect((await ask(c, { type: 'create', topic: 'orders', data: { status: 'x' } })).response.code).toBe('forbidden');
    await c.close();
  });

  it('topic roles from the config: a role list guards writes, "anyone" lets an anonymous session write', async () => {
    const driver = await upgraded(['driver']);
    expect((await ask(driver, { type: 'create', topic: 'menu', data: { category: 'soup' } })).response.code).toBe('forbidden');
    const chef = await upgraded(['chef']);
    ok(await ask(chef, { type: 'create', topic: 'menu', data: { category: 'soup', name: 'borscht' } }));
    const anon = await client();
    ok(await ask(anon, { type: 'create', topic: 'public', data: { text: 'hello' } }));
    await Promise.all([driver.close(), chef.close(), anon.close()]);
  });
});

describe('gooduncle: objects', () => {
  it('create, read, update (with and without v), delete; every write names its change event in the passport', async () => {
    const c = await upgraded(['driver']);
    const created = await ask(c, { type: 'create', topic: 'orders', data: { status: 'new', customer: 'ed', items: [{ sku: 'pie', n: 2 }] } });
    const object = ok(created).object as { id: number; v: number[] };
    expect(object).toEqual({ id: expect.any(Number), v: [1], status: 'new', customer: 'ed', items: [{ sku: 'pie', n: 2 }] });
    expect(created.passport).toEqual([
      { service: 'edge', node: node.config.nodeId },
      { service: 'store', epoch: expect.any(String), offset: expect.any(Number) },
    ]);
    expect(ok(await ask(c, { type: 'read', topic: 'orders', id: object.id })).object).toEqual(object);
    const updated = ok(await ask(c, { type: 'update', topic: 'orders', id: object.id, data: { status: 'paid' }, v: [1] })).object;
    expect(updated).toMatchObject({ id: object.id, v: [2], status: 'paid', customer: 'ed' });
    // Without v the update is unconditional.
    expect(ok(await ask(c, { type: 'update', topic: 'orders', id: object.id, data: { note: null } })).object).toMatchObject({ v: [3], note: null });
    const stale = await ask(c, { type: 'update', topic: 'orders', id: object.id, data: { status: 'lost' }, v: [2] });
    expect(stale.response).toMatchObject({ code: 'bad request', errors: [{ field: 'v', code: 'version_conflict' }] });
    expect(stale.response.payload.object).toMatchObject({ v: [3], status: 'paid' });
    expect(ok(await ask(c, { type: 'read', topic: 'orders', id: object.id })).object).toMatchObject({ v: [3], status: 'paid' });
    expect((await ask(c, { type: 'delete', topic: 'orders', id: object.id, v: [1] })).response.errors[0]!.code).toBe('version_conflict');
    expect(ok(await ask(c, { type: 'delete', topic: 'orders', id: object.id, v: [3] })).object).toMatchObject({ id: object.id, v: [3] });
    expect((await ask(c, { type: 'read', topic: 'orders', id: object.id })).response).toMatchObject({ code: 'not found', errors: [{ field: 'id', code: 'not_found' }] });
    expect((await ask(c, { type: 'update', topic: 'orders', id: object.id, data: { a: 1 } })).response.code).toBe('not found');
    expect((await ask(c, { type: 'read', topic: 'payroll', id: 1 })).response).toMatchObject({ code: 'not found', errors: [{ field: 'topic', code: 'unknown_channel' }] });
    await c.close();
  });

  it('an account sees only its own objects: another account\'s id is not found, and its writes never reach the other', async () => {
    const acme = await client();
    ok(await ask(acme, { type: 'upgrade', username: 'acme-admin', password: 'acme-password-1' }));
    const mine = ok(await ask(acme, { type: 'create', topic: 'notes', data: { text: 'acme only' } })).object as { id: number };
    const other = await upgraded(['admin']);
    const watch = await ask(other, { type: 'subscribe', topic: 'notes', query: {} });
    expect((ok(watch).objects as { text: string }[]).some((o) => o.text === 'acme only')).toBe(false);
    const probe = await ask(other, { type: 'read', topic: 'notes', id: mine.id });
    if (probe.response.code === 'ok') expect(probe.response.payload.object).not.toMatchObject({ text: 'acme only' });
    else expect(probe.response.code).toBe('not found');
    ok(await ask(acme, { type: 'update', topic: 'notes', id: mine.id, data: { text: 'acme, changed' } }));
    expect(await updatesOf(other, watch, 300)).toEqual([]);
    await Promise.all([acme.close(), other.close()]);
  });
});

describe('gooduncle: live queries', () => {
  it('the current results first, then one response per object that enters, changes in, or leaves the set', async () => {
    const writer = await upgraded(['driver']);
    const a = ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'live-1' } })).object as { id: number };
    ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'closed', customer: 'live-1' } }));
    const reader = await client();
    const sub = await ask(reader, { type: 'subscribe', topic: 'orders', query: { customer: 'live-1', status: 'open' } });
    expect(ok(sub)).toEqual({ objects: [{ id: a.id, v: [1], status: 'open', customer: 'live-1' }], truncated: false });
    const b = ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'live-1' } })).object as { id: number };
    ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'someone else' } }));
    ok(await ask(writer, { type: 'update', topic: 'orders', id: a.id, data: { note: 'ring twice' } }));
    ok(await ask(writer, { type: 'update', topic: 'orders', id: b.id, data: { status: 'closed' } }));
    ok(await ask(writer, { type: 'delete', topic: 'orders', id: a.id }));
    const updates = await reader.take(4, (m) => isResponse(m) && (m as unknown as Envelope).request.payload?.tag === sub.request.payload?.tag);
    expect(updates.map((u) => (u as unknown as Envelope).response.payload)).toEqual([
      { change: 'entered', op: 'create', object: { id: b.id, v: [1], status: 'open', customer: 'live-1' } },
      { change: 'changed', op: 'update', object: { id: a.id, v: [2], status: 'open', customer: 'live-1', note: 'ring twice' } },
      { change: 'left', op: 'update', object: { id: b.id, v: [2], status: 'closed', customer: 'live-1' } },
      { change: 'left', op: 'delete', object: { id: a.id, v: [2], status: 'open', customer: 'live-1', note: 'ring twice' } },
    ]);
    for (const u of updates as unknown as Envelope[]) {
      expect(u.request).toEqual(sub.request);
      expect(u.session).toEqual(sub.session);
      expect(u.response).toMatchObject({ code: 'ok', errors: [] });
      expect(u.passport).toEqual([
        { service: 'store', epoch: expect.any(String), offset: expect.any(Number) },
        { service: 'edge', node: node.config.nodeId },
      ]);
    }
    // Unsubscribed: nothing more.
    ok(await ask(reader, { type: 'unsubscribe', topic: 'orders', query: { status: 'open', customer: 'live-1' } }));
    ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'open', customer: 'live-1' } }));
    expect(await updatesOf(reader, sub, 300)).toEqual([]);
    await Promise.all([writer.close(), reader.close()]);
  });

  it('{} follows every object of the topic; updates show the session\'s current roles', async () => {
    const c = await client();
    const sub = await ask(c, { type: 'subscribe', topic: 'notes', query: {} });
    ok(sub);
    ok(await ask(c, { type: 'upgrade', token: await node.token('nina', { roles: ['scribe'] }) }));
    const created = ok(await ask(c, { type: 'create', topic: 'notes', data: { text: 'mine' } })).object;
    const u = await nextUpdate(c, sub);
    expect(u.response.payload).toEqual({ change: 'entered', op: 'create', object: created });
    expect(u.session.roles).toEqual(['scribe']);
    await c.close();
  });

  it('subscribing again with the same query replaces the subscription, and the new one is live (the only one on its channel)', async () => {
    const c = await client();
    ok(await ask(c, { type: 'upgrade', token: await node.token('solo', { roles: ['scribe'], tenant: 'solo' }) }));
    const first = await ask(c, { type: 'subscribe', topic: 'notes', query: {} });
    ok(first);
    ok(await ask(c, { type: 'create', topic: 'notes', data: { text: 'one' } }));
    expect((await nextUpdate(c, first)).response.payload).toMatchObject({ change: 'entered', object: { text: 'one' } });
    const again = await ask(c, { type: 'subscribe', topic: 'notes', query: {} });
    expect((ok(again).objects as unknown[]).length).toBe(1);
    ok(await ask(c, { type: 'create', topic: 'notes', data: { text: 'two' } }));
    expect((await nextUpdate(c, again)).response.payload).toMatchObject({ change: 'entered', object: { text: 'two' } });
    // The replaced subscription answers no more.
    expect(await updatesOf(c, first, 200)).toEqual([]);
    await c.close();
  });

  it('only the store writes to a topic\'s channel: a backend cannot publish forged change events to gooduncle', async () => {
    const res = await node.publishHttp({ dialect: 'gooduncle', channel: 'orders', attrs: { op: 'create', id: 1, 'f.status': '"open"' }, data: { id: 1, v: [1] } });
    expect(res).toMatchObject({ status: 404, body: { error: 'unknown_channel' } });
  });

  it('a query may compare only indexed fields, and a topic\'s subscriptions are bounded', async () => {
    const c = await client();
    const res = await ask(c, { type: 'subscribe', topic: 'orders', query: { colour: 'red', status: 'open' } });
    expect(res.response).toMatchObject({ code: 'bad request', errors: [{ field: 'query.colour', code: 'invalid_filter' }] });
    expect(res.response.errors).toHaveLength(1);
    await c.close();
  });

  it.each([
    ['read before the writes (the writes must follow it)', 'after' as const],
    ['read after the writes (they are in it and must not be repeated)', 'before' as const],
  ])('changes while the result set is %s: the first response plus the updates add up to the store', async (_, wait) => {
    // The store's queries take longer here, so the writes land between joining the channel and the answer.
    const slow = await startTestNode(
      { newConnectionsPerUserPerMin: 0, messagesPerSec: 10_000, messagesBurst: 10_000 },
      { env: { GOODUNCLE_TOPICS: JSON.stringify(TEST_TOPICS) }, wrapStore: (s) => new SlowQueries(s, wait === 'before' ? 1000 : 300, wait) },
    );
    try {
      const writer = await TestClient.connect(`${slow.wsUrl}/gooduncle`);
      const reader = await TestClient.connect(`${slow.wsUrl}/gooduncle`);
      stops.push(keepAlive(writer), keepAlive(reader));
      ok(await ask(writer, { type: 'upgrade', token: await slow.token('w', { roles: ['driver'] }) }));
      const ids: number[] = [];
      for (let i = 0; i < 10; i++) ids.push((ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'busy', n: 0 } })).object as { id: number }).id);
      const subscribing = ask(reader, { type: 'subscribe', topic: 'orders', query: { status: 'busy' } });
      // While the subscribe reads: updates, an object that enters, and one that leaves.
      await sleep(50);
      for (let n = 1; n <= 3; n++) await Promise.all(ids.map((id) => ask(writer, { type: 'update', topic: 'orders', id, data: { n } })));
      const late = (ok(await ask(writer, { type: 'create', topic: 'orders', data: { status: 'busy', n: 0 } })).object as { id: number }).id;
      ok(await ask(writer, { type: 'update', topic: 'orders', id: ids[0], data: { status: 'done' } }));
      const sub = await subscribing;
      const view = new Map<number, { v: number[] }>();
      for (const o of ok(sub).objects as { id: number; v: number[] }[]) view.set(o.id, o);
      const updates = await updatesOf(reader, sub, 300);
      // Read first, the result set misses the writes: they follow (10×3 changes, one entered, one left).
      // Read last, it holds them all: nothing follows.
      expect(updates.length).toBe(wait === 'after' ? 32 : 0);
      for (const u of updates) {
        const p = u.response.payload as { change: string; object: { id: number; v: number[] } };
        const held = view.get(p.object.id);
        // Never an update the first response already showed, never a "left" for an object the client never had.
        if (held) expect(p.object.v[0]).toBeGreaterThan(held.v[0]!);
        if (p.change === 'left') {
          expect(held).toBeDefined();
          view.delete(p.object.id);
        } else view.set(p.object.id, p.object);
      }
      // A change after the first response still arrives.
      ok(await ask(writer, { type: 'update', topic: 'orders', id: late, data: { n: 99 } }));
      const last = await nextUpdate(reader, sub);
      expect(last.response.payload).toMatchObject({ change: 'changed', object: { id: late, n: 99 } });
      view.set(late, last.response.payload.object as { id: number; v: number[] });
      const expected = new Map<number, unknown>();
      for (const id of [...ids, late]) {
        const o = ok(await ask(writer, { type: 'read', topic: 'orders', id })).object as { status: string };
        if (o.status === 'busy') expected.set(id, o);
      }
      expect(new Map([...view].sort(([a], [b]) => a - b))).toEqual(new Map([...expected].sort(([a], [b]) => a - b)));
      await Promise.all([writer.close(), reader.close()]);
    } finally {
      await slow.close();
    }
  }, 20_000);
});
