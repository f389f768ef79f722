import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode({ publishMaxBodyBytes: 4096, publishMaxBatch: 3 });
});
afterAll(async () => {
  await node.close();
});

describe('POST /api/publish', () => {
  it('publishes one message and answers its position', async () => {
    const r = await node.publishHttp({ channel: 'alerts', attrs: { device_id: 1, severity: 'critical' }, data: { alert_id: 1 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ channel: 'alerts', offset: 1 });
    expect(typeof r.body.epoch).toBe('string');
  });

  it('publishes a batch in order', async () => {
    const r = await node.publishHttp({
      messages: [
        { channel: 'devices', data: { device_id: 1, new_status: 'online' } },
        { channel: 'telemetry', attrs: { device_id: 1 }, data: { t: { value: 1 } } },
        { channel: 'devices', data: { device_id: 1, new_status: 'offline' } },
      ],
    });
    expect(r.status).toBe(200);
    expect((r.body.results as { channel: string; offset: number }[]).map((x) => `${x.channel}:${x.offset}`)).toEqual(['devices:1', 'telemetry:1', 'devices:2']);
  });

  const refusals: [string, unknown, Record<string, string>, number, string][] = [
    ['no API key', { channel: 'alerts', data: {} }, { authorization: '' }, 401, 'unauthorized'],
    ['a wrong API key', { channel: 'alerts', data: {} }, { authorization: 'Bearer nope' }, 401, 'unauthorized'],
    ['not JSON content', { channel: 'alerts', data: {} }, { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
    ['invalid JSON', '{"channel":', {}, 400, 'invalid_json'],
    ['a body that is not an object', '[1]', {}, 400, 'invalid_message'],
    ['no channel', { data: {} }, {}, 400, 'invalid_message'],
    ['no data', { channel: 'alerts' }, {}, 400, 'invalid_message'],
    ['an unknown channel', { channel: 'payroll', data: {} }, {}, 404, 'unknown_channel'],
    ['the node-local system channel', { channel: 'system', data: {} }, {}, 403, 'channel_forbidden'],
    ['nested attrs', { channel: 'alerts', attrs: { a: { b: 1 } }, data: {} }, {}, 400, 'invalid_message'],
    ['a bad attr name', { channel: 'alerts', attrs: { 'a b': 1 }, data: {} }, {}, 400, 'invalid_message'],
    ['telemetry without a device', { channel: 'telemetry', data: { t: 1 } }, {}, 400, 'invalid_message'],
    ['data that is not an object', { channel: 'alerts', data: 'hello' }, {}, 400, 'invalid_message'],
    ['a __proto__ key in data', '{"channel":"alerts","data":{"__proto__":{"polluted":1}}}', {}, 400, 'forbidden_key'],
    ['deeply nested data', { channel: 'alerts', data: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) }, {}, 400, 'too_deep'],
    ['a batch over the limit', { messages: Array.from({ length: 4 }, () => ({ channel: 'alerts', data: {} })) }, {}, 400, 'batch_too_large'],
    ['a batch with one bad message', { messages: [{ channel: 'alerts', data: {} }, { channel: 'nope', data: {} }] }, {}, 404, 'unknown_channel'],
    ['a body over the limit', { channel: 'alerts', data: { text: 'x'.repeat(5000) } }, {}, 413, 'message_too_large'],
  ];
  for (const [name, body, headers, status, code] of refusals) {
    it(`refuses ${name} with ${status} ${code}`, async () => {
      const r = await node.publishHttp(body, headers);
      expect(r.status).toBe(status);
      expect(r.body).toMatchObject({ error: code });
      expect(typeof r.body.message).toBe('string');
    });
  }

  it('reads a body that arrives in pieces, split inside a UTF-8 character, whole', async () => {
    const c = await node.authed('pieces');
    c.send({ type: 'subscribe', channel: 'alerts', severity: 'warning' });
    await c.nextOfType('subscribe_response');
    const body = Buffer.from(JSON.stringify({ channel: 'alerts', attrs: { severity: 'warning' }, data: { title: 'café überall' } }));
    const cut = body.indexOf(Buffer.from('é')) + 1;
    const url = new URL(node.httpUrl);
    const socket = connect(Number(url.port), url.hostname);
    const answer = new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString('utf8');
        if (/\r\n\r\n[\s\S]*\}$/.test(text)) resolve(text);
      });
      socket.on('error', reject);
    });
    socket.write(`POST /api/publish HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${node.config.apiKeys[0]}\r\ncontent-length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, cut));
    await new Promise((r) => setTimeout(r, 100));
    socket.write(body.subarray(cut));
    expect(await answer).toMatch(/^HTTP\/1\.1 200[\s\S]*"channel":"alerts","offset":\d+/);
    socket.destroy();
    const [alert] = await c.take(1, (m) => m.type === 'alert');
    expect(alert).toMatchObject({ title: 'café überall' });
  });

  it('an idempotency key makes a retry safe: the first position comes back, marked duplicate, delivered once', async () => {
    const c = await node.authed('idem');
    c.send({ type: 'subscribe', channel: 'alerts', severity: 'warning' });
    await c.nextOfType('subscribe_response');
    const body = { channel: 'alerts', attrs: { severity: 'warning' }, data: { alert_id: 'x' } };
    const first = await node.publishHttp(body, { 'idempotency-key': 'order-17' });
    expect(first.status).toBe(200);
    expect(first.body.duplicate).toBeUndefined();
    const retry = await node.publishHttp(body, { 'idempotency-key': 'order-17' });
    expect(retry.body).toEqual({ ...first.body, duplicate: true });
    // As a field, per message of a batch.
    const batch = await node.publishHttp({ messages: [{ ...body, idempotency_key: 'order-17' }, { ...body, idempotency_key: 'order-18' }] });
    expect((batch.body.results as Record<string, unknown>[]).map((r) => r.duplicate === true)).toEqual([true, false]);
    expect(await c.take(2, (m) => m.type === 'alert')).toHaveLength(2);
    expect(await c.collect(150, (m) => m.type === 'alert')).toHaveLength(0);
    for (const bad of ['', 'has space', 'x'.repeat(129)]) {
      const r = await node.publishHttp({ ...body, idempotency_key: bad });
      expect(r).toMatchObject({ status: 400, body: { error: 'invalid_message' } });
    }
  });

  it('a refused batch publishes nothing', async () => {
    const before = await node.publisher.position('alerts');
    await node.publishHttp({ messages: [{ channel: 'alerts', data: {} }, { channel: 'nope', data: {} }] });
    expect(await node.publisher.position('alerts')).toEqual(before);
  });

  it('a chunked body over the limit is refused while streaming', async () => {
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1000)));
        controller.close();
      },
    });
    const res = await fetch(`${node.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${node.config.apiKeys[0]}` },
      body: stream,
      duplex: 'half',
    });
    expect(res.status).toBe(413);
  });
});

describe('health, readiness, metrics', () => {
  it('/healthz and /readyz answer 200 with JSON (the session service\'s format)', async () => {
    for (const [path, status] of [['/healthz', 'ok'], ['/readyz', 'ready']]) {
      const res = await fetch(`${node.httpUrl}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ status });
    }
  });

  it('/metrics serves Prometheus text with the edge metrics, named with units', async () => {
    const res = await fetch(`${node.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const name of [
      'switchboard_connections',
      'switchboard_messages_received_total',
      'switchboard_deliveries_total',
      'switchboard_fanout_latency_seconds_bucket',
      'switchboard_rate_limit_rejections_total',
      'switchboard_backpressure_drops_total',
      'switchboard_slow_consumer_disconnects_total',
    ])
      expect(text).toContain(name);
    for (const line of text.split('\n').filter((l) => l.startsWith('# TYPE '))) {
      const [, , name, type] = line.split(' ');
      if (type === 'counter') expect(name!.endsWith('_total'), name).toBe(true);
      if (type === 'histogram') expect(/_(seconds|bytes)$/.test(name!), name).toBe(true);
    }
  });

  it('unknown routes answer 404 with the error form', async () => {
    const res = await fetch(`${node.httpUrl}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'not_found' });
  });

  it('/readyz answers 503 while draining, and new upgrades are refused', async () => {
    const n = await startTestNode({ drainMs: 100 });
    const c = await n.authed('drainee');
    const drained = n.edge.drain();
    expect((await c.closed).code).toBe(1012);
    await drained;
    expect(n.edge.ready()).toBe(false);
    await expect(n.connect()).rejects.toThrow();
    await n.close();
  });
});
