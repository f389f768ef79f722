import { describe, expect, it } from 'vitest';
import { createLogger } from '@switchboard/core';
import type { SessionApi, SubscriptionRecord, TokenVerifier } from '@switchboard/session';
import { ConnectionRegistry, type Conn } from './conn.js';
import { SessionGate } from './session-gate.js';

// The subscriptions connections make are recorded in their sessions in batches: one call per tick for
// every connection, in the order they were made, without waiting for an earlier call (an edge killed right
// after a subscribe must have sent it).

function gate() {
  const calls: SubscriptionRecord[][] = [];
  let release: (() => void) | null = null;
  const session = {
    recordSubscriptions: (records: readonly SubscriptionRecord[]) => {
      calls.push([...records]);
      // The first call stays in flight until the test lets it go.
      if (calls.length === 1) return new Promise<void>((r) => (release = r));
      return Promise.resolve();
    },
  } as unknown as SessionApi;
  const g = new SessionGate({ verifier: {} as TokenVerifier, session, conns: new ConnectionRegistry('n'), logger: createLogger({ name: 'test', level: 'silent' }), cluster: { closeWhere: () => Promise.resolve() } });
  return { g, calls, release: () => release?.() };
}

const conn = (i: number) => ({ connId: `n:${i}`, dialect: 'valtronics', sessionId: `s${i}`, closed: false }) as unknown as Conn;
const tick = () => new Promise((r) => setImmediate(r));

describe('SessionGate: subscriptions recorded in sessions', () => {
  it('a burst from many connections is one call; the next tick is the next call, even with the first in flight', async () => {
    const t = gate();
    for (let i = 0; i < 500; i++) t.g.saveSubscription(conn(i), 'alerts', { channel: 'alerts' }, null);
    await tick();
    expect(t.calls).toHaveLength(1);
    expect(t.calls[0]).toHaveLength(500);
    // Made while the first call is in flight: sent at the next tick all the same, together and in order.
    t.g.saveSubscription(conn(1), 'devices', { channel: 'devices' }, { epoch: 'e', offset: 3 });
    t.g.forgetSubscription(conn(1), 'devices');
    await tick();
    expect(t.calls).toHaveLength(2);
    t.release();
    expect(t.calls[1]).toEqual([
      { sessionId: 's1', save: { key: 'devices', dialect: 'valtronics', request: { channel: 'devices' }, position: { epoch: 'e', offset: 3 } } },
      { sessionId: 's1', remove: 'devices' },
    ]);
  });

  it('a connection without a session records nothing', async () => {
    const t = gate();
    t.g.saveSubscription({ ...conn(1), sessionId: null }, 'alerts', {}, null);
    await tick();
    expect(t.calls).toHaveLength(0);
  });
});
