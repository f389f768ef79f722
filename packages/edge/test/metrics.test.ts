/**
 * Metrics that must measure what their names say: fan-out latency with sub-millisecond precision (on one
 * node a message reaches its sockets in well under a millisecond; whole-millisecond clocks recorded 0),
 * and closes by dialect and code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0 });
});
afterAll(async () => {
  await node.close();
});

describe('edge metrics', () => {
  it('fan-out latency is measured in fractions of a millisecond, not rounded to 0', async () => {
    const c = await node.authed('m');
    c.send({ type: 'subscribe', channel: 'alerts' });
    await c.nextOfType('subscribe_response');
    for (let i = 0; i < 20; i++) await node.publishHttp({ channel: 'alerts', data: { alert_id: i } });
    await c.take(20, (m) => m.type === 'alert');
    const m = await node.registry.getSingleMetric('switchboard_fanout_latency_seconds')!.get();
    const named = (suffix: string) => m.values.find((v) => (v as { metricName?: string }).metricName === `switchboard_fanout_latency_seconds${suffix}`)!.value;
    const count = named('_count');
    const sum = named('_sum');
    expect(count).toBeGreaterThanOrEqual(1);
    expect(sum).toBeGreaterThan(0);
    // Each observation is a real sub-second figure: the mean is positive and below a second.
    expect(sum / count).toBeGreaterThan(0);
    expect(sum / count).toBeLessThan(1);
  });

  it('counts closes by dialect and code', async () => {
    const c = await node.authed('closer');
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(await node.metric('switchboard_connections_closed_total', { dialect: 'valtronics', code: '1005' })).toBeGreaterThanOrEqual(1);
  });
});
