/**
 * `fme` across real processes: two `switchboard edge` processes, a session service and a redis-server.
 * A sender on edge A, receivers of stream s1 on both edges (one sharing two streams with the sender):
 * every receiver gets every message once and in order, a receiver of s2 none, the sender none.
 * `getnumchannels()` on either edge, `/admin/*` on either edge and `switchboard channels` report the same
 * cluster-wide numbers, which change within a second after a receiver disconnects or its edge is killed
 * (SIGKILL). The admin metrics appear in `/metrics` and pass `promtool check metrics`. And a Redis
 * restart while sending: receivers get no duplicate, nothing out of order, and every message the sender
 * was not told had failed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import { TestClient, startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function edgeEnv(redisUrl: string, nodeId: string, sessionUrl: string): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    NODE_ID: nodeId,
    SWITCHBOARD_SESSION_URL: sessionUrl,
    SWITCHBOARD_SHARDS: '16',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_DRAIN_MS: '100',
  };
}

function startSession(redisUrl: string): Promise<SwitchboardProcess> {
  return startSwitchboard(BIN, 'session', { REDIS_URL: redisUrl }, 20_000, 'SESSION_PORT');
}

async function mint(session: SwitchboardProcess, roles: string[]): Promise<string> {
  const res = await fetch(`${session.httpUrl}/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
    body: JSON.stringify({ sub: 'fme-test', roles }),
  });
  return ((await res.json()) as { token: string }).token;
}

/** Opens a connection on `/fme` with `streams` open (waits until the edge subscribed them). */
async function fme(edge: SwitchboardProcess, streams: string[]): Promise<TestClient> {
  const c = await TestClient.connect(`${edge.wsUrl}/fme`);
  c.send({ ws_op: 'open', ws_stream_ids: streams });
  return c;
}

async function numchannels(edge: SwitchboardProcess, token: string): Promise<string> {
  const c = await TestClient.connect(`${edge.wsUrl}/fme?access_token=${token}`);
  c.send({ ws_op: 'admin', ws_msg: 'getnumchannels()' });
  const f = await c.nextFrame(() => true, 5000);
  await c.close();
  return f.text;
}

async function admin(edge: SwitchboardProcess, path: string, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${edge.httpUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Runs `switchboard channels` and returns what it printed. */
function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'channels', ...args], { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** Polls until `check` holds; resolves with the milliseconds it took, or throws after `ms`. */
async function within(ms: number, check: () => Promise<boolean>, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

describe('fme on two edge processes over Redis', () => {
  let redis: RedisServer;
  let session: SwitchboardProcess;
  let a: SwitchboardProcess;
  let b: SwitchboardProcess;
  let adminToken: string;

  beforeAll(async () => {
    redis = await startRedis();
    session = await startSession(redis.url);
    [a, b] = await Promise.all([
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, 'edge-a', session.httpUrl)),
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, 'edge-b', session.httpUrl)),
    ]);
    adminToken = await mint(session, ['admin']);
    // Both edges have heard each other's hello (default interval 2 s).
    await within(5000, async () => ((await admin(a, '/admin/nodes', adminToken)).nodes as unknown[]).length === 2, 'both edges live');
  }, 90_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop('SIGKILL')]);
    await session?.stop();
    await redis?.stop();
  });

  it('relays through the bus to receivers on both edges, once and in order; reports the same numbers everywhere; follows closes and a killed edge', async () => {
    const sender = await fme(a, ['s1', 's1b']);
    const rxA = await fme(a, ['s1']);
    const rxB = await fme(b, ['s1b', 's1']);
    const other = await fme(b, ['s2']);
    const want = '{"numchannels":"6","streams":[{"stream":"s1","numchannels":"3"},{"stream":"s1b","numchannels":"2"},{"stream":"s2","numchannels":"1"}]}';
    await within(5000, async () => (await numchannels(a, adminToken)) === want, 'every stream open');
    expect(await numchannels(b, adminToken)).toBe(want);

    // In bursts under the per-connection rate limit (100 messages per second).
    const N = 200;
    for (let i = 0; i < N; i++) {
      sender.send({ ws_op: 'send', ws_msg: i % 2 ? `m${i}` : { i } });
      if (i % 50 === 49) await sleep(550);
    }
    const expected = Array.from({ length: N }, (_, i) => (i % 2 ? `m${i}` : JSON.stringify({ i })));
    for (const rx of [rxA, rxB]) {
      const got: string[] = [];
      for (let i = 0; i < N; i++) got.push((await rx.nextFrame(() => true, 10_000)).text);
      expect(got).toEqual(expected);
    }
    await sleep(300);
    expect(rxA.frames).toEqual([]);
    expect(rxB.frames).toEqual([]);
    expect(other.frames).toEqual([]);
    expect(sender.frames).toEqual([]);

    // /admin/* on either edge and `switchboard channels` show the same numbers.
    for (const edge of [a, b]) {
      const nodes = await admin(edge, '/admin/nodes', adminToken);
      expect(nodes.totals).toEqual({ connections: 4, by_dialect: { fme: 4 }, channels: 3, subscriptions: 6 });
      expect((nodes.nodes as { node: string; by_dialect: unknown }[]).map((n) => [n.node, n.by_dialect])).toEqual([
        ['edge-a', { fme: 2 }],
        ['edge-b', { fme: 2 }],
      ]);
      const channels = await admin(edge, '/admin/channels', adminToken);
      expect(channels).toMatchObject({ channels: 3, subscriptions: 6, missing: [] });
      expect(channels.items).toEqual([
        { channel: 'fme:default:s1', subscribers: 3, nodes: { 'edge-a': 2, 'edge-b': 1 } },
        { channel: 'fme:default:s1b', subscribers: 2, nodes: { 'edge-a': 1, 'edge-b': 1 } },
        { channel: 'fme:default:s2', subscribers: 1, nodes: { 'edge-b': 1 } },
      ]);
    }
    const printed = await cli(['--url', b.httpUrl, '--session-url', session.httpUrl, '--admin-token', DEV_ADMIN_TOKEN]);
    expect(printed.code, printed.out).toBe(0);
    expect(printed.out).toMatch(/^2 edges answered$/m);
    expect(printed.out).toMatch(/^edge-a\s+2\s+fme=2\s+2\s+3$/m);
    expect(printed.out).toMatch(/^edge-b\s+2\s+fme=2\s+3\s+3$/m);
    expect(printed.out).toMatch(/^total\s+4\s+fme=4\s+3\s+6$/m);
    expect(printed.out).toMatch(/^fme:default:s1\s+3\s+edge-a=2 edge-b=1$/m);
    expect(printed.out).toMatch(/^3 channels, 6 subscriptions$/m);
    const asJson = await cli(['--url', a.httpUrl, '--token', adminToken, '--json']);
    expect(JSON.parse(asJson.out)).toMatchObject({ nodes: { totals: { subscriptions: 6 } }, channels: { subscriptions: 6 } });

    // A receiver disconnects: both edges report it within a second.
    await rxA.close();
    const afterClose = '{"numchannels":"5","streams":[{"stream":"s1","numchannels":"2"},{"stream":"s1b","numchannels":"2"},{"stream":"s2","numchannels":"1"}]}';
    expect(await within(1000, async () => (await numchannels(b, adminToken)) === afterClose, 'close seen on b')).toBeLessThan(1000);
    expect(await numchannels(a, adminToken)).toBe(afterClose);

    // Edge B is killed: edge A no longer counts its channels within a second (B is named missing
    // while it still counts as live, and is not waited for beyond the deadline).
    await b.stop('SIGKILL');
    const killedAt = Date.now();
    const onlyA = '{"numchannels":"2","streams":[{"stream":"s1","numchannels":"1"},{"stream":"s1b","numchannels":"1"}]}';
    await within(1000, async () => (await numchannels(a, adminToken)) === onlyA, 'killed edge dropped');
    expect(Date.now() - killedAt).toBeLessThan(1000);
    const nodes = await admin(a, '/admin/nodes', adminToken);
    expect((nodes.nodes as { node: string }[]).map((n) => n.node)).toEqual(['edge-a']);
    await sender.close();
  }, 90_000);

  it('the admin metrics and cluster gauges appear in /metrics and pass promtool check metrics', async () => {
    const rx = await fme(a, ['s1']);
    await within(3000, async () => (await numchannels(a, adminToken)).startsWith('{"numchannels":"1"'), 'stream open');
    const text = await (await fetch(`${a.httpUrl}/metrics`)).text();
    await rx.close();
    expect(text).toMatch(/^switchboard_admin_queries_total\{query="fme_getnumchannels",outcome="ok"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^switchboard_admin_queries_total\{query="nodes",outcome="(ok|partial)"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^switchboard_admin_query_duration_seconds_bucket\{[^}]*query="channels"/m);
    expect(text).toMatch(/^switchboard_cluster_nodes(\{[^}]*\})? \d/m);
    expect(text).toMatch(/^switchboard_cluster_top_channel_subscribers\{channel="fme:default:s1"/m);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.error, 'promtool (Debian package prometheus) must be installed').toBeUndefined();
    const findings = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
    // prom-client's default process metrics carry three known findings (deploy-checks tracks them).
    expect(findings.filter((f) => !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(f))).toEqual([]);
    expect(r.status).toBe(findings.length > 0 ? 3 : 0);
  });
});

describe('fme through a Redis restart while sending', () => {
  it('receivers get no duplicate and nothing out of order, and every message the sender was not told had failed', async () => {
    const redis = await startRedis({ persistent: true });
    const session = await startSession(redis.url);
    const [a, b] = await Promise.all([
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, 'edge-ra', session.httpUrl)),
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, 'edge-rb', session.httpUrl)),
    ]);
    try {
      const token = await mint(session, ['admin']);
      const sender = await fme(a, ['r1']);
      const rxA = await fme(a, ['r1']);
      const rxB = await fme(b, ['r1']);
      await within(10_000, async () => (await numchannels(a, token)).startsWith('{"numchannels":"3"'), 'streams open');
      let sent = 0;
      let sending = true;
      const loop = (async () => {
        while (sending) {
          sender.send({ ws_op: 'send', ws_msg: sent++ });
          await sleep(15);
        }
      })();
      await sleep(300);
      await redis.kill();
      await sleep(300);
      await redis.restart();
      await sleep(1500);
      sending = false;
      await loop;
      // Every send is accounted for once the sender has been told of each failure and the receivers have
      // the rest (sends queued behind a failing one are answered as the bus answers them, in order).
      const errors = () => sender.frames.filter((f) => f.text.includes('"ws_error"')).length;
      await within(15_000, () => Promise.resolve([rxA, rxB].every((rx) => rx.frames.length + errors() >= sent)), 'every send delivered or refused');
      const failed = errors();
      expect(sender.frames.every((f) => (f.json as { ws_error?: string }).ws_error === 'unavailable'), JSON.stringify(sender.frames.map((f) => f.text))).toBe(true);
      for (const rx of [rxA, rxB]) {
        const got = rx.frames.map((f) => Number(f.text));
        expect(new Set(got).size, 'no duplicate').toBe(got.length);
        expect(got, 'in order').toEqual([...got].sort((x, y) => x - y));
        // At least every send that was not refused; a refused one may still have reached Redis.
        expect(got.length, `sent ${sent}, refused ${failed}`).toBeGreaterThanOrEqual(sent - failed);
        expect(rx.open).toBe(true);
      }
      expect(sent).toBeGreaterThan(30);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await session.stop();
      await redis.stop();
    }
  }, 90_000);
});
