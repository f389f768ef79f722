/**
 * The load generator's own machinery, which the figures rest on: the keep-alive HTTP client (responses
 * read whole, by length and chunked, one connection reused), the rate publisher (one message per request
 * keeps a rate above one tick's worth of slots, and says so when it cannot), the staircase (a second try at a
 * failing rate, midpoints, halving), and heap snapshot summaries.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeepAlivePool } from '../src/http-raw.js';
import { commandStats } from '../src/cpu.js';
import { maxSustained, publishAtRate, staircase, type StepResult } from '../src/generator.js';
import { growth, summarise } from '../src/inspector.js';
import { moduleOf, selfTimes } from '../src/cpuprofile-top.js';
import type { IdleResult } from '../src/scenarios.js';
import { evaluate, latencyFloor } from '../src/targets.js';

describe('KeepAlivePool', () => {
  let server: Server;
  let port = 0;
  let connections = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (req.url === '/chunked') {
          res.writeHead(201, { 'content-type': 'text/plain' });
          res.write('ab');
          res.write('cd');
          res.end(body);
        } else res.end(`echo:${body}`);
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('reads responses by length and chunked, over one reused connection', async () => {
    const pool = new KeepAlivePool('127.0.0.1', port, 1);
    const plain = KeepAlivePool.head('POST', '/x', `127.0.0.1:${port}`, {});
    const chunked = KeepAlivePool.head('POST', '/chunked', `127.0.0.1:${port}`, {});
    const a = await pool.request(plain, 'one');
    const b = await pool.request(chunked, 'two');
    const c = await pool.request(plain, 'three');
    pool.close();
    expect([a.status, a.body.toString()]).toEqual([200, 'echo:one']);
    expect([b.status, b.body.toString()]).toEqual([201, 'abcdtwo']);
    expect([c.status, c.body.toString()]).toEqual([200, 'echo:three']);
    expect(connections).toBe(1);
    expect(a.latencyMs).toBeGreaterThan(0);
  });

  it('queues requests beyond its size and answers each with its own body', async () => {
    const pool = new KeepAlivePool('127.0.0.1', port, 4);
    const head = KeepAlivePool.head('POST', '/x', `127.0.0.1:${port}`, {});
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.request(head, String(i))));
    pool.close();
    expect(replies.map((r) => r.body.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `echo:${i}`));
  });

  it('fails fast when nothing listens', async () => {
    const pool = new KeepAlivePool('127.0.0.1', 1, 2);
    await expect(pool.request(KeepAlivePool.head('POST', '/', 'x', {}), '')).rejects.toThrow();
    pool.close();
  });
});

describe('publishAtRate', () => {
  const delayed = (ms: number) => () => new Promise<void>((r) => setTimeout(r, ms));

  it('keeps a rate of single-message requests that one 5 ms tick of slots could not', async () => {
    // 2 requests in flight: slots refilled only on ticks give at most 400/s; 1,000/s needs a refill on
    // every completion. A request completes in the next turn of the loop (no timer: a busy machine
    // delays timers, not this).
    let sent = 0;
    const run = await publishAtRate(
      async (n) => {
        sent += n;
        await new Promise((r) => setImmediate(r));
      },
      1000,
      500,
      1,
      2,
    );
    expect(run.fellBehind).toBe(false);
    expect(sent).toBeGreaterThanOrEqual(475);
  });

  it('says it fell behind when requests are slower than the rate allows', async () => {
    const run = await publishAtRate(delayed(50), 1000, 300, 1, 2);
    expect(run.fellBehind).toBe(true);
    expect(run.sent).toBeLessThan(100);
  });
});

describe('heap and CPU profile summaries', () => {
  const snapshot = (objects: [string, number][]) => ({
    snapshot: { meta: { node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'], node_types: [['hidden', 'array', 'string', 'object', 'code', 'closure'] as string[]] as [string[]] } },
    nodes: objects.flatMap(([name, size], i) => [name === '(s)' ? 2 : 3, i, i + 1, size, 0]),
    strings: objects.map(([n]) => n),
  });

  it('sums objects per constructor and reports growth per unit', () => {
    const before = summarise(snapshot([['Group', 100], ['(s)', 10]]));
    const after = summarise(snapshot([['Group', 100], ['Group', 100], ['Group', 100], ['(s)', 10], ['(s)', 30], ['Other', 5]]));
    expect(after.find((k) => k.name === 'Group')).toEqual({ name: 'Group', count: 3, bytes: 300 });
    const g = growth(before, after, 2);
    expect(g[0]).toEqual({ name: 'Group', countPerUnit: 1, bytesPerUnit: 100 });
    expect(g.find((x) => x.name === '(string)')?.bytesPerUnit).toBe(15);
  });

  it('attributes CPU self time to functions and modules, idle excluded', () => {
    const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0 }, children });
    const profile = {
      nodes: [frame(1, '(root)', '', [2, 3, 4]), frame(2, 'dispatch', 'file:///w/packages/edge/dist/hub.js'), frame(3, 'write', 'file:///w/node_modules/ioredis/built/x.js'), frame(4, '(idle)', '')],
      samples: [2, 2, 3, 4],
      timeDeltas: [10, 10, 5, 1000],
      startTime: 0,
      endTime: 1025,
    };
    const s = selfTimes(profile);
    expect(s.totalUs).toBe(25);
    expect(s.byModule.get('@switchboard/edge')).toBe(20);
    expect(s.byModule.get('ioredis')).toBe(5);
    expect(moduleOf('node:net', 'x')).toBe('node internals');
  });
});

describe('staircase', () => {
  /** A step at `rate` that is sustained when `holds(rate, tryNumber)` says so. */
  const fake = (holds: (rate: number, attempt: number) => boolean) => {
    const attempts = new Map<number, number>();
    const calls: number[] = [];
    const step = (rate: number): Promise<StepResult> => {
      const n = (attempts.get(rate) ?? 0) + 1;
      attempts.set(rate, n);
      calls.push(rate);
      const sustained = holds(rate, n);
      return Promise.resolve({ rate, sent: rate, expected: rate, delivered: rate, lost: 0, duplicatesOrReordered: 0, deliveredPerSec: rate, p50Ms: 1, p99Ms: sustained ? 1 : 999, maxMs: 1, cpuSec: {}, generatorCpuSec: 0, durationSec: 1, rssBytes: {}, fellBehind: false, sustained });
    };
    return { step, calls };
  };

  it('tries a failing rate a second time, and counts it when the second try holds', async () => {
    // 400 collapses once, then holds; 800 never holds.
    const f = fake((rate, attempt) => rate < 400 || (rate === 400 && attempt === 2));
    const steps = await staircase([100, 200, 400, 800], f.step, 0);
    expect(f.calls).toEqual([100, 200, 400, 400, 800, 800]);
    expect(steps.map((s) => [s.rate, s.sustained, s.retry ?? false])).toEqual([
      [100, true, false],
      [200, true, false],
      [400, false, false],
      [400, true, true],
      [800, false, false],
      [800, false, true],
    ]);
    expect(maxSustained(steps)?.rate).toBe(400);
  });

  it('narrows between the last rate held and the first failed, each midpoint with its second try', async () => {
    const f = fake((rate) => rate <= 600);
    const steps = await staircase([200, 400, 800], f.step, 2);
    // 800 fails twice; 600 holds; 700 fails twice.
    expect(f.calls).toEqual([200, 400, 800, 800, 600, 700, 700]);
    expect(maxSustained(steps)?.rate).toBe(600);
  });

  it('halves a first rate that fails, and with tries = 1 gives up on a rate at its first failure', async () => {
    const f = fake((rate) => rate <= 250);
    const steps = await staircase([1000], f.step, 0, 1);
    expect(f.calls).toEqual([1000, 500, 250]);
    expect(maxSustained(steps)?.rate).toBe(250);
  });
});

describe('targets: the quick run agrees with the last full run on idle memory', () => {
  const idle = (dialect: string, kb: number): IdleResult => ({
    dialect,
    what: 'x',
    counts: [6000, 12_000],
    rssBytes: [0, 0, 0],
    heapBytes: [0, 0, 0],
    rssPerConnection: kb * 1024,
    heapPerConnection: 0,
    rssPerConnectionFromZero: 0,
    fdLimit: 20_000,
  });
  const reference = { date: '2026-11-30', dialects: { valtronics: { rssPerConnection: 2.8 * 1024, counts: [6000, 18_000] as [number, number] } } };
  const agreement = (lines: ReturnType<typeof evaluate>) => lines.filter((l) => l.target.includes('within ±10 %'));

  it('passes within 10 % either way, falls short past it, and says against which run', () => {
    const [near] = agreement(evaluate({ idle: [idle('valtronics', 2.55)], idleReference: reference }));
    expect(near).toMatchObject({ pass: true });
    expect(near!.measured).toContain('2.55 vs 2.80 KB (full run of 2026-11-30, between 6,000 and 18,000) = -8.9 %');
    expect(agreement(evaluate({ idle: [idle('valtronics', 3.1)], idleReference: reference }))[0]).toMatchObject({ pass: false });
    expect(agreement(evaluate({ idle: [idle('valtronics', 2.5)], idleReference: reference }))[0]).toMatchObject({ pass: false });
  });

  it('has no such line without a reference, or for a dialect the reference does not have', () => {
    expect(agreement(evaluate({ idle: [idle('valtronics', 2.8)] }))).toEqual([]);
    expect(agreement(evaluate({ idle: [idle('oisp', 2.8)], idleReference: reference }))).toEqual([]);
  });
});

describe('targets: the p99 lines name the generator latency floor', () => {
  const step = (rate: number, perSec: number, p99Ms: number, sustained = true): StepResult => ({
    rate,
    sent: rate,
    expected: rate,
    delivered: rate,
    lost: 0,
    duplicatesOrReordered: 0,
    deliveredPerSec: perSec,
    p50Ms: 1,
    p99Ms,
    maxMs: p99Ms,
    cpuSec: {},
    generatorCpuSec: 0,
    durationSec: 1,
    rssBytes: {},
    fellBehind: false,
    sustained,
  });
  const bare = [step(200, 200_000, 20), step(400, 400_000, 24.6), step(800, 800_000, 36), step(600, 640_000, 5, false)];

  it("uses bare uWS's sustained step nearest in deliveries/s, never a step it did not sustain", () => {
    expect(latencyFloor(step(350, 348_000, 48), bare)).toBe(' (348,000 deliveries/s; bare uWS with the same generator at 400,000 deliveries/s: p99 24.6 ms)');
    expect(latencyFloor(step(1300, 650_000, 30.6), bare)).toContain('at 800,000 deliveries/s: p99 36.0 ms');
    expect(latencyFloor(step(1300, 650_000, 30.6), [])).toBe('');
  });

  it('stands beside the cluster line without changing whether it passes', () => {
    const half = step(1300, 650_000, 30.6);
    const [line] = evaluate({ cluster: { max: undefined, atHalf: half, steps: [] }, broadcast: { '10000': [{ name: 'bare', connections: 1, fanout: 1, steps: [], max: undefined }], '1000': [{ name: 'bare', connections: 1, fanout: 1, steps: bare, max: undefined }] } }).filter((l) => l.target.includes('p99'));
    expect(line).toMatchObject({ pass: false, measured: '30.6 ms at 1,300 msg/s (650,000 deliveries/s; bare uWS with the same generator at 800,000 deliveries/s: p99 36.0 ms)' });
  });
});

describe('commandStats', () => {
  it("reads Redis's calls and microseconds per command from INFO commandstats", () => {
    const info = '# Commandstats\r\ncmdstat_xadd:calls=10,usec=52,usec_per_call=5.20,rejected_calls=0,failed_calls=0\r\ncmdstat_evalsha:calls=3,usec=600,usec_per_call=200.00\r\n';
    expect([...commandStats(info)]).toEqual([
      ['xadd', { calls: 10, usec: 52 }],
      ['evalsha', { calls: 3, usec: 600 }],
    ]);
  });
});
