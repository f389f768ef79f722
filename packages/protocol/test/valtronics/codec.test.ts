import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Envelope } from '@switchboard/core';
import {
  normalizeValtronicsPublish,
  parseValtronicsFrame,
  parseValtronicsMessage,
  renderAuthFailed,
  renderError,
  renderPong,
  renderValtronicsUpdate,
  ParsedDataCache,
  type ValtronicsParseOptions,
} from '../../src/valtronics/index.js';
import { valtronicsSeed } from '@switchboard/testkit';

const { CLIENT_FRAMES, SERVER_FRAMES } = valtronicsSeed;

const cache = new ParsedDataCache();
const opts: ValtronicsParseOptions = { maxDepth: 16, maxBatch: 50, endpointChannel: null };
const parse = (text: string, o: Partial<ValtronicsParseOptions> = {}) => parseValtronicsFrame(text, { ...opts, ...o });

function ok(text: string, o: Partial<ValtronicsParseOptions> = {}) {
  const r = parse(text, o);
  if (!r.ok) throw new Error(`expected ${text} to parse: ${r.error.code} ${r.error.message}`);
  return r.command;
}

describe('valtronics codec: the seed client frames', () => {
  it('auth', () => {
    expect(ok(CLIENT_FRAMES.auth)).toMatchObject({ type: 'auth', token: 'your-jwt-token', sessionId: null, recover: null });
  });

  it('subscribe with device_id at the top level (seed and JS client)', () => {
    for (const f of [CLIENT_FRAMES.subscribeTelemetryDevice, CLIENT_FRAMES.jsSubscribeTelemetry])
      expect(ok(f)).toMatchObject({ type: 'subscribe', channel: 'telemetry', filter: { device_id: ['1'] }, projection: null, frequencyMs: null });
  });

  it('subscribe with device_id under filters (Python client)', () => {
    expect(ok(CLIENT_FRAMES.pySubscribeTelemetry)).toMatchObject({ channel: 'telemetry', filter: { device_id: ['1'] } });
  });

  it('the seed placeholder "channel-name" is an unknown channel', () => {
    expect(parse(CLIENT_FRAMES.subscriptionMessage)).toMatchObject({ ok: false, error: { code: 'unknown_channel', channel: 'channel-name' } });
    expect(parse(CLIENT_FRAMES.unsubscriptionMessage)).toMatchObject({ ok: false, error: { code: 'unknown_channel' } });
  });

  it('the subscription message shape works on a real channel: metrics project telemetry', () => {
    const cmd = ok(CLIENT_FRAMES.subscriptionMessage.replace('channel-name', 'telemetry'));
    expect(cmd).toMatchObject({ channel: 'telemetry', filter: { device_id: ['1'] }, projection: ['humidity', 'temperature'] });
  });

  it('telemetry example: metrics and real-time frequency', () => {
    expect(ok(CLIENT_FRAMES.telemetryExample)).toMatchObject({
      channel: 'telemetry',
      filter: { device_id: ['1'] },
      projection: ['humidity', 'temperature'],
      frequencyMs: 0,
      echo: { device_id: [1], metrics: ['humidity', 'temperature'], frequency: 'real-time' },
    });
  });

  it('alerts example and JS client: severity list, device', () => {
    expect(ok(CLIENT_FRAMES.alertsExample)).toMatchObject({ channel: 'alerts', filter: { severity: ['critical', 'warning'], device_id: ['1'] } });
    expect(ok(CLIENT_FRAMES.jsSubscribeAlerts)).toMatchObject({ channel: 'alerts', filter: { severity: ['critical', 'warning'] } });
    expect(ok(CLIENT_FRAMES.pySubscribeAlerts)).toMatchObject({ channel: 'alerts', filter: { severity: ['critical', 'warning'] } });
  });

  it('devices example: several devices and status types (matched against the status attribute)', () => {
    expect(ok(CLIENT_FRAMES.devicesExample)).toMatchObject({
      channel: 'devices',
      filter: { device_id: ['1', '2', '3'], status: ['offline', 'online', 'warning'] },
    });
    expect(ok(CLIENT_FRAMES.pySubscribeDevices)).toMatchObject({ channel: 'devices', filter: {} });
  });

  it('system example: metrics projection and 30s frequency', () => {
    expect(ok(CLIENT_FRAMES.systemExample)).toMatchObject({
      channel: 'system',
      projection: ['active_connections', 'cpu_usage', 'memory_usage'],
      frequencyMs: 30_000,
      echo: { frequency: '30s' },
    });
  });

  it('unsubscribe (JS client) and ping (seed and Python client)', () => {
    expect(ok(CLIENT_FRAMES.jsUnsubscribe)).toMatchObject({ type: 'unsubscribe', channel: 'telemetry', deviceIds: null });
    expect(ok(CLIENT_FRAMES.ping)).toMatchObject({ type: 'ping', timestamp: '2024-01-01T12:00:00Z' });
    expect(ok(CLIENT_FRAMES.pyPing)).toMatchObject({ type: 'ping' });
  });

  it('batch', () => {
    const cmd = ok(CLIENT_FRAMES.batch);
    expect(cmd.type).toBe('batch');
    expect(cmd.type === 'batch' && cmd.messages).toHaveLength(2);
  });
});

describe('valtronics codec: bad input gets the dialect error', () => {
  const cases: [string, string, string][] = [
    ['invalid JSON', '{"type":"auth",', 'invalid_json'],
    ['not an object', '[1,2,3]', 'invalid_message'],
    ['missing type', '{"token":"x"}', 'invalid_message'],
    ['type not a string', '{"type":7}', 'invalid_message'],
    ['unknown type', '{"type":"launch_missiles"}', 'unknown_type'],
    ['auth without token', '{"type":"auth"}', 'invalid_message'],
    ['token not a string', '{"type":"auth","token":123}', 'invalid_message'],
    ['channel not a string', '{"type":"subscribe","channel":["telemetry"]}', 'invalid_message'],
    ['missing channel', '{"type":"subscribe"}', 'invalid_message'],
    ['unknown channel', '{"type":"subscribe","channel":"weather"}', 'unknown_channel'],
    ['filters not an object', '{"type":"subscribe","channel":"alerts","filters":[1]}', 'invalid_message'],
    ['unknown filter key', '{"type":"subscribe","channel":"alerts","filters":{"severty":["critical"]}}', 'invalid_filter'],
    ['filter of another channel', '{"type":"subscribe","channel":"system","device_id":1}', 'invalid_filter'],
    ['metrics on alerts', '{"type":"subscribe","channel":"alerts","filters":{"metrics":["x"]}}', 'invalid_filter'],
    ['frequency on alerts', '{"type":"subscribe","channel":"alerts","filters":{"frequency":"5s"}}', 'invalid_filter'],
    ['bad frequency', '{"type":"subscribe","channel":"telemetry","filters":{"frequency":"fast"}}', 'invalid_filter'],
    ['too fast frequency', '{"type":"subscribe","channel":"telemetry","filters":{"frequency":"1ms"}}', 'invalid_filter'],
    ['device_id object', '{"type":"subscribe","channel":"telemetry","device_id":{"a":1}}', 'invalid_filter'],
    ['empty device list', '{"type":"subscribe","channel":"telemetry","device_id":[]}', 'invalid_filter'],
    ['severity number', '{"type":"subscribe","channel":"alerts","severity":5}', 'invalid_filter'],
    ['bad recover', '{"type":"subscribe","channel":"telemetry","recover":{"epoch":1,"offset":"x"}}', 'invalid_message'],
    ['__proto__ key', '{"type":"subscribe","channel":"telemetry","__proto__":{"admin":true}}', 'forbidden_key'],
    ['constructor key in filters', '{"type":"subscribe","channel":"telemetry","filters":{"constructor":{"prototype":{}}}}', 'forbidden_key'],
    ['deep nesting', `{"type":"ping","timestamp":${'['.repeat(40)}${']'.repeat(40)}}`, 'too_deep'],
    ['batch not an array', '{"type":"batch","messages":{}}', 'invalid_message'],
    ['batch too large', JSON.stringify({ type: 'batch', messages: Array.from({ length: 51 }, () => ({ type: 'ping' })) }), 'batch_too_large'],
    ['bad id', '{"type":"ping","id":{"x":1}}', 'invalid_message'],
  ];
  for (const [name, text, code] of cases) {
    it(name, () => {
      const r = parse(text);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe(code);
        expect(r.error.message.length).toBeGreaterThan(5);
        const frame = JSON.parse(renderError(r.error)) as Record<string, unknown>;
        expect(frame).toMatchObject({ type: 'error', code });
      }
    });
  }

  it('a nested batch is refused', () => {
    expect(parseValtronicsMessage({ type: 'batch', messages: [] }, opts, true)).toMatchObject({
      ok: false,
      error: { code: 'invalid_message' },
    });
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (s) => {
        const r = parse(s);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom('auth', 'subscribe', 'unsubscribe', 'ping', 'batch'),
          channel: fc.oneof(fc.constantFrom('telemetry', 'alerts', 'devices', 'system'), fc.anything()),
          filters: fc.anything(),
          device_id: fc.anything(),
          token: fc.anything(),
          messages: fc.anything(),
          recover: fc.anything(),
        }, { requiredKeys: ['type'] }),
        (msg) => {
          let text: string;
          try {
            text = JSON.stringify(msg);
          } catch {
            return;
          }
          if (text === undefined) return;
          const r = parse(text);
          expect(typeof r.ok).toBe('boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('specialised endpoints default and restrict the channel', () => {
    expect(ok('{"type":"subscribe","device_id":1}', { endpointChannel: 'telemetry' })).toMatchObject({ channel: 'telemetry' });
    expect(parse('{"type":"subscribe","channel":"alerts"}', { endpointChannel: 'telemetry' })).toMatchObject({
      ok: false,
      error: { code: 'channel_forbidden' },
    });
  });
});

describe('valtronics codec: server frames', () => {
  const env = (channel: string, attrs: Record<string, string | number>, data: string): Envelope => ({
    channel,
    offset: 7,
    epoch: 'abc',
    ts: 0,
    attrs,
    data,
  });
  const without = (o: Record<string, unknown>) => {
    const { offset, epoch, ...rest } = o;
    expect(offset).toBe(7);
    expect(epoch).toBe('abc');
    return rest;
  };

  it('telemetry_update exactly as the seed shows it, plus offset/epoch; metrics project it', () => {
    const n = normalizeValtronicsPublish('telemetry', { device_id: 1 }, SERVER_FRAMES.telemetry_update.telemetry, 16);
    if (!n.ok) throw new Error(n.message);
    const e = env('telemetry', n.value.attrs as Record<string, number>, n.value.data);
    expect(without(JSON.parse(renderValtronicsUpdate('telemetry', e, null, cache)) as Record<string, unknown>)).toEqual(SERVER_FRAMES.telemetry_update);
    const projected = JSON.parse(renderValtronicsUpdate('telemetry', e, ['temperature'], cache)) as Record<string, unknown>;
    expect(projected.telemetry).toEqual({ temperature: SERVER_FRAMES.telemetry_update.telemetry.temperature });
  });

  it('alert exactly as the seed shows it, from attrs + data', () => {
    const { type, channel, device_id, severity, ...data } = SERVER_FRAMES.alert;
    void type;
    void channel;
    const n = normalizeValtronicsPublish('alerts', { device_id, severity }, data, 16);
    if (!n.ok) throw new Error(n.message);
    const e = env('alerts', n.value.attrs as Record<string, number>, n.value.data);
    expect(without(JSON.parse(renderValtronicsUpdate('alerts', e, null, cache)) as Record<string, unknown>)).toEqual(SERVER_FRAMES.alert);
  });

  it('device_status_update exactly as the seed shows it; status is taken from new_status', () => {
    const { type, channel, ...data } = SERVER_FRAMES.device_status_update;
    void type;
    void channel;
    const n = normalizeValtronicsPublish('devices', {}, data, 16);
    if (!n.ok) throw new Error(n.message);
    expect(n.value.attrs).toEqual({ device_id: 1, status: 'offline' });
    const e = env('devices', n.value.attrs as Record<string, number>, n.value.data);
    expect(without(JSON.parse(renderValtronicsUpdate('devices', e, null, cache)) as Record<string, unknown>)).toEqual(SERVER_FRAMES.device_status_update);
  });

  it('system_status_update exactly as the seed shows it', () => {
    const s = SERVER_FRAMES.system_status_update;
    const e = env('system', {}, JSON.stringify({ metrics: s.metrics, timestamp: s.timestamp }));
    expect(without(JSON.parse(renderValtronicsUpdate('system', e, null, cache)) as Record<string, unknown>)).toEqual(s);
    const p = JSON.parse(renderValtronicsUpdate('system', e, ['cpu_usage'], cache)) as { metrics: unknown };
    expect(p.metrics).toEqual({ cpu_usage: 45.2 });
  });

  it('publishing to system is refused, and reserved fields never override the frame', () => {
    expect(normalizeValtronicsPublish('system', {}, {}, 16)).toMatchObject({ ok: false, code: 'channel_forbidden' });
    const n = normalizeValtronicsPublish('alerts', {}, { type: 'evil', channel: 'x', offset: 1, title: 't' }, 16);
    if (!n.ok) throw new Error(n.message);
    const frame = JSON.parse(renderValtronicsUpdate('alerts', env('alerts', {}, n.value.data), null, cache)) as Record<string, unknown>;
    expect(frame.type).toBe('alert');
    expect(frame.channel).toBe('alerts');
    expect(frame.offset).toBe(7);
  });

  it('auth failure, error and pong frames', () => {
    expect(JSON.parse(renderAuthFailed(undefined, 'invalid_token', 'bad'))).toEqual({
      type: 'auth_response',
      success: false,
      error: 'invalid_token',
      message: 'bad',
    });
    expect(JSON.parse(renderPong(3, '2024-01-01T12:00:00Z', 0))).toEqual({
      type: 'pong',
      timestamp: '2024-01-01T12:00:00Z',
      server_time: '1970-01-01T00:00:00.000Z',
      id: 3,
    });
  });
});
