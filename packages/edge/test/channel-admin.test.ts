/**
 * The cluster-wide channel view on two edges sharing one in-process broker (packages/cli/test covers real
 * processes over Redis): FME's admin ops and `/admin/*` report the same cluster-wide numbers on either
 * edge, follow opens and closes at once, answer by the deadline without an edge that is gone (naming it
 * while it still counts as live), are authorised with an `admin` token (tenant-limited where the token
 * names a tenant), cap what they list, and are counted in the admin metrics and cluster gauges.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBroker } from '@switchboard/bus';
import { TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let broker: MemoryBroker;
let a: TestNode;
let b: TestNode;
let adminToken: string;
const clients: TestClient[] = [];

async function fme(node: TestNode, ...streams: string[]): Promise<TestClient> {
  const c = await TestClient.connect(`${node.wsUrl}/fme`);
  clients.push(c);
  if (streams.length > 0) c.send({ ws_op: 'open', ws_stream_ids: streams });
  return c;
}

async function fmeAdmin(node: TestNode, query: string): Promise<Record<string, unknown>> {
  const c = await TestClient.connect(`${node.wsUrl}/fme?access_token=${adminToken}`);
  c.send({ ws_op: 'admin', ws_msg: query });
  const f = await c.nextFrame();
  await c.close();
  return f.json as Record<string, unknown>;
}

async function http(node: TestNode, path: string, token: string | null = adminToken): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.httpUrl}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls until `check` passes (returns true) or fails the test after `ms`. */
async function within(ms: number, check: () => Promise<boolean>, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

beforeAll(async () => {
  broker = new MemoryBroker({ historySize: 100, historyTtlSec: 60 });
  const o = { newConnectionsPerUserPerMin: 0, clusterHelloMs: 100, adminDeadlineMs: 300, adminTopChannels: 2 };
  a = await startTestNode({ ...o, nodeId: 'edge-a' }, { broker, env: { FME_PORT: '0' } });
  b = await startTestNode({ ...o, nodeId: 'edge-b', adminMaxChannels: 3 }, { broker });
  adminToken = await a.token('operator', { roles: ['admin'] });
  await sleep(150);
});
afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await a.close();
  await b.close().catch(() => undefined);
  broker.close();
});

describe('the cluster-wide channel view', () => {
  it('getnumchannels() on either edge counts every (connection, stream) pair of the cluster', async () => {
    await fme(a, 'jobs', 'alerts');
    await fme(a, 'jobs');
    await fme(b, 'jobs');
    await fme(b);
    const want = '{"numchannels":"4","streams":[{"stream":"jobs","numchannels":"3"},{"stream":"alerts","numchannels":"1"}]}';
    await within(2000, async () => JSON.stringify(await fmeAdmin(a, 'getnumchannels()')) === want, 'four channels');
    expect(JSON.stringify(await fmeAdmin(b, 'getnumchannels()'))).toBe(want);
    const info = await fmeAdmin(b, 'getchannelinfo()');
    expect(info.numchannels).toBe('4');
    expect((info.channels as { stream: string; port: string }[]).map((c) => `${c.stream}:${c.port}`).sort()).toEqual(
      [`alerts:${a.port}`, `jobs:${a.port}`, `jobs:${a.port}`, `jobs:${b.port}`].sort(),
    );
  });

  it('/admin/nodes, /admin/channels and /admin/channels/<name> show the same numbers on either edge', async () => {
    const valtronics = await b.authed('v-user');
    clients.push(valtronics);
    valtronics.send({ type: 'subscribe', channel: 'alerts' });
    await valtronics.nextOfType('subscribe_response');
    for (const node of [a, b]) {
      const nodes = await http(node, '/admin/nodes');
      expect(nodes.status).toBe(200);
      expect(nodes.body.missing).toEqual([]);
      const byNode = Object.fromEntries((nodes.body.nodes as { node: string; by_dialect: Record<string, number> }[]).map((n) => [n.node, n.by_dialect]));
      expect(byNode['edge-a']).toEqual({ fme: 2 });
      expect(byNode['edge-b']).toEqual({ fme: 2, valtronics: 1 });
      expect(nodes.body.totals).toEqual({ connections: 5, by_dialect: { fme: 4, valtronics: 1 }, channels: 3, subscriptions: 5 });

      const channels = await http(node, '/admin/channels');
      expect(channels.body).toMatchObject({ channels: 3, subscriptions: 5, truncated: false, missing: [] });
      expect(channels.body.items).toEqual([
        { channel: 'fme:default:jobs', subscribers: 3, nodes: { 'edge-a': 2, 'edge-b': 1 } },
        { channel: 'fme:default:alerts', subscribers: 1, nodes: { 'edge-a': 1 } },
        { channel: 'valtronics:default:alerts', subscribers: 1, nodes: { 'edge-b': 1 } },
      ]);
      const onlyFme = await http(node, '/admin/channels?dialect=fme&limit=1');
      expect(onlyFme.body).toMatchObject({ channels: 2, subscriptions: 4, truncated: true, items: [{ channel: 'fme:default:jobs' }] });

      const one = await http(node, `/admin/channels/${encodeURIComponent('fme:default:jobs')}`);
      expect(one.body).toMatchObject({ channel: 'fme:default:jobs', subscribers: 3, nodes: { 'edge-a': 2, 'edge-b': 1 }, members_truncated: false });
      expect((one.body.members as { node: string; host: string; writable: boolean }[]).map((m) => m.node).sort()).toEqual(['edge-a', 'edge-a', 'edge-b']);
      expect(await http(node, '/admin/channels/fme:default:nobody')).toMatchObject({ status: 404, body: { error: 'unknown_channel' } });
    }
  });

  it('follows a close at once, on both edges', async () => {
    const leaving = await fme(b, 'jobs', 'brief');
    await within(1000, async () => (await fmeAdmin(a, 'getnumchannels()')).numchannels === '6', 'open seen');
    await leaving.close();
    const ms = await within(1000, async () => (await fmeAdmin(a, 'getnumchannels()')).numchannels === '4', 'close seen on a');
    expect(ms).toBeLessThan(1000);
    expect((await fmeAdmin(b, 'getnumchannels()')).numchannels).toBe('4');
  });

  it('refuses queries without a valid admin token; a tenant-limited token sees its tenant only', async () => {
    expect(await http(a, '/admin/nodes', null)).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect(await http(a, '/admin/nodes', 'not-a-jwt')).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect(await http(a, '/admin/channels', await a.token('nobody'))).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    const acmeAdmin = await a.token('acme-ops', { roles: ['admin'], tenant: 'acme' });
    const acme = await TestClient.connect(`${b.wsUrl}/fme?access_token=${await a.token('acme-user', { tenant: 'acme' })}`);
    clients.push(acme);
    acme.send({ ws_op: 'open', ws_stream_ids: ['jobs'] });
    await within(1000, async () => (await http(a, '/admin/channels', acmeAdmin)).body.subscriptions === 1, 'acme channel seen');
    const scoped = await http(a, '/admin/channels', acmeAdmin);
    expect(scoped.body).toMatchObject({ scope: { tenant: 'acme' }, channels: 1, items: [{ channel: 'fme:acme:jobs', subscribers: 1 }] });
    expect(await http(a, '/admin/channels?tenant=default', acmeAdmin)).toMatchObject({ status: 403 });
    expect(await http(a, `/admin/channels/${encodeURIComponent('fme:default:jobs')}`, acmeAdmin)).toMatchObject({ status: 403 });
    // The default tenant's FME admin sees its own tenant's streams only.
    expect((await fmeAdmin(a, 'getnumchannels()')).numchannels).toBe('4');
    const acmeFme = await TestClient.connect(`${a.wsUrl}/fme?access_token=${acmeAdmin}`);
    acmeFme.send({ ws_op: 'admin', ws_msg: 'getnumchannels()' });
    expect((await acmeFme.nextFrame()).text).toBe('{"numchannels":"1","streams":[{"stream":"jobs","numchannels":"1"}]}');
    await acmeFme.close();
    await acme.close();
    expect(await http(a, '/admin/channels?limit=-1')).toMatchObject({ status: 400, body: { error: 'invalid_message' } });
  });

  it('counts every query in the admin metrics, and exports bounded cluster gauges on /metrics', async () => {
    expect(await a.metric('switchboard_admin_queries_total', { query: 'fme_getnumchannels', outcome: 'ok' })).toBeGreaterThan(3);
    expect(await a.metric('switchboard_admin_queries_total', { query: 'nodes', outcome: 'unauthorized' })).toBe(2);
    expect(await a.metric('switchboard_admin_queries_total', { query: 'channels', outcome: 'forbidden' })).toBe(2);
    expect(await a.metric('switchboard_admin_queries_total', { query: 'channels', outcome: 'invalid' })).toBe(1);
    const text = await (await fetch(`${a.httpUrl}/metrics`)).text();
    expect(text).toMatch(/^switchboard_admin_query_duration_seconds_count\{query="channels"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^switchboard_cluster_nodes(\{[^}]*\})? 2$/m);
    expect(text).toMatch(/^switchboard_cluster_subscriptions(\{[^}]*\})? 5$/m);
    expect(text).toMatch(/^switchboard_cluster_channels(\{[^}]*\})? 3$/m);
    expect(text).toMatch(/^switchboard_cluster_connections\{dialect="fme"[^}]*\} 4$/m);
    // SWITCHBOARD_ADMIN_TOP_CHANNELS=2: two series, the busiest channel first among them.
    const top = text.split('\n').filter((l) => l.startsWith('switchboard_cluster_top_channel_subscribers{'));
    expect(top).toHaveLength(2);
    expect(top.some((l) => l.includes('channel="fme:default:jobs"') && l.endsWith(' 3'))).toBe(true);
    expect(await a.metric('switchboard_admin_queries_total', { query: 'cluster_gauges', outcome: 'ok' })).toBe(1);
  });

  it('an edge over its answer cap says so (truncated); totals stay exact', async () => {
    // edge-b answers with at most 3 channels (SWITCHBOARD_ADMIN_MAX_CHANNELS).
    await fme(b, 'c1', 'c2', 'c3', 'c4');
    await within(1000, async () => (await http(a, '/admin/channels?dialect=fme')).body.subscriptions === 8, 'b streams seen');
    const v = await http(a, '/admin/channels?dialect=fme');
    expect(v.body.truncated).toBe(true);
    expect((await fmeAdmin(a, 'getnumchannels()')).numchannels).toBe('8');
    expect((await fmeAdmin(a, 'getnumchannels()')).truncated).toBe('true');
  });

  it('an edge that is gone is not waited for beyond the deadline: named missing, its channels no longer counted', async () => {
    await b.close();
    // At once: edge-b still counts as live (silent for less than three hello intervals), so the query
    // waits for it until the deadline (300 ms here), then answers without it and names it.
    let started = Date.now();
    const nodes = await http(a, '/admin/nodes');
    let ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1000);
    expect(nodes.body.missing).toEqual(['edge-b']);
    expect((nodes.body.nodes as { node: string }[]).map((n) => n.node)).toEqual(['edge-a']);
    expect(await a.metric('switchboard_admin_queries_total', { query: 'nodes', outcome: 'partial' })).toBe(1);
    // edge-a's own: two connections, three (connection, stream) pairs.
    expect((await fmeAdmin(a, 'getnumchannels()')).numchannels).toBe('3');
    // Once it has been silent for three intervals it is no longer asked at all.
    await sleep(350);
    started = Date.now();
    expect(await http(a, '/admin/nodes')).toMatchObject({ body: { missing: [] } });
    ms = Date.now() - started;
    expect(ms).toBeLessThan(200);
  });
});
