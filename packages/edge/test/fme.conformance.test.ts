/**
 * The `fme` dialect against the seed (001), over real sockets: the seed's own frames (open with its
 * placeholder stream ids, send, close, both admin queries) replayed on `/fme` and on FME's own port
 * (`/` and `/websocket`), relay to every other connection of a shared stream and never back to the
 * sender, once per receiver however many streams it shares, in order; the admin answers in the seed's
 * exact shape; tokens at upgrade; backend publishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, fmeSeed, type Frame } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

const { CLIENT_FRAMES, OPEN_STREAM_IDS } = fmeSeed;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let node: TestNode;
let ownUrl: string;
let adminToken: string;

beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0 }, { env: { FME_PORT: '0', FME_CHANNEL_INFO_MAX: '4' } });
  ownUrl = `ws://127.0.0.1:${node.edge.port('fme')}`;
  adminToken = await node.token('operator', { roles: ['admin'] });
});
afterAll(async () => {
  await node.close();
});

const text = (t: string) => (f: Frame) => !f.binary && f.text === t;
const open = (c: TestClient, ...ids: string[]) => c.send({ ws_op: 'open', ws_stream_ids: ids });
/** Frames other than error frames, as text. */
const relayed = (c: TestClient) => c.frames.filter((f) => !f.text.includes('"ws_op":"error"')).map((f) => f.text);

/** Waits until the edge has `n` subscriptions on `stream` (open is asynchronous and unanswered). */
async function opened(stream: string, n: number, tenant = 'default'): Promise<void> {
  const deadline = Date.now() + 3000;
  while ((node.edge.hub.channelStats().get(`fme:${tenant}:${stream}`) ?? 0) < n) {
    if (Date.now() > deadline) throw new Error(`stream ${stream} never reached ${n} subscribers`);
    await sleep(10);
  }
}

/** Waits until no fme stream of the default tenant is open on the edge (earlier tests' closes landed). */
async function noStreams(): Promise<void> {
  const deadline = Date.now() + 3000;
  while ([...node.edge.hub.channelStats().keys()].some((c) => c.startsWith('fme:default:'))) {
    if (Date.now() > deadline) throw new Error('streams of earlier tests still open');
    await sleep(10);
  }
}

/** Sends an admin query (a whole frame, or the query name) on a connection with an admin token. */
async function admin(query: string): Promise<{ text: string; json: Record<string, unknown> }> {
  const c = await TestClient.connect(`${node.wsUrl}/fme?access_token=${adminToken}`);
  c.send(query.startsWith('{') ? query : { ws_op: 'admin', ws_msg: query });
  const f = await c.nextFrame();
  await c.close();
  return { text: f.text, json: f.json as Record<string, unknown> };
}

describe('fme: the seed frames over real sockets', () => {
  it('mounts /fme on the main port, and / and /websocket on FME_PORT', async () => {
    for (const url of [`${node.wsUrl}/fme`, `${ownUrl}/`, `${ownUrl}/websocket`]) {
      const c = await TestClient.connect(url);
      expect(c.open).toBe(true);
      await c.close();
    }
    // /websocket is FME's own-port path only; valtronics is not on FME's port.
    await expect(TestClient.connect(`${node.wsUrl}/fme/websocket`)).rejects.toThrow(/404/);
    await expect(TestClient.connect(`${ownUrl}/ws`)).rejects.toThrow(/404/);
  });

  it('open (the seed frame) + send: every other connection of the stream gets ws_msg, the sender does not', async () => {
    const sender = await TestClient.connect(`${ownUrl}/websocket`);
    const onMain = await TestClient.connect(`${node.wsUrl}/fme`);
    const onOwn = await TestClient.connect(`${ownUrl}/`);
    const other = await TestClient.connect(`${node.wsUrl}/fme`);
    sender.send(CLIENT_FRAMES.open);
    open(onMain, OPEN_STREAM_IDS[1]);
    open(onOwn, OPEN_STREAM_IDS[2]);
    open(other, 'unrelated');
    await opened('_' + Buffer.from(OPEN_STREAM_IDS[1]).toString('base64url'), 1);
    await opened('_' + Buffer.from(OPEN_STREAM_IDS[2]).toString('base64url'), 1);
    await opened('_' + Buffer.from(OPEN_STREAM_IDS[0]).toString('base64url'), 1);
    await opened('unrelated', 1);
    sender.send(CLIENT_FRAMES.send);
    expect((await onMain.nextFrame()).text).toBe('msg');
    expect((await onOwn.nextFrame()).text).toBe('msg');
    // Anything but a string arrives as its JSON text.
    sender.send({ ws_op: 'send', ws_msg: { job: 7, ok: true } });
    expect((await onMain.nextFrame()).text).toBe('{"job":7,"ok":true}');
    await onOwn.nextFrame(text('{"job":7,"ok":true}'));
    await sleep(150);
    expect(sender.frames).toEqual([]);
    expect(other.frames).toEqual([]);
    await Promise.all([sender.close(), onMain.close(), onOwn.close(), other.close()]);
  });

  it('a receiver sharing several streams with the sender gets each message once, in order', async () => {
    const sender = await TestClient.connect(`${node.wsUrl}/fme`);
    const all = await TestClient.connect(`${node.wsUrl}/fme`);
    const two = await TestClient.connect(`${ownUrl}/websocket`);
    const one = await TestClient.connect(`${node.wsUrl}/fme`);
    open(sender, 'a1', 'b1', 'c1');
    open(all, 'c1', 'b1', 'a1');
    // Its streams come in two frames: the second moves the first into the group that defers to a1.
    open(two, 'c1');
    two.send({ ws_op: 'open', ws_stream_id: 'b1' });
    open(one, 'b1');
    await opened('a1', 2);
    await opened('b1', 4);
    await opened('c1', 3);
    const N = 50;
    for (let i = 0; i < N; i++) sender.send({ ws_op: 'send', ws_msg: `m${i}` });
    const want = Array.from({ length: N }, (_, i) => `m${i}`);
    for (const c of [all, two, one]) {
      const got: string[] = [];
      for (let i = 0; i < N; i++) got.push((await c.nextFrame()).text);
      expect(got).toEqual(want);
    }
    await sleep(200);
    for (const c of [sender, all, two, one]) expect(c.frames).toEqual([]);
    await Promise.all([sender.close(), all.close(), two.close(), one.close()]);
  });

  it('close (the seed frame) closes the streams; the connection stays and may open again', async () => {
    const sender = await TestClient.connect(`${node.wsUrl}/fme`);
    const rx = await TestClient.connect(`${node.wsUrl}/fme`);
    open(sender, 'closing');
    open(rx, 'closing');
    await opened('closing', 2);
    rx.send(CLIENT_FRAMES.close);
    await sleep(50);
    expect(node.edge.hub.channelStats().get('fme:default:closing')).toBe(1);
    sender.send({ ws_op: 'send', ws_msg: 'after close' });
    await sleep(150);
    expect(relayed(rx)).toEqual([]);
    open(rx, 'closing');
    await opened('closing', 2);
    sender.send({ ws_op: 'send', ws_msg: 'again' });
    expect((await rx.nextFrame()).text).toBe('again');
    // A stream is closed when its connection goes.
    await rx.close();
    await sleep(50);
    expect(node.edge.hub.channelStats().get('fme:default:closing')).toBe(1);
    await sender.close();
    await sleep(50);
    expect(node.edge.hub.channelStats().get('fme:default:closing')).toBeUndefined();
  });

  it('getnumchannels() and getchannelinfo() (the seed frames) answer in the seed\'s exact shape', async () => {
    await noStreams();
    const x = await TestClient.connect(`${node.wsUrl}/fme`);
    const y = await TestClient.connect(`${ownUrl}/websocket`);
    open(x, 'gn1', 'gn2');
    open(y, 'gn2');
    await opened('gn1', 1);
    await opened('gn2', 2);
    // An open connection with no stream counts for none.
    const idle = await TestClient.connect(`${node.wsUrl}/fme`);
    const num = await admin(CLIENT_FRAMES.getnumchannels);
    expect(num.text).toBe('{"numchannels":"3","streams":[{"stream":"gn2","numchannels":"2"},{"stream":"gn1","numchannels":"1"}]}');
    const info = await admin(CLIENT_FRAMES.getchannelinfo);
    expect(Object.keys(info.json)).toEqual(['numchannels', 'channels']);
    expect(info.json.numchannels).toBe('3');
    const channels = info.json.channels as Record<string, string>[];
    expect(channels).toHaveLength(3);
    for (const ch of channels) {
      expect(Object.keys(ch)).toEqual(['port', 'stream', 'host', 'writable']);
      expect(ch.host).toBe('127.0.0.1');
      expect(ch.writable).toBe('true');
    }
    expect(channels.map((c) => `${c.stream}@${c.port}`).sort()).toEqual(
      [`gn1@${node.port}`, `gn2@${node.port}`, `gn2@${node.edge.port('fme')}`].sort(),
    );
    await Promise.all([x.close(), y.close(), idle.close()]);
  });

  it('getchannelinfo() is capped (FME_CHANNEL_INFO_MAX) and says so; numchannels still counts every channel', async () => {
    await noStreams();
    const c = await TestClient.connect(`${node.wsUrl}/fme`);
    open(c, 's1', 's2', 's3', 's4', 's5', 's6');
    for (const s of ['s1', 's2', 's3', 's4', 's5', 's6']) await opened(s, 1);
    const info = await admin('getchannelinfo()');
    expect(info.json.numchannels).toBe('6');
    expect(info.json.channels).toHaveLength(4);
    expect(info.json.truncated).toBe('true');
    const num = await admin('getnumchannels()');
    expect(num.json).toMatchObject({ numchannels: '6', truncated: 'true' });
    expect(num.json.streams).toHaveLength(4);
    await c.close();
  });

  it('a token at upgrade (query or Authorization) is verified before the upgrade; admin needs the role', async () => {
    await expect(TestClient.connect(`${node.wsUrl}/fme?access_token=not-a-jwt`)).rejects.toThrow(/401/);
    await expect(TestClient.connect(`${ownUrl}/websocket`, { headers: { authorization: 'Bearer not-a-jwt' } })).rejects.toThrow(/401/);
    const viaHeader = await TestClient.connect(`${ownUrl}/websocket`, { headers: { authorization: `Bearer ${adminToken}` } });
    viaHeader.send(CLIENT_FRAMES.getnumchannels);
    expect((await viaHeader.nextFrame()).json).toMatchObject({ numchannels: expect.any(String) as string, streams: expect.any(Array) as unknown[] });
    await viaHeader.close();
  });

  it('a backend publishes to a stream through POST /api/publish', async () => {
    const rx = await TestClient.connect(`${node.wsUrl}/fme`);
    open(rx, 'from-backend');
    await opened('from-backend', 1);
    const res = await node.publishHttp({ dialect: 'fme', channel: 'from-backend', data: 'hello', attrs: { x: 1 } });
    expect(res).toMatchObject({ status: 200, body: { channel: 'from-backend', offset: 1 } });
    expect((await rx.nextFrame()).text).toBe('hello');
    // Stream ids outside the channel alphabet travel encoded, both ways.
    const odd = await TestClient.connect(`${node.wsUrl}/fme`);
    open(odd, 'büro 1');
    await opened('_' + Buffer.from('büro 1').toString('base64url'), 1);
    expect((await node.publishHttp({ dialect: 'fme', channel: 'büro 1', data: [1, 2] })).status).toBe(200);
    expect((await odd.nextFrame()).text).toBe('[1,2]');
    const num = await admin('getnumchannels()');
    expect((num.json.streams as { stream: string }[]).map((s) => s.stream)).toContain('büro 1');
    await Promise.all([rx.close(), odd.close()]);
  });
});

describe('fme: FME_REQUIRE_TOKEN', () => {
  it('refuses an upgrade without a token, accepts one with a valid token', async () => {
    const strict = await startTestNode({ newConnectionsPerUserPerMin: 0 }, { env: { FME_REQUIRE_TOKEN: 'true' } });
    try {
      await expect(TestClient.connect(`${strict.wsUrl}/fme`)).rejects.toThrow(/401/);
      const token = await strict.token('fme-user');
      const a = await TestClient.connect(`${strict.wsUrl}/fme?access_token=${token}`);
      const b = await TestClient.connect(`${strict.wsUrl}/fme`, { headers: { authorization: `Bearer ${token}` } });
      a.send({ ws_op: 'open', ws_stream_id: 'z' });
      b.send({ ws_op: 'open', ws_stream_id: 'z' });
      await sleep(100);
      a.send({ ws_op: 'send', ws_msg: 'with token' });
      expect((await b.nextFrame()).text).toBe('with token');
      await Promise.all([a.close(), b.close()]);
    } finally {
      await strict.close();
    }
  });
});
