/** The PromQL scanner the name checks rely on: what it counts as a metric, a matcher label, a grouping. */
import { describe, expect, it } from 'vitest';
import { scanPromql } from './support.js';

const metrics = (expr: string) => [...scanPromql(expr).metrics].sort();

describe('scanPromql', () => {
  it('tells metrics from functions, aggregations, keywords, numbers and durations', () => {
    expect(
      metrics('sum by (rule) (rate(a_total[5m] offset 1h)) > 4 * sum(rate(b_total[$__rate_interval]))'),
    ).toEqual(['a_total', 'b_total']);
    expect(metrics('histogram_quantile(0.99, sum by (le) (rate(x_bucket{job="j"}[1m]))) > 0.25')).toEqual([
      'x_bucket',
    ]);
    expect(metrics('absent(up{job="switchboard-edge"} == 1)')).toEqual(['up']);
    expect(metrics('a / on (node) group_left (pod) b and bool c unless d or e > 1e3')).toEqual([
      'a',
      'b',
      'c',
      'd',
      'e',
    ]);
    expect(metrics('sum(x) without (instance)')).toEqual(['x']);
    expect(metrics('vector(1)')).toEqual([]);
  });

  it('reads matcher labels without being fooled by strings', () => {
    const use = scanPromql('x{namespace=~"$namespace",node!~"a,b}{c",outcome!="ok"} + y{le="+Inf"}');
    expect([...use.matchers.get('x')!]).toEqual(['namespace', 'node', 'outcome']);
    expect([...use.matchers.get('y')!]).toEqual(['le']);
    expect(metrics('x{a="rate(z[5m])"}')).toEqual(['x']);
  });

  it('ties each by/without clause to the metrics it aggregates', () => {
    const use = scanPromql('sum by (namespace) (increase(a[5m])) > 0.01 * sum by (node, dialect) (b)');
    expect(use.groupings).toEqual([
      { labels: ['namespace'], metrics: ['a'] },
      { labels: ['node', 'dialect'], metrics: ['b'] },
    ]);
    expect(scanPromql('histogram_quantile(0.9, sum by (le, method) (rate(h_bucket[5m])))').groupings).toEqual(
      [{ labels: ['le', 'method'], metrics: ['h_bucket'] }],
    );
  });

  it('refuses what it cannot read instead of guessing', () => {
    expect(() => scanPromql('x @ 123 ; y')).toThrow(/cannot read/);
  });
});
