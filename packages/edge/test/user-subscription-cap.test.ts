/**
 * The cluster-wide per-user subscription cap (`SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER`, issue 11 item 5)
 * in the FME and Good Uncle dialects, over real sockets: one user's connections share the cap, the
 * subscription past it is refused with the dialect's own error, dropping one makes room, and a
 * reservation the session service cannot count is refused with `unavailable`. (valtronics and Fleet
 * Freedom: abuse-limits.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import type { TestClient } from '@switchboard/testkit';
import { ask, keepAlive, ok, TEST_TOPICS } from './gooduncle.helpers.js';
import { startTestNode } from './helpers.js';

/** The next FME error frame (`{"ws_op":"error",…}`). */
const fmeError = (c: TestClient) => c.next((m) => m.ws_op === 'error');

const limits = { maxSubscriptionsPerUser: 2, maxConnectionsPerUser: 100, newConnectionsPerUserPerMin: 0 };

describe('FME: streams count against the per-user cap across the cluster', () => {
  it('a token-bearing user\'s `open`s share the cap (all or nothing), `close` makes room, an unreachable service answers `unavailable`', async () => {
    const n = await startTestNode(limits);
    try {
      const url = `${n.wsUrl}/fme?access_token=${await n.token('streamer')}`;
      const [a, b] = [await n.connect(url.slice(n.wsUrl.length)), await n.connect(url.slice(n.wsUrl.length))];
      /** Sends a frame every connection answers with an error: the answers before it are those of earlier frames. */
      const settled = async (c: TestClient) => {
        c.send({ ws_op: 'nothing' });
        return fmeError(c);
      };
      a.send({ ws_op: 'open', ws_stream_ids: ['s1', 's2'] });
      expect(await settled(a)).toMatchObject({ ws_error: 'unknown_type' });
      // The user holds 2 of 2: another connection's stream is refused, and nothing of the `open` is opened.
      b.send({ ws_op: 'open', ws_stream_ids: ['s3'] });
      const refused = await fmeError(b);
      expect(refused).toMatchObject({ ws_error: 'too_many_subscriptions', ws_request: 'open' });
      expect(String(refused.ws_msg)).toContain('per user across the cluster');
      b.send({ ws_op: 'send', ws_msg: 'hello' });
      expect(await fmeError(b)).toMatchObject({ ws_error: 'not_subscribed' });
      expect(await n.metric('switchboard_rate_limit_rejections_total', { rule: 'user_subscriptions' })).toBe(1);
      // `close` gives the user's streams back before the next frame of the connection is read.
      a.send({ ws_op: 'close' });
      expect(await settled(a)).toMatchObject({ ws_error: 'unknown_type' });
      b.send({ ws_op: 'open', ws_stream_ids: ['s3', 's4'] });
      expect(await settled(b)).toMatchObject({ ws_error: 'unknown_type' });
      a.send({ ws_op: 'open', ws_stream_ids: ['s1'] });
      expect(await fmeError(a)).toMatchObject({ ws_error: 'too_many_subscriptions' });
      // Another user is not affected.
      const other = await n.connect(`/fme?access_token=${await n.token('neighbour')}`);
      other.send({ ws_op: 'open', ws_stream_ids: ['s1', 's2'] });
      expect(await settled(other)).toMatchObject({ ws_error: 'unknown_type' });
      b.send({ ws_op: 'close' });
      expect(await settled(b)).toMatchObject({ ws_error: 'unknown_type' });
      n.session.reserveSubscriptions = () => Promise.reject(new Error('the session service is unavailable'));
      a.send({ ws_op: 'open', ws_stream_ids: ['s1'] });
      expect(await fmeError(a)).toMatchObject({ ws_error: 'unavailable', ws_request: 'open' });
    } finally {
      await n.close();
    }
  });
});

describe('Good Uncle: live queries count against the per-user cap across the cluster', () => {
  const env = { GOODUNCLE_TOPICS: JSON.stringify(TEST_TOPICS) };
  const order = (status: string) => ({ type: 'subscribe', topic: 'orders', query: { status } });

  it('an upgraded user\'s live queries share the cap, `unsubscribe` makes room, queries made before the upgrade count after it', async () => {
    const n = await startTestNode(limits, { env });
    const stops: (() => void)[] = [];
    try {
      const token = await n.token('gu-hoarder');
      const client = async (upgrade: boolean) => {
        const c = await n.connect('/gooduncle');
        stops.push(keepAlive(c));
        if (upgrade) ok(await ask(c, { type: 'upgrade', token }));
        return c;
      };
      const [a, b] = [await client(true), await client(true)];
      ok(await ask(a, order('new')));
      ok(await ask(b, order('new')));
      const refused = await ask(b, order('paid'));
      expect(refused.response.code).toBe('bad request');
      expect(refused.response.errors[0]).toMatchObject({ code: 'too_many_subscriptions' });
      expect(refused.response.errors[0]!.problem).toContain('per user across the cluster');
      // Subscribing again to a held query replaces it: nothing more is counted.
      ok(await ask(b, order('new')));
      ok(await ask(a, { type: 'unsubscribe', topic: 'orders', query: { status: 'new' } }));
      ok(await ask(b, order('paid')));
      // A session's live queries from before its upgrade count from the upgrade on (never refused by it).
      const c = await client(false);
      ok(await ask(c, { type: 'subscribe', topic: 'public', query: {} }));
      ok(await ask(c, { type: 'upgrade', token }));
      ok(await ask(b, { type: 'unsubscribe', topic: 'orders', query: { status: 'new' } }));
      expect((await ask(c, order('late'))).response.errors[0]).toMatchObject({ code: 'too_many_subscriptions' });
      ok(await ask(c, { type: 'unsubscribe', topic: 'public', query: {} }));
      ok(await ask(c, order('late')));
      n.session.reserveSubscriptions = () => Promise.reject(new Error('the session service is unavailable'));
      ok(await ask(b, { type: 'unsubscribe', topic: 'orders', query: { status: 'paid' } }));
      const unavailable = await ask(a, order('cut-off'));
      expect(unavailable.response.code).toBe('error');
      expect(unavailable.response.errors[0]).toMatchObject({ code: 'unavailable' });
    } finally {
      for (const s of stops) s();
      await n.close();
    }
  });
});
