/**
 * The `fme` codec against the seed (001): its client frames parse to the commands they mean, its response
 * templates are rendered key for key (numbers and booleans as strings), and every malformed frame gets a
 * registered code. Stream ids of any text map to channel names and back.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { channelNameError } from '@switchboard/core';
import { fmeSeed } from '@switchboard/testkit';
import {
  fmeStreamId,
  fmeStreamIdError,
  fmeStreamName,
  normalizeFmePublish,
  parseFmeFrame,
  renderFmeChannelInfo,
  renderFmeError,
  renderFmeNumChannels,
  renderFmeRelay,
} from '../../src/fme/index.js';

const { CLIENT_FRAMES, OPEN_STREAM_IDS, SERVER_TEMPLATES } = fmeSeed;
const opts = { maxDepth: 16, maxStreams: 64 };
const parse = (text: string, o: Partial<typeof opts> = {}) => parseFmeFrame(text, { ...opts, ...o });

describe('fme codec: the seed client frames', () => {
  it('open with ws_stream_ids', () => {
    expect(parse(CLIENT_FRAMES.open)).toEqual({ ok: true, command: { op: 'open', streams: [...OPEN_STREAM_IDS] } });
  });

  it('open with the older single ws_stream_id, or both (ids in order, once)', () => {
    expect(parse('{"ws_op":"open","ws_stream_id":"one"}')).toEqual({ ok: true, command: { op: 'open', streams: ['one'] } });
    expect(parse('{"ws_op":"open","ws_stream_ids":["a","b","a"],"ws_stream_id":"b"}')).toEqual({ ok: true, command: { op: 'open', streams: ['a', 'b'] } });
  });

  it('send: ws_msg carried as JSON text, whatever its type', () => {
    expect(parse(CLIENT_FRAMES.send)).toEqual({ ok: true, command: { op: 'send', data: '"msg"' } });
    expect(parse('{"ws_op":"send","ws_msg":{"a":[1,2]}}')).toEqual({ ok: true, command: { op: 'send', data: '{"a":[1,2]}' } });
    expect(parse('{"ws_op":"send","ws_msg":null}')).toEqual({ ok: true, command: { op: 'send', data: 'null' } });
  });

  it('close and the two admin queries', () => {
    expect(parse(CLIENT_FRAMES.close)).toEqual({ ok: true, command: { op: 'close' } });
    expect(parse(CLIENT_FRAMES.getnumchannels)).toEqual({ ok: true, command: { op: 'admin', query: 'getnumchannels' } });
    expect(parse(CLIENT_FRAMES.getchannelinfo)).toEqual({ ok: true, command: { op: 'admin', query: 'getchannelinfo' } });
  });
});

describe('fme codec: the seed response objects', () => {
  /** The template with its placeholders filled, as compact JSON. */
  const fill = (template: string, values: Record<string, string>) => {
    let t = template;
    for (const [k, v] of Object.entries(values)) t = t.replaceAll(k, v);
    return JSON.stringify(JSON.parse(t));
  };

  it('getnumchannels(): key for key, counts as strings', () => {
    expect(renderFmeNumChannels(3, [{ stream: 'message_stream_id', numchannels: 3 }])).toBe(
      fill(SERVER_TEMPLATES.getnumchannels, { '<number_of_channels>': '3', '<number_of_channels_open_on_this_stream>': '3' }),
    );
    expect(renderFmeNumChannels(0, [])).toBe('{"numchannels":"0","streams":[]}');
  });

  it('getchannelinfo(): key for key, port and writable as strings', () => {
    expect(renderFmeChannelInfo(1, [{ port: 7078, stream: 'message_stream_id', host: 'channel_host_ip_address', writable: true }])).toBe(
      fill(SERVER_TEMPLATES.getchannelinfo, { '<number_of_channels>': '1', '<channel_port_number>': '7078', '<channel_is_writable_true_or_false>': 'true' }),
    );
    expect(JSON.parse(renderFmeChannelInfo(1, [{ port: 1, stream: 's', host: 'h', writable: false }]))).toMatchObject({ channels: [{ writable: 'false' }] });
  });

  it('a capped answer says so; an uncapped one carries no extra key', () => {
    expect(JSON.parse(renderFmeChannelInfo(9, [], true))).toEqual({ numchannels: '9', channels: [], truncated: 'true' });
    expect(JSON.parse(renderFmeNumChannels(9, [], true))).toEqual({ numchannels: '9', streams: [], truncated: 'true' });
  });

  it('relayed frames: a string as is, anything else as its JSON text', () => {
    expect(renderFmeRelay('"msg"')).toBe('msg');
    expect(renderFmeRelay(JSON.stringify('quote " and \\n'))).toBe('quote " and \\n');
    expect(renderFmeRelay('{"a":1}')).toBe('{"a":1}');
    expect(renderFmeRelay('42')).toBe('42');
  });

  it('the error frame', () => {
    expect(JSON.parse(renderFmeError({ code: 'not_subscribed', message: 'open first', op: 'send' }))).toEqual({
      ws_op: 'error',
      ws_error: 'not_subscribed',
      ws_msg: 'open first',
      ws_request: 'send',
    });
  });
});

describe('fme codec: bad frames get registered codes', () => {
  const code = (text: string, o: Partial<typeof opts> = {}) => {
    const r = parse(text, o);
    return r.ok ? null : r.error.code;
  };

  it('invalid JSON, not an object, no ws_op, unknown ws_op', () => {
    expect(code('{"ws_op":')).toBe('invalid_json');
    expect(code('[1]')).toBe('invalid_message');
    expect(code('"open"')).toBe('invalid_message');
    expect(code('{"ws_msg":"x"}')).toBe('invalid_message');
    expect(code('{"ws_op":7}')).toBe('invalid_message');
    expect(code('{"ws_op":"subscribe"}')).toBe('unknown_type');
  });

  it('open: missing, empty, not an array, non-string or bad ids, too many', () => {
    expect(code('{"ws_op":"open"}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_ids":[]}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_ids":"s1"}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_ids":["s1",2]}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_ids":[null]}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_ids":[["s1"]]}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_ids":[""]}')).toBe('invalid_message');
    expect(code('{"ws_op":"open","ws_stream_id":{"id":"x"}}')).toBe('invalid_message');
    expect(code(JSON.stringify({ ws_op: 'open', ws_stream_ids: ['x'.repeat(129)] }))).toBe('invalid_message');
    expect(code(JSON.stringify({ ws_op: 'open', ws_stream_ids: Array.from({ length: 5000 }, (_, i) => `s${i}`) }))).toBe('too_many_subscriptions');
    expect(code(JSON.stringify({ ws_op: 'open', ws_stream_ids: ['a', 'b', 'c'] }), { maxStreams: 2 })).toBe('too_many_subscriptions');
    // Repeats do not count twice.
    expect(code(JSON.stringify({ ws_op: 'open', ws_stream_ids: ['a', 'a'], ws_stream_id: 'a' }), { maxStreams: 1 })).toBe(null);
  });

  it('send without ws_msg; admin without a known query', () => {
    expect(code('{"ws_op":"send"}')).toBe('invalid_message');
    expect(code('{"ws_op":"admin"}')).toBe('invalid_message');
    expect(code('{"ws_op":"admin","ws_msg":"dropall()"}')).toBe('unknown_type');
    expect(code('{"ws_op":"admin","ws_msg":"constructor"}')).toBe('unknown_type');
  });

  it('forbidden keys and deep nesting anywhere', () => {
    expect(code('{"ws_op":"send","ws_msg":{"__proto__":{"x":1}}}')).toBe('forbidden_key');
    expect(code('{"ws_op":"send","ws_msg":{"a":{"constructor":1}}}')).toBe('forbidden_key');
    expect(code(`{"ws_op":"send","ws_msg":${'['.repeat(40)}${']'.repeat(40)}}`)).toBe('too_deep');
  });
});

describe('fme stream ids and channel names', () => {
  it('plain ids are their own names; others are encoded, never colliding with a plain one', () => {
    expect(fmeStreamName('jobs-42')).toBe('jobs-42');
    expect(fmeStreamName('a/b:c@d.e_f')).toBe('a/b:c@d.e_f');
    expect(fmeStreamName('<streamid1>')).toMatch(/^_/);
    expect(fmeStreamName('_x')).toMatch(/^_/);
    expect(fmeStreamName('_x')).not.toBe('_x');
    expect(fmeStreamIdError('\uD800')).not.toBeNull();
  });

  it('any valid id round-trips and makes a valid channel name in any tenant', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 128, unit: 'grapheme' }), (id) => {
        fc.pre(fmeStreamIdError(id) === null);
        const name = fmeStreamName(id);
        expect(fmeStreamId(name)).toBe(id);
        expect(channelNameError(`fme:${'t'.repeat(64)}:${name}`)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('backend publishes: the stream id becomes its name, the payload is checked', () => {
    expect(normalizeFmePublish('s1', { a: 1 }, 16)).toEqual({ ok: true, name: 's1', data: '{"a":1}' });
    expect(normalizeFmePublish('', 'x', 16)).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(normalizeFmePublish('s1', JSON.parse('{"__proto__":1}'), 16)).toMatchObject({ ok: false, code: 'forbidden_key' });
  });
});
