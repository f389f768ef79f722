/**
 * The edges' control plane, on two edges sharing one in-process broker (the Redis bus gives every edge
 * the same channel; packages/cli/test covers real processes): a close by index key reaches whichever
 * edge holds the connection, questions are answered by every live edge, an edge that stopped announcing
 * itself is not waited for, and a live one that does not answer is reported missing at the deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBroker } from '@switchboard/bus';
import { CLOSE_CODES } from '@switchboard/core';
import { startTestNode, type TestNode } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let broker: MemoryBroker;
let a: TestNode;
let b: TestNode;

beforeAll(async () => {
  broker = new MemoryBroker({ historySize: 100, historyTtlSec: 60 });
  const o = { newConnectionsPerUserPerMin: 0, clusterHelloMs: 100 };
  a = await startTestNode({ ...o, nodeId: 'edge-a' }, { broker });
  b = await startTestNode({ ...o, nodeId: 'edge-b' }, { broker });
  await sleep(150);
});
afterAll(async () => {
  await a.close();
  await b.close();
  broker.close();
});

describe('cluster control plane', () => {
  it('closes the connections indexed under a key on whichever edge holds them, except the one named', async () => {
    const old = await a.authed('device-7');
    const keep = await b.authed('device-7');
    const [oldConn] = [...a.edge.conns.all];
    const [keepConn] = [...b.edge.conns.all];
    a.edge.conns.index(oldConn!, 'device:default/7');
    b.edge.conns.index(keepConn!, 'device:default/7');
    await b.edge.cluster.closeWhere('device:default/7', 'normal', keepConn!.connId);
    expect((await old.closed).code).toBe(CLOSE_CODES.normal.code);
    await sleep(50);
    expect(keep.open).toBe(true);
    // The index forgets closed connections.
    expect(a.edge.conns.byKey('device:default/7')).toEqual([]);
    await keep.close();
  });

  it('every live edge answers a question; the answers come before the deadline', async () => {
    for (const n of [a, b]) n.edge.cluster.onAsk('whoami', (p) => ({ node: n.config.nodeId, echo: p }));
    expect(a.edge.cluster.liveNodes()).toEqual(['edge-a', 'edge-b']);
    const started = Date.now();
    const res = await a.edge.cluster.ask<{ node: string; echo: unknown }>('whoami', { q: 1 }, 2000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(res.missing).toEqual([]);
    expect(res.answers.map((x) => x.result.node).sort()).toEqual(['edge-a', 'edge-b']);
    expect(res.answers.every((x) => (x.result.echo as { q: number }).q === 1)).toBe(true);
  });

  it('a live edge that does not answer is reported missing at the deadline, never waited for beyond it', async () => {
    b.edge.cluster.onAsk('slow', () => new Promise((r) => setTimeout(() => r('late'), 1500)));
    a.edge.cluster.onAsk('slow', () => 'fast');
    const started = Date.now();
    const res = await a.edge.cluster.ask('slow', null, 300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(800);
    expect(res.answers).toEqual([{ node: 'edge-a', result: 'fast' }]);
    expect(res.missing).toEqual(['edge-b']);
  });

  it('an edge that stops announcing itself is dropped from the live set within three intervals', async () => {
    b.edge.cluster.stop();
    await sleep(450);
    expect(a.edge.cluster.liveNodes()).toEqual(['edge-a']);
    const started = Date.now();
    const res = await a.edge.cluster.ask('whoami', null, 2000);
    expect(Date.now() - started).toBeLessThan(500);
    expect(res.answers.map((x) => x.node)).toEqual(['edge-a']);
  });
});
