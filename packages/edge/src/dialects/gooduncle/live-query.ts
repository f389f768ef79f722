/**
 * One `subscribe` of one connection: the render context of its hub group. It decides from a change
 * event's attrs alone (the store carries every indexed field's value before and after the write) whether
 * the object entered, changed in or left the query's result set, and renders the seed's envelope for it.
 *
 * Every update carries the subscriber's `session` (its id is the connection's), so a live query's group
 * has one member: the renderer runs once per group as always, which here is once per subscribing
 * session. It is kept to two string concatenations and a few attr comparisons per event; the parts that
 * do not change per event (session, request, this edge's passport entry) are assembled once.
 */
import type { Envelope } from '@switchboard/core';
import {
  goodUncleChangeHead,
  renderGoodUncleChange,
  type GoodUncleChange,
  type GoodUncleOp,
  type GoodUncleQuery,
} from '@switchboard/protocol';
import { ATTR, type StoredObject } from '@switchboard/store';
import type { Conn } from '../../conn.js';

/** Per-connection state of a Good Uncle client. */
export interface GoodUncleState {
  /** The session id every response carries: one per connection (the seed: a new connection is a new session). */
  readonly sessionId: string;
  /** The session's roles: gained by `upgrade`, lost by `downgrade`. */
  roles: readonly string[];
  /** JSON text of `session`, rebuilt whenever the roles change. */
  session: string;
  /** Live queries by canonical (topic, query) key, which is also their hub subscription id. */
  readonly queries: Map<string, LiveQuery>;
  /** Numbers this connection's live queries (their render keys must never repeat). */
  nextQuery: number;
}

/** A Good Uncle connection. */
export type GUConn = Conn<GoodUncleState>;

/** Events buffered while the first response is being assembled; beyond it the subscribe fails (the topic changes too fast). */
export const MAX_PENDING_EVENTS = 10_000;

const OPS: Readonly<Record<string, GoodUncleOp>> = { create: 'create', merge: 'update', remove: 'delete' };

/** A condition on one indexed field: the attrs holding its value after and before a write, and the JSON text it must equal. */
interface Condition {
  readonly after: string;
  readonly before: string;
  readonly text: string;
}

/** A live query: what its renderer needs, and the events it holds back until its first response is out. */
export class LiveQuery {
  /** False until the first response was sent: events meanwhile are buffered, not rendered. */
  private armed = false;
  private pending: Envelope[] = [];
  /** More than {@link MAX_PENDING_EVENTS} arrived before the first response. */
  overflowed = false;
  /** Set when the subscription ended: nothing more is rendered for it. */
  private ended = false;
  private readonly conds: readonly Condition[];
  private headSession = '';
  private head = '';
  private epoch = '';
  private epochJson = '""';

  constructor(
    private readonly conn: GUConn,
    readonly key: string,
    readonly topic: string,
    query: GoodUncleQuery,
    /** `request.time` and `request.payload` of the `subscribe` it answers. */
    readonly requestTime: number,
    readonly requestJson: string,
    /** This edge's passport entry and the end of the frame. */
    private readonly tail: string,
  ) {
    this.conds = Object.entries(query).map(([field, value]) => ({ after: ATTR.after(field), before: ATTR.before(field), text: JSON.stringify(value) }));
  }

  /** How the event moved the result set, or null when it concerns an object that was never in it. */
  change(env: Envelope): GoodUncleChange | null {
    const attrs = env.attrs;
    const op = attrs[ATTR.op];
    if (op !== 'create' && op !== 'merge' && op !== 'remove') return null;
    let before = op !== 'create';
    let after = op !== 'remove';
    const conds = this.conds;
    for (let i = 0; i < conds.length; i++) {
      const c = conds[i]!;
      if (before && attrs[c.before] !== c.text) before = false;
      if (after && attrs[c.after] !== c.text) after = false;
    }
    return after ? (before ? 'changed' : 'entered') : before ? 'left' : null;
  }

  /** The hub group's renderer. */
  readonly render = (env: Envelope): string | null => {
    if (this.ended) return null;
    const change = this.change(env);
    if (change === null) return null;
    if (!this.armed) {
      if (this.pending.length >= MAX_PENDING_EVENTS) this.overflowed = true;
      else this.pending.push(env);
      return null;
    }
    return this.frame(env, change);
  };

  /** The update frame of one event. */
  frame(env: Envelope, change: GoodUncleChange): string {
    const session = this.conn.state.session;
    if (session !== this.headSession) {
      this.headSession = session;
      this.head = goodUncleChangeHead(session, this.requestTime, this.requestJson);
    }
    if (env.epoch !== this.epoch) {
      this.epoch = env.epoch;
      this.epochJson = JSON.stringify(env.epoch);
    }
    return renderGoodUncleChange(this.head, Date.now(), change, OPS[env.attrs[ATTR.op] as string]!, env.data, this.epochJson, env.offset, this.tail);
  }

  /**
   * Ends buffering: returns the update frames of the events that arrived while the first response was
   * assembled, minus those the snapshot already shows, and renders every later event live. Call it in
   * the same synchronous step that sends the first response, so no event falls between the two.
   */
  arm(snapshot: readonly StoredObject[]): string[] {
    this.armed = true;
    const pending = this.pending;
    this.pending = [];
    if (pending.length === 0) return [];
    // The buffered events straddle the moment the result set was read. For an object in the result set,
    // its version tells them apart: those above it came later and are sent as they are. An object not in
    // it either entered since or left before; so only its last event counts: if that leaves it out, the
    // client (which never had it) hears nothing; otherwise it hears once that the object entered.
    const read = new Map<number, number>();
    for (const o of snapshot) read.set(o.id, o.v[0] ?? 0);
    const events: { env: Envelope; id: number; change: GoodUncleChange }[] = [];
    const lastOf = new Map<number, number>();
    for (const env of pending) {
      const change = this.change(env);
      const id = env.attrs[ATTR.id];
      if (change === null || typeof id !== 'number') continue;
      lastOf.set(id, events.length);
      events.push({ env, id, change });
    }
    const frames: string[] = [];
    events.forEach(({ env, id, change }, i) => {
      const seen = read.get(id);
      if (seen !== undefined) {
        const version = versionOf(env.data);
        if (version === null || version > seen) frames.push(this.frame(env, change));
      } else if (lastOf.get(id) === i && change !== 'left') frames.push(this.frame(env, 'entered'));
    });
    return frames;
  }

  /** The subscription ended (unsubscribed, replaced, forbidden, or the connection closed). */
  end(): void {
    this.ended = true;
    this.pending = [];
  }
}

/** The first counter of an object's `v` in a change event's data; null when unreadable. */
function versionOf(data: string): number | null {
  try {
    const o = JSON.parse(data) as { v?: unknown };
    return Array.isArray(o.v) && typeof o.v[0] === 'number' ? o.v[0] : null;
  } catch {
    return null;
  }
}
