/**
 * The `oisp` codec against the seed (003): its registration example parses to the command it means, the
 * actuation frame a device receives is the seed's example key for key (and byte for byte once compacted),
 * the response frames carry the seed's codes and texts, and every malformed frame gets a registered code.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { channelNameError } from '@switchboard/core';
import { oispSeed } from '@switchboard/testkit';
import {
  OISP_PONG,
  OISP_SUBSCRIBED,
  normalizeOispPublish,
  oispDeviceChannelName,
  oispDeviceIdError,
  parseOispFrame,
  renderOispActuation,
  renderOispResponse,
} from '../../src/oisp/index.js';

const parse = (text: string) => parseOispFrame(text, 16);

describe('oisp codec: the seed frames', () => {
  it('the registration example, its placeholder filled, is a device command', () => {
    expect(parse(oispSeed.registration('example001', 'eyJ0eXA.x.y'))).toEqual({
      ok: true,
      command: { type: 'device', deviceId: 'example001', deviceToken: 'eyJ0eXA.x.y' },
    });
  });

  it('the registration example as the seed writes it (a bare placeholder) is not JSON', () => {
    expect(parse(oispSeed.REGISTRATION_TEMPLATE)).toMatchObject({ ok: false, error: { code: 'invalid_json' } });
  });

  it('an actuation renders exactly the seed example frame from its inner content', () => {
    const content = JSON.stringify(oispSeed.ACTUATION_CONTENT);
    const frame = renderOispActuation(content);
    expect(JSON.parse(frame)).toEqual(JSON.parse(oispSeed.ACTUATION_FRAME));
    expect(frame).toBe(JSON.stringify(JSON.parse(oispSeed.ACTUATION_FRAME)));
  });

  it('the responses carry the seed codes and texts', () => {
    expect(JSON.parse(OISP_SUBSCRIBED)).toEqual({ code: 200, content: oispSeed.RESPONSE_CODES[200][0] });
    expect(JSON.parse(renderOispResponse(401, 'Invalid device token'))).toEqual({ code: 401, content: oispSeed.RESPONSE_CODES[401][0] });
    expect(JSON.parse(renderOispResponse(401, 'Wrong message format'))).toEqual({ code: 401, content: oispSeed.RESPONSE_CODES[401][1] });
    expect(JSON.parse(OISP_PONG)).toEqual({ code: 200, content: 'pong' });
  });

  it('ping and the WebSocket actuation form', () => {
    expect(parse('{"type":"ping"}')).toEqual({ ok: true, command: { type: 'ping' } });
    const body = oispSeed.ACTUATION_CONTENT;
    expect(parse(JSON.stringify({ type: 'actuation', credentials: { username: 'svc', password: 'pw' }, body }))).toEqual({
      ok: true,
      command: { type: 'actuation', username: 'svc', password: 'pw', deviceId: 'example001', accountId: oispSeed.ACCOUNT_ID, data: JSON.stringify(body) },
    });
    expect(parse('{"type":"actuation","credentials":{"username":"u","password":"p"},"body":{"deviceId":"d"}}')).toMatchObject({
      ok: true,
      command: { accountId: null, deviceId: 'd', data: '{"deviceId":"d"}' },
    });
  });
});

describe('oisp codec: malformed frames', () => {
  const cases: [string, string][] = [
    ['not json', 'invalid_json'],
    ['[1,2]', 'invalid_message'],
    ['"device"', 'invalid_message'],
    ['{}', 'invalid_message'],
    ['{"type":7}', 'invalid_message'],
    ['{"type":"subscribe"}', 'unknown_type'],
    ['{"type":"device","deviceToken":"t"}', 'invalid_message'],
    ['{"type":"device","deviceId":5,"deviceToken":"t"}', 'invalid_message'],
    ['{"type":"device","deviceId":"","deviceToken":"t"}', 'invalid_message'],
    ['{"type":"device","deviceId":"d"}', 'invalid_message'],
    ['{"type":"device","deviceId":"d","deviceToken":""}', 'invalid_message'],
    [`{"type":"device","deviceId":"${'x'.repeat(129)}","deviceToken":"t"}`, 'invalid_message'],
    [`{"type":"device","deviceId":"d","deviceToken":"${'t'.repeat(8193)}"}`, 'invalid_message'],
    ['{"type":"actuation","body":{"deviceId":"d"}}', 'invalid_message'],
    ['{"type":"actuation","credentials":{"username":"u"},"body":{"deviceId":"d"}}', 'invalid_message'],
    ['{"type":"actuation","credentials":{"username":"u","password":"p"},"body":[]}', 'invalid_message'],
    ['{"type":"actuation","credentials":{"username":"u","password":"p"},"body":{}}', 'invalid_message'],
    ['{"type":"actuation","credentials":{"username":"u","password":"p"},"body":{"deviceId":"d","accountId":"a:b"}}', 'invalid_message'],
    ['{"type":"device","__proto__":{"x":1},"deviceId":"d","deviceToken":"t"}', 'forbidden_key'],
    ['{"type":"ping","x":' + '['.repeat(40) + ']'.repeat(40) + '}', 'too_deep'],
  ];
  it.each(cases)('%s → %s', (text, code) => {
    const r = parse(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });
});

describe('oisp codec: device ids and backend publishes', () => {
  it('any device id maps to a valid channel name, distinct ids to distinct names', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 40 }), (a, b) => {
        fc.pre(oispDeviceIdError(a) === null && oispDeviceIdError(b) === null);
        expect(channelNameError(`oisp:c4715841-bb1e-4c87-ad78-2376fe596a11:${oispDeviceChannelName(a)}`)).toBeUndefined();
        if (a !== b) expect(oispDeviceChannelName(a)).not.toBe(oispDeviceChannelName(b));
      }),
    );
    expect(oispDeviceChannelName('example001')).toBe('example001');
    expect(oispDeviceChannelName('dev 1')).toBe('_ZGV2IDE');
  });

  it('a publish of the seed content to its device is normalised; wrong shapes are refused', () => {
    expect(normalizeOispPublish('example001', oispSeed.ACTUATION_CONTENT, 16)).toEqual({ ok: true, name: 'example001', data: JSON.stringify(oispSeed.ACTUATION_CONTENT) });
    expect(normalizeOispPublish('other', oispSeed.ACTUATION_CONTENT, 16)).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(normalizeOispPublish('example001', 'LED', 16)).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(normalizeOispPublish('', {}, 16)).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(normalizeOispPublish('d', JSON.parse('{"__proto__":{"a":1}}'), 16)).toMatchObject({ ok: false, code: 'forbidden_key' });
  });
});
