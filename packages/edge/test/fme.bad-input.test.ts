/**
 * Hostile and malformed input on the `fme` dialect: each case gets FME's error frame
 * (`{"ws_op":"error","ws_error":<code>,...}`, docs/dialects/fme.md), the connection keeps working (or
 * closes with its documented code), the node never crashes, and a bystander receiving a stream loses
 * nothing meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES } from '@switchboard/core';
import { TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let node: TestNode;
let bystander: TestClient;
let feeder: TestClient;
let fed = 0;
/** Messages to the bystander's stream sent by a connection other than the feeder. */
const notFromFeeder: unknown[] = [];

const error = (c: TestClient, timeoutMs = 3000) => c.next((m) => m.ws_op === 'error', timeoutMs);

/** Waits until the edge has `n` subscriptions on `stream`. */
async function opened(stream: string, n: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while ((node.edge.hub.channelStats().get(`fme:default:${stream}`) ?? 0) < n) {
    if (Date.now() > deadline) throw new Error(`stream ${stream} never reached ${n} subscribers`);
    await sleep(10);
  }
}

/** One more message to the bystander's stream. */
function feed(): void {
  feeder.send({ ws_op: 'send', ws_msg: { n: ++fed } });
}

let probe = 0;
/** The connection still relays: it opens a fresh stream and gets a message sent there. */
async function stillWorks(c: TestClient): Promise<void> {
  const stream = `probe-${++probe}`;
  const peer = await TestClient.connect(`${node.wsUrl}/fme`);
  c.send({ ws_op: 'open', ws_stream_id: stream });
  peer.send({ ws_op: 'open', ws_stream_id: stream });
  await opened(stream, 2);
  peer.send({ ws_op: 'send', ws_msg: `alive ${probe}` });
  expect((await c.nextFrame((f) => f.text === `alive ${probe}`)).text).toBe(`alive ${probe}`);
  c.send({ ws_op: 'close' });
  await peer.close();
}

beforeAll(async () => {
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000 },
    { env: { FME_MAX_MESSAGE_BYTES: '32768', FME_MAX_SUBSCRIPTIONS_PER_CONNECTION: '8' } },
  );
  bystander = await TestClient.connect(`${node.wsUrl}/fme`);
  feeder = await TestClient.connect(`${node.wsUrl}/fme`);
  bystander.send({ ws_op: 'open', ws_stream_ids: ['watch'] });
  feeder.send({ ws_op: 'open', ws_stream_ids: ['watch'] });
  await opened('watch', 2);
});

afterAll(async () => {
  // Nothing the bystander's stream carried was lost while the others misbehaved.
  const got: unknown[] = [];
  for (let i = 0; i < fed; i++) got.push((await bystander.nextFrame()).json);
  expect(got).toEqual(Array.from({ length: fed }, (_, i) => ({ n: i + 1 })));
  // The feeder never got its own messages, only those others sent to the stream.
  expect(feeder.frames.map((f) => f.json)).toEqual(notFromFeeder);
  await node.close();
});

describe('fme bad input: an error frame, the connection keeps working', () => {
  const cases: [string, unknown, string, string?][] = [
    ['invalid JSON', '{"ws_op": "open", "ws_stream_ids": ', 'invalid_json'],
    ['plain text', 'hello', 'invalid_json'],
    ['JSON array', [1, 2], 'invalid_message'],
    ['JSON null', 'null', 'invalid_message'],
    ['missing ws_op', { ws_msg: 'x' }, 'invalid_message'],
    ['ws_op of the wrong type', { ws_op: ['open'] }, 'invalid_message'],
    ['unknown ws_op', { ws_op: 'subscribe', ws_stream_ids: ['a'] }, 'unknown_type'],
    ['send before open', { ws_op: 'send', ws_msg: 'too early' }, 'not_subscribed', 'send'],
    ['send without ws_msg', { ws_op: 'send' }, 'invalid_message', 'send'],
    ['open without stream ids', { ws_op: 'open' }, 'invalid_message', 'open'],
    ['non-string stream ids', { ws_op: 'open', ws_stream_ids: ['ok', 7, { id: 'x' }] }, 'invalid_message', 'open'],
    ['a number as the single stream id', { ws_op: 'open', ws_stream_id: 5 }, 'invalid_message', 'open'],
    ['stream ids not an array', { ws_op: 'open', ws_stream_ids: 'a,b' }, 'invalid_message', 'open'],
    ['an empty stream id', { ws_op: 'open', ws_stream_ids: [''] }, 'invalid_message', 'open'],
    ['thousands of stream ids', { ws_op: 'open', ws_stream_ids: Array.from({ length: 3000 }, (_, i) => `s${i}`) }, 'too_many_subscriptions', 'open'],
    ['__proto__ key', '{"ws_op":"send","ws_msg":{"__proto__":{"polluted":true}}}', 'forbidden_key'],
    ['constructor key', '{"ws_op":"open","ws_stream_ids":["a"],"constructor":{"prototype":{"x":1}}}', 'forbidden_key'],
    ['deep nesting', `{"ws_op":"send","ws_msg":${'{"a":'.repeat(30)}1${'}'.repeat(30)}}`, 'too_deep'],
    ['unknown admin query', { ws_op: 'admin', ws_msg: 'shutdown()' }, 'unknown_type', 'admin'],
    ['admin without a token', { ws_op: 'admin', ws_msg: 'getnumchannels()' }, 'not_authenticated', 'admin'],
    ['a message over FME_MAX_MESSAGE_BYTES', { ws_op: 'send', ws_msg: 'x'.repeat(40_000) }, 'message_too_large'],
  ];
  for (const [name, frame, code, op] of cases) {
    it(name, async () => {
      const c = await TestClient.connect(`${node.wsUrl}/fme`);
      c.send(frame);
      const err = await error(c);
      expect(err).toMatchObject({ ws_op: 'error', ws_error: code, ...(op ? { ws_request: op } : {}) });
      expect(typeof err.ws_msg).toBe('string');
      feed();
      await stillWorks(c);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await c.close();
    });
  }

  it('binary frames get invalid_message', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/fme`);
    c.send(Buffer.from([1, 2, 3]));
    expect(await error(c)).toMatchObject({ ws_error: 'invalid_message' });
    await stillWorks(c);
    await c.close();
  });

  it('streams beyond the per-connection limit, across several opens, get too_many_subscriptions; nothing is half-opened', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/fme`);
    c.send({ ws_op: 'open', ws_stream_ids: ['l1', 'l2', 'l3', 'l4', 'l5', 'l6'] });
    c.send({ ws_op: 'open', ws_stream_ids: ['l6', 'l7', 'l8', 'l9'] });
    expect(await error(c)).toMatchObject({ ws_error: 'too_many_subscriptions', ws_request: 'open' });
    await opened('l6', 1);
    expect(node.edge.hub.channelStats().get('fme:default:l7')).toBeUndefined();
    // Already open ones do not count again.
    c.send({ ws_op: 'open', ws_stream_ids: ['l1', 'l7', 'l8'] });
    await opened('l8', 1);
    feed();
    await c.close();
  });

  it('admin with a token lacking the admin role gets forbidden; the connection still opens and sends', async () => {
    const token = await node.token('plain-user');
    const c = await TestClient.connect(`${node.wsUrl}/fme?access_token=${token}`);
    c.send({ ws_op: 'admin', ws_msg: 'getchannelinfo()' });
    expect(await error(c)).toMatchObject({ ws_error: 'forbidden', ws_request: 'admin' });
    c.send({ ws_op: 'open', ws_stream_ids: ['watch'] });
    await opened('watch', 3);
    c.send({ ws_op: 'send', ws_msg: { n: ++fed } });
    notFromFeeder.push({ n: fed });
    c.send({ ws_op: 'close' });
    expect(await node.metric('switchboard_admin_queries_total', { query: 'fme_getchannelinfo', outcome: 'forbidden' })).toBe(1);
    await c.close();
  });
});

describe('fme floods', () => {
  it('admin queries over FME_ADMIN_QUERIES_PER_SEC get rate_limited (rule admin_queries); others are answered', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/fme?access_token=${await node.token('ops', { roles: ['admin'] })}`);
    for (let i = 0; i < 10; i++) c.send({ ws_op: 'admin', ws_msg: 'getnumchannels()' });
    const frames: Record<string, unknown>[] = [];
    for (let i = 0; i < 10; i++) frames.push(await c.next());
    const limited = frames.filter((f) => f.ws_error === 'rate_limited');
    expect(limited.length).toBeGreaterThanOrEqual(7);
    expect(frames.filter((f) => typeof f.numchannels === 'string').length).toBe(10 - limited.length);
    expect(await node.metric('switchboard_rate_limit_rejections_total', { dialect: 'fme', rule: 'admin_queries' })).toBe(limited.length);
    await c.close();
  });

  it('more than 100 messages per second get rate_limited; the sends that passed are relayed, in order', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/fme`);
    c.send({ ws_op: 'open', ws_stream_ids: ['flood'] });
    const rx = await TestClient.connect(`${node.wsUrl}/fme`);
    rx.send({ ws_op: 'open', ws_stream_ids: ['flood'] });
    await opened('flood', 2);
    for (let i = 0; i < 150; i++) c.send({ ws_op: 'send', ws_msg: i });
    await sleep(500);
    const errors = c.drain((m) => m.ws_error === 'rate_limited');
    expect(errors.length).toBeGreaterThanOrEqual(40);
    const got = rx.frames.map((f) => Number(f.text));
    expect(got.length).toBe(150 - errors.length);
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(await node.metric('switchboard_rate_limit_rejections_total', { dialect: 'fme', rule: 'messages_per_sec' })).toBeGreaterThanOrEqual(40);
    feed();
    await Promise.all([c.close(), rx.close()]);
  });

  it('connections with a token are admitted: over the per-user limit one gets connection_limit and 4009', async () => {
    const n = await startTestNode({ newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 2 });
    try {
      const token = await n.token('busy');
      const url = `${n.wsUrl}/fme?access_token=${token}`;
      const first = await TestClient.connect(url);
      const second = await TestClient.connect(url);
      // Requests wait for the admission: this open is served once it passed.
      second.send({ ws_op: 'open', ws_stream_ids: ['x'] });
      await sleep(100);
      const third = await TestClient.connect(url);
      third.send({ ws_op: 'open', ws_stream_ids: ['x'] });
      expect(await error(third)).toMatchObject({ ws_error: 'connection_limit' });
      expect((await third.closed).code).toBe(CLOSE_CODES.admission_refused.code);
      expect(n.edge.hub.channelStats().get('fme:default:x')).toBe(1);
      expect(await n.metric('switchboard_rate_limit_rejections_total', { dialect: 'fme' })).toBe(1);
      // A close frees a place; anonymous connections are not counted.
      await first.close();
      await sleep(100);
      const again = await TestClient.connect(url);
      const anonymous = await Promise.all([1, 2, 3].map(() => TestClient.connect(`${n.wsUrl}/fme`)));
      await sleep(150);
      expect(again.open && anonymous.every((c) => c.open)).toBe(true);
      expect(second.frames).toEqual([]);
    } finally {
      await n.close();
    }
  });

  it('sustained flooding closes with 4029', async () => {
    const n = await startTestNode({ rateLimitCloseAfter: 20 });
    try {
      const c = await TestClient.connect(`${n.wsUrl}/fme`);
      for (let i = 0; i < 200; i++) c.send({ ws_op: 'close' });
      expect((await c.closed).code).toBe(CLOSE_CODES.rate_limit_abuse.code);
    } finally {
      await n.close();
    }
  });
});
