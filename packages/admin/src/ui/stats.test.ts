import { describe, expect, it } from 'vitest';
import {
  formatRate,
  formatSeconds,
  nodeRates,
  quantileBetween,
  rate,
  rejectionTotals,
  type NodeStats,
} from './stats.js';

const hist = (counts: number[], count: number) => ({ le: [0.001, 0.01, 0.1], counts, count });

const node = (
  at: number,
  deliveries: number,
  fanout: ReturnType<typeof hist>,
  rateLimited: [string, string, number][] = [],
): NodeStats => ({
  node: 'edge-1',
  at,
  connections: {},
  deliveries,
  published: deliveries / 10,
  fanoutMessages: 0,
  fanoutLatency: fanout,
  busReadLag: null,
  rateLimited,
});

describe('admin page stats', () => {
  it('rates are per second and 0 when a counter went down (the edge restarted)', () => {
    expect(rate(100, 300, 2)).toBe(100);
    expect(rate(300, 10, 1)).toBe(0);
    expect(rate(1, 2, 0)).toBe(0);
  });

  it('p99 over an interval counts only what was observed in it', () => {
    // Before: 1000 fast observations. In the interval: 99 fast, 1 slow (the 100th of 100 is slow).
    const before = hist([1000, 1000, 1000], 1000);
    const after = hist([1099, 1099, 1100], 1100);
    expect(quantileBetween(before, after, 0.99)).toBe(0.001);
    expect(quantileBetween(before, after, 1)).toBe(0.1);
    // Since start, the slow one is drowned out.
    expect(quantileBetween(null, after, 0.999)).toBe(0.001);
    // Nothing observed; beyond the last bound.
    expect(quantileBetween(after, after, 0.99)).toBeNull();
    expect(quantileBetween(null, hist([0, 0, 0], 5), 0.5)).toBe(Infinity);
  });

  it('a restarted edge (counts went down) is read from its new start', () => {
    expect(quantileBetween(hist([500, 500, 500], 500), hist([0, 10, 10], 10), 0.99)).toBe(0.01);
  });

  it('node rates over two snapshots', () => {
    const r = nodeRates(node(1000, 0, hist([0, 0, 0], 0)), node(3000, 400, hist([0, 4, 4], 4)));
    expect(r).toEqual({ deliveriesPerSec: 200, publishedPerSec: 20, fanoutP99: 0.01, busLagP99: null });
  });

  it('rejections are summed across edges by dialect and rule', () => {
    const t = rejectionTotals([
      node(0, 0, hist([0, 0, 0], 0), [['valtronics', 'messages', 3]]),
      {
        ...node(0, 0, hist([0, 0, 0], 0), [
          ['valtronics', 'messages', 4],
          ['fme', 'connections', 1],
        ]),
        node: 'edge-2',
      },
    ]);
    expect([...t.values()]).toEqual([
      { dialect: 'valtronics', rule: 'messages', total: 7 },
      { dialect: 'fme', rule: 'connections', total: 1 },
    ]);
  });

  it('formats for people', () => {
    expect([
      formatSeconds(null),
      formatSeconds(0.00025),
      formatSeconds(0.0123),
      formatSeconds(2.5),
      formatSeconds(Infinity),
    ]).toEqual(['–', '250 µs', '12.3 ms', '2.5 s', '> 10 s']);
    expect([
      formatRate(0),
      formatRate(3.44),
      formatRate(12.4),
      formatRate(1234),
      formatRate(5_600_000),
    ]).toEqual(['0', '3.4', '12', '1.23 k', '5.6 M']);
  });
});
