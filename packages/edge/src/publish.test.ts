import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { PublishResult } from '@switchboard/bus';
import { parsePublishValue, renderPublishAnswer, type PublishNormalizer, type PublishParseOptions } from './publish.js';

/** The answer as it was built before: an object per message, serialised. */
function asObjects(names: readonly string[], positions: readonly PublishResult[], batch: boolean, id?: string | number): string {
  const results = positions.map((p, i) => ({ channel: names[i], offset: p.offset, epoch: p.epoch, ...(p.duplicate ? { duplicate: true } : {}) }));
  const body = batch ? { results } : results[0];
  return JSON.stringify(id === undefined ? body : { id, ...body });
}

describe('renderPublishAnswer', () => {
  it('writes exactly what JSON.stringify of the answer objects writes', () => {
    const position = fc.record({ offset: fc.oneof(fc.nat(), fc.maxSafeNat()), epoch: fc.oneof(fc.constant('e1'), fc.string({ maxLength: 6 })), duplicate: fc.option(fc.boolean(), { nil: undefined }) });
    const name = fc.oneof(fc.constantFrom('alerts', 'telemetry'), fc.string({ maxLength: 8 }));
    const id = fc.option(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 5 })), { nil: undefined });
    fc.assert(
      fc.property(fc.array(fc.tuple(name, position), { minLength: 1, maxLength: 6 }), fc.boolean(), id, (items, batch, i) => {
        const names = items.map(([n]) => n);
        const positions: PublishResult[] = items.map(([, p]) => (p.duplicate === undefined ? { offset: p.offset, epoch: p.epoch } : p));
        const shown = batch ? positions : positions.slice(0, 1);
        expect(renderPublishAnswer(names, shown, batch, i)).toBe(asObjects(names, shown, batch, i));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parsePublishValue', () => {
  // Two dialects that take publishes, named as they are: enough to see which one handled a message.
  const normalizer: PublishNormalizer = (dialect) =>
    dialect === 'one' || dialect === 'two' ? (name, attrs, data) => ({ ok: true, name, attrs, data: `${dialect}:${JSON.stringify(data)}` }) : undefined;
  const opts: PublishParseOptions = { maxDepth: 8, maxBatch: 10, scope: { tenants: null, channels: null }, normalizer };

  it('each message of a batch goes through its own dialect', () => {
    const p = parsePublishValue({ dialect: 'one', messages: [{ channel: 'a', data: 1 }, { dialect: 'two', channel: 'a', data: 2 }, { channel: 'b', data: 3 }] }, opts);
    expect(p).toMatchObject({
      ok: true,
      requests: [
        { channel: 'one:default:a', data: 'one:1' },
        { channel: 'two:default:a', data: 'two:2' },
        { channel: 'one:default:b', data: 'one:3' },
      ],
      names: ['a', 'a', 'b'],
    });
    expect(parsePublishValue({ messages: [{ dialect: 'one', channel: 'a', data: 1 }, { dialect: 'three', channel: 'a', data: 1 }] }, opts)).toMatchObject({
      ok: false,
      code: 'unknown_channel',
      index: 1,
    });
  });

  it('a name that makes no valid channel is refused after valid ones of the same batch', () => {
    const p = parsePublishValue({ dialect: 'one', messages: [{ channel: 'a', data: 1 }, { channel: 'a', data: 2 }, { channel: 'a b', data: 3 }] }, opts);
    expect(p).toEqual({ ok: false, code: 'invalid_message', message: 'messages[2]: "a b" does not make a valid channel name', index: 2 });
  });

  it('each message of a batch goes to its own tenant, each checked against the key', () => {
    const scoped: PublishParseOptions = { ...opts, scope: { tenants: new Set(['a', 'b']), channels: null } };
    const p = parsePublishValue({ dialect: 'one', tenant: 'b', messages: [{ channel: 'x', data: 1 }, { tenant: 'a', channel: 'x', data: 2 }, { channel: 'x', data: 3 }] }, scoped);
    expect(p).toMatchObject({ ok: true, requests: [{ channel: 'one:b:x' }, { channel: 'one:a:x' }, { channel: 'one:b:x' }] });
    const denied = parsePublishValue({ dialect: 'one', tenant: 'a', messages: [{ channel: 'x', data: 1 }, { tenant: 'c', channel: 'x', data: 2 }] }, scoped);
    expect(denied).toMatchObject({ ok: false, code: 'forbidden', denied: 'tenant', index: 1 });
    const invalid = parsePublishValue({ dialect: 'one', messages: [{ tenant: 'a', channel: 'x', data: 1 }, { tenant: 'a:b', channel: 'x', data: 2 }] }, scoped);
    expect(invalid).toMatchObject({ ok: false, code: 'invalid_message', index: 1 });
  });

  it('an idempotency key is set only where one is given', () => {
    const p = parsePublishValue({ dialect: 'one', messages: [{ channel: 'a', data: 1, idempotency_key: 'k1' }, { channel: 'a', data: 2 }] }, opts);
    if (!p.ok) throw new Error(p.message);
    expect(p.requests[0]).toEqual({ channel: 'one:default:a', attrs: {}, data: 'one:1', idempotencyKey: 'k1' });
    expect(Object.keys(p.requests[1]!)).toEqual(['channel', 'attrs', 'data']);
    const single = parsePublishValue({ dialect: 'one', channel: 'a', data: 1 }, { ...opts, idempotencyKey: 'h1' });
    expect(single).toMatchObject({ ok: true, batch: false, requests: [{ idempotencyKey: 'h1' }] });
  });
});
