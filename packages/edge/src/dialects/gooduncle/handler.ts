/**
 * The `gooduncle` dialect (seed 004) on the edge: anonymous sessions that gain roles with `upgrade` and
 * lose them with `downgrade`, create/read/update/delete on topics kept in the object store, and live
 * queries (`subscribe`) fed by the store's change events from every edge. Every answer is the seed's
 * envelope; limits, request order, keep-alive ticks and silence are the shared edge modules.
 */
import { SwitchboardError, busChannel, type ErrorCode } from '@switchboard/core';
import {
  goodUncleChangeTail,
  goodUncleCode,
  goodUncleSessionJson,
  parseGoodUncleFrame,
  renderGoodUncleResponse,
  type GoodUncleCode,
  type GoodUncleFieldError,
  type GoodUnclePassportEntry,
  type GoodUncleQuery,
  type GoodUncleRequest,
} from '@switchboard/protocol';
import type { GetResult, ObjectStore, RemoveResult, StoreRefusal, StoredObject, WriteResult } from '@switchboard/store';
import { randomUUID } from 'node:crypto';
import type { DialectContext, DialectHandler, Frame, Refusal, UpgradeDecision } from '../../dialect.js';
import type { GroupSpec, Renderer } from '../../hub.js';
import { goodUncleConfig, type TopicConfig } from './config.js';
import { LiveQuery, type GUConn, type GoodUncleState } from './live-query.js';

/** The dialect's name: in channel names, metrics and config. */
export const DIALECT = 'gooduncle';

/** Longest silence of the log about an unavailable store while requests keep failing. */
const STORE_WARN_EVERY_MS = 10_000;

/** The request a response answers: when it arrived and its echo (`request.payload`). */
interface RequestRef {
  readonly time: number;
  readonly echo: string;
}

/** A response's optional parts. */
interface Answer {
  readonly errors?: readonly GoodUncleFieldError[];
  readonly payloadJson?: string;
  readonly passport?: readonly GoodUnclePassportEntry[];
}

/** A live query's result set as its first response shows it. */
interface Snapshot {
  readonly ok: true;
  readonly objects: StoredObject[];
  readonly truncated: boolean;
}

type Req<T extends GoodUncleRequest['type']> = Extract<GoodUncleRequest, { type: T }>;

/** A store refusal as the wire names it: the registered code and the request field it concerns. */
const STORE_REFUSALS: Readonly<Record<StoreRefusal['code'], { code: ErrorCode; field: string | null }>> = {
  not_found: { code: 'not_found', field: 'id' },
  version_conflict: { code: 'version_conflict', field: 'v' },
  invalid_object: { code: 'invalid_message', field: 'data' },
  forbidden_key: { code: 'forbidden_key', field: 'data' },
  too_deep: { code: 'too_deep', field: 'data' },
  too_large: { code: 'message_too_large', field: 'data' },
  invalid_query: { code: 'invalid_filter', field: 'query' },
  ids_exhausted: { code: 'internal_error', field: null },
  unknown_type: { code: 'internal_error', field: null },
};

/** Whether a role rule of a topic lets a session with `roles` through. */
function allowed(rule: TopicConfig['read'], roles: readonly string[]): boolean {
  if (rule === 'anyone') return true;
  if (rule === 'any-role') return roles.length > 0;
  return roles.some((r) => rule.includes(r));
}

/** The Good Uncle request handling of one edge. */
export class GoodUncleHandler implements DialectHandler<GoodUncleState> {
  private readonly topics: ReadonlyMap<string, TopicConfig>;
  private readonly maxResults: number;
  private readonly edge: GoodUnclePassportEntry;
  private readonly tail: string;
  private store: ObjectStore | null = null;
  private storeWarnedAtMs = -Infinity;
  /**
   * The live queries counted against their user's cap across the cluster: those of an upgraded session
   * (an anonymous one is not admitted, so not counted until it upgrades). Only these are released.
   */
  private readonly counted = new WeakSet<LiveQuery>();

  constructor(private readonly ctx: DialectContext) {
    const o = goodUncleConfig.of(ctx.config);
    this.topics = new Map(Object.entries(o.topics));
    this.maxResults = o.maxResults;
    this.edge = { service: 'edge', node: ctx.conns.nodeId };
    this.tail = goodUncleChangeTail(ctx.conns.nodeId);
  }

  /** Opens the object store: one type per topic (one part, `data`), its queried fields indexed. */
  async start(): Promise<void> {
    const types: Record<string, { parts: string[]; defaultPart: string; indexed: string[] }> = {};
    for (const [name, t] of this.topics) types[name] = { parts: ['data'], defaultPart: 'data', indexed: [...t.indexed] };
    this.store = await this.ctx.openStore({ types, channel: (tenant, topic) => busChannel(DIALECT, tenant, topic) });
  }

  upgrade(): UpgradeDecision<GoodUncleState> {
    const sessionId = randomUUID();
    return { accept: true, state: { sessionId, roles: [], session: goodUncleSessionJson(sessionId, []), queries: new Map(), nextQuery: 0 } };
  }

  message(conn: GUConn, frame: Frame): Promise<void> | undefined {
    const text = frame.binary ? frame.data.toString('utf8') : frame.text;
    const time = Date.now();
    const parsed = parseGoodUncleFrame(text, this.ctx.config.maxDepth);
    // Not JSON: the seed ignores it; it already counted as keep-alive when it arrived.
    if (parsed.kind === 'ignored') return undefined;
    const req: RequestRef = { time, echo: parsed.echo };
    if (parsed.kind === 'refused') {
      this.fail(conn, req, parsed.errors);
      return undefined;
    }
    const r = parsed.request;
    switch (r.type) {
      case 'upgrade':
        return this.upgradeSession(conn, req, r);
      case 'downgrade':
        this.downgrade(conn, req, r);
        return undefined;
      case 'create':
      case 'read':
      case 'update':
      case 'delete':
        return this.crud(conn, req, r);
      case 'subscribe':
        return this.subscribe(conn, req, r);
      case 'unsubscribe':
        return this.unsubscribe(conn, req, r);
    }
  }

  refuse(conn: GUConn, refusal: Refusal): void {
    // The frame was refused before it was read: there is no request to echo.
    this.reply(conn, { time: Date.now(), echo: 'null' }, goodUncleCode(refusal.code), { errors: [{ field: null, code: refusal.code, problem: refusal.message }] });
  }

  close(conn: GUConn): void {
    for (const q of conn.state.queries.values()) q.end();
    conn.state.queries.clear();
  }

  renderer(spec: GroupSpec): Renderer {
    return (spec.render!.context as LiveQuery).render;
  }

  // --- sessions ---------------------------------------------------------------------------------

  private async upgradeSession(conn: GUConn, req: RequestRef, r: Req<'upgrade'>): Promise<void> {
    const passport: GoodUnclePassportEntry[] = [this.edge, { service: 'session' }];
    let token: string;
    if ('token' in r) token = r.token;
    else {
      let login;
      try {
        login = await this.ctx.session.login({ username: r.username, password: r.password, ip: conn.ip });
      } catch (err) {
        this.ctx.logger.warn({ err }, 'login unavailable');
        this.fail(conn, req, [{ field: null, code: 'unavailable', problem: 'the session service is unavailable; retry' }], passport);
        return;
      }
      if (conn.closed) return;
      if (!login.ok) {
        const problem = login.code === 'locked_out' && login.retryAfterSec !== undefined ? `${login.message} (retry after ${login.retryAfterSec} s)` : login.message;
        this.fail(conn, req, [{ field: login.code === 'invalid_message' ? null : 'username', code: login.code, problem }], passport);
        return;
      }
      token = login.token;
    }
    const res = await this.ctx.gate.authenticate(conn, this.ctx.metrics, token, null);
    if (!res.ok) {
      if (res.code === 'gone') return;
      this.fail(conn, req, [{ field: 'token' in r ? 'token' : 'username', code: res.code, problem: res.message }], passport);
      // A refused admission acquired nothing and the session stays anonymous; anything else is closed as the gate says.
      if (res.close && res.close !== 'admission_refused') this.ctx.close(conn, res.close);
      return;
    }
    const identity = res.identity;
    if (!res.refreshed) await this.countAnonymousQueries(conn);
    if (conn.closed) return;
    const roles = [...conn.state.roles];
    for (const role of identity.roles) if (!roles.includes(role)) roles.push(role);
    this.setRoles(conn, roles);
    const payload = { user: identity.userId, account: conn.tenant, roles };
    this.reply(conn, req, 'ok', { payloadJson: JSON.stringify(payload), passport });
  }

  /**
   * A session just admitted under a user: the live queries it made while anonymous count from now on,
   * never refused by the cap (they exist already; the user subscribes to nothing new until under it).
   * If the service cannot count them they stay uncounted, as they were, bounded per connection.
   */
  private async countAnonymousQueries(conn: GUConn): Promise<void> {
    const uncounted = [...conn.state.queries.values()].filter((q) => !this.counted.has(q));
    if (uncounted.length === 0) return;
    const v = await this.ctx.subscriptions.reserve(conn, uncounted.length, true);
    if (v !== 'ok') {
      this.ctx.logger.warn({ conn: conn.connId, queries: uncounted.length }, 'live queries made before the upgrade not counted: the session service is unavailable');
      return;
    }
    // Requests run one at a time: none of these was dropped meanwhile (a closed connection's count goes with its admission).
    for (const q of uncounted) this.counted.add(q);
  }

  private downgrade(conn: GUConn, req: RequestRef, r: Req<'downgrade'>): void {
    if (!conn.state.roles.includes(r.role)) {
      this.fail(conn, req, [{ field: 'role', code: 'not_found', problem: `the session has no role "${r.role}"` }]);
      return;
    }
    this.setRoles(
      conn,
      conn.state.roles.filter((x) => x !== r.role),
    );
    this.reply(conn, req, 'ok');
    // Live queries the session may no longer read end now, each with a last answer saying why.
    for (const q of [...conn.state.queries.values()]) {
      const topic = this.topics.get(q.topic);
      if (topic && allowed(topic.read, conn.state.roles)) continue;
      void this.dropQuery(conn, q);
      this.fail(conn, { time: q.requestTime, echo: q.requestJson }, [
        { field: 'topic', code: 'forbidden', problem: `the session no longer has a role that reads "${q.topic}"; the subscription ended` },
      ]);
    }
  }

  private setRoles(conn: GUConn, roles: readonly string[]): void {
    conn.state.roles = roles;
    conn.state.session = goodUncleSessionJson(conn.state.sessionId, roles);
  }

  // --- objects ----------------------------------------------------------------------------------

  /** The topic's settings when the session may do `what` on it; otherwise answers and returns null. */
  private topicFor(conn: GUConn, req: RequestRef, name: string, what: 'read' | 'write'): TopicConfig | null {
    const topic = this.topics.get(name);
    if (!topic) {
      this.fail(conn, req, [{ field: 'topic', code: 'unknown_channel', problem: `no topic is named "${name}"` }]);
      return null;
    }
    if (!allowed(topic[what], conn.state.roles)) {
      const need = topic[what] === 'any-role' ? 'a role (upgrade first)' : `one of the roles ${(topic[what] as string[]).join(', ')}`;
      this.fail(conn, req, [{ field: 'topic', code: 'forbidden', problem: `to ${what} "${name}" the session needs ${need}` }]);
      return null;
    }
    return topic;
  }

  private async crud(conn: GUConn, req: RequestRef, r: Req<'create' | 'read' | 'update' | 'delete'>): Promise<void> {
    if (!this.topicFor(conn, req, r.topic, r.type === 'read' ? 'read' : 'write')) return;
    const store = this.store!;
    const tenant = conn.tenant;
    let res: GetResult | WriteResult | RemoveResult;
    try {
      switch (r.type) {
        case 'create':
          res = await store.create(tenant, r.topic, r.data);
          break;
        case 'read':
          res = await store.get(tenant, r.topic, r.id);
          break;
        case 'update':
          res = await store.merge(tenant, r.topic, r.id, r.data, r.v ? { expectV: r.v } : {});
          break;
        case 'delete':
          res = await store.remove(tenant, r.topic, r.id, r.v ? { expectV: r.v } : {});
          break;
      }
    } catch (err) {
      this.storeUnavailable(conn, req, err, r.type);
      return;
    }
    if (conn.closed) return;
    if (!res.ok) {
      this.storeRefused(conn, req, res);
      return;
    }
    if ('position' in res) {
      this.reply(conn, req, 'ok', {
        payloadJson: `{"object":${res.data}}`,
        passport: [this.edge, { service: 'store', epoch: res.position.epoch, offset: res.position.offset }],
      });
      return;
    }
    this.reply(conn, req, 'ok', { payloadJson: `{"object":${JSON.stringify(res.object)}}` });
  }

  private storeRefused(conn: GUConn, req: RequestRef, res: StoreRefusal): void {
    const m = STORE_REFUSALS[res.code];
    let problem = res.message;
    let payloadJson: string | undefined;
    if (res.code === 'version_conflict') {
      problem = `the object is at v ${JSON.stringify(res.current.v)}: it changed since it was read; nothing was written`;
      payloadJson = `{"object":${JSON.stringify(res.current)}}`;
    }
    if (res.code === 'not_found') problem = 'no object of this topic has that id';
    this.fail(conn, req, [{ field: m.field, code: m.code, problem }], undefined, payloadJson);
  }

  private storeUnavailable(conn: GUConn, req: RequestRef, err: unknown, op: string): void {
    // Expected while Redis is away: every request is answered as the seed's `error` and counted
    // (`client_errors_total{code="unavailable"}`, and the store's own `store_redis_errors_total`); the
    // log gets one line per STORE_WARN_EVERY_MS, not one per request of every client.
    const now = Date.now();
    if (now - this.storeWarnedAtMs >= STORE_WARN_EVERY_MS) {
      this.storeWarnedAtMs = now;
      this.ctx.logger.warn({ err, op }, 'object store unavailable');
    }
    if (!conn.closed) this.fail(conn, req, [{ field: null, code: 'unavailable', problem: 'the object store is unavailable; retry' }]);
  }

  // --- live queries -----------------------------------------------------------------------------

  /**
   * A live query: joins the topic's channel first (events buffered, not sent), then reads the result
   * set, then — in one synchronous step — sends it as the first response, sends the buffered events
   * that are newer than it, and starts rendering live. So the first response precedes every update,
   * and no change between the read and the join is lost.
   */
  private async subscribe(conn: GUConn, req: RequestRef, r: Req<'subscribe'>): Promise<void> {
    const topic = this.topicFor(conn, req, r.topic, 'read');
    if (!topic) return;
    const notIndexed = Object.keys(r.query).filter((f) => !topic.indexed.includes(f));
    if (notIndexed.length > 0) {
      const indexed = topic.indexed.length > 0 ? `its queryable fields: ${topic.indexed.join(', ')}` : 'it has no queryable fields; query {}';
      this.fail(
        conn,
        req,
        notIndexed.map((f) => ({ field: `query.${f}`, code: 'invalid_filter' as const, problem: `"${f}" is not a queryable field of "${r.topic}" (${indexed})` })),
      );
      return;
    }
    const max = this.ctx.limits.maxSubscriptionsPerConnection;
    const adding = !conn.state.queries.has(r.key);
    if (adding && conn.state.queries.size >= max) {
      this.fail(conn, req, [{ field: null, code: 'too_many_subscriptions', problem: `at most ${max} subscriptions per connection` }]);
      return;
    }
    // Counted only for an upgraded (admitted) session; the quota answers `ok` without a call otherwise.
    const counting = adding && conn.identity !== null && conn.admitted;
    if (adding) {
      const room = await this.ctx.subscriptions.reserve(conn, 1);
      if (conn.closed) return;
      if (room === 'over_cap') {
        this.ctx.metrics.rateLimited('user_subscriptions');
        this.fail(conn, req, [{ field: null, code: 'too_many_subscriptions', problem: `at most ${this.ctx.subscriptions.maxPerUser} subscriptions per user across the cluster` }]);
        return;
      }
      if (room === 'unavailable') {
        this.fail(conn, req, [{ field: null, code: 'unavailable', problem: 'the session service is unavailable; retry' }]);
        return;
      }
    }
    const q = new LiveQuery(conn, r.key, r.topic, r.query, req.time, req.echo, this.tail);
    const spec: GroupSpec = {
      dialect: DIALECT,
      channel: this.store!.channel(conn.tenant, r.topic),
      filter: {},
      projection: null,
      frequencyMs: 0,
      conflateBy: null,
      render: { key: `${conn.connId}#${++conn.state.nextQuery}`, context: q },
    };
    try {
      await this.ctx.hub.subscribe(conn, r.key, spec, null, () => undefined);
    } catch (err) {
      if (counting) void this.ctx.subscriptions.release(conn, 1);
      if (conn.closed) return;
      if (!(err instanceof SwitchboardError)) throw err;
      this.fail(conn, req, [{ field: null, code: err.code, problem: err.message }]);
      return;
    }
    if (conn.closed) return;
    // Subscribing again with the same topic and query replaced the previous subscription in the hub
    // (and takes over its place in the user's count).
    const replaced = conn.state.queries.get(r.key);
    replaced?.end();
    if (counting || (replaced !== undefined && this.counted.delete(replaced))) this.counted.add(q);
    conn.state.queries.set(r.key, q);
    let snapshot: Snapshot | StoreRefusal;
    try {
      snapshot = await this.snapshot(conn.tenant, r.topic, r.query);
    } catch (err) {
      if (conn.state.queries.get(r.key) === q) void this.dropQuery(conn, q);
      this.storeUnavailable(conn, req, err, 'query');
      return;
    }
    if (conn.closed || conn.state.queries.get(r.key) !== q) return;
    if (!snapshot.ok) {
      void this.dropQuery(conn, q);
      this.storeRefused(conn, req, snapshot);
      return;
    }
    if (q.overflowed) {
      void this.dropQuery(conn, q);
      this.fail(conn, req, [{ field: null, code: 'unavailable', problem: 'the topic changed too fast to read the result set; retry' }]);
      return;
    }
    const first = this.response(conn, req, 'ok', {
      payloadJson: `{"objects":[${snapshot.objects.map((o) => JSON.stringify(o)).join(',')}],"truncated":${snapshot.truncated}}`,
    });
    const ws = conn.ws;
    ws.cork(() => {
      ws.send(first, false, false);
      const updates = q.arm(snapshot.objects);
      for (const f of updates) ws.send(f, false, false);
      this.ctx.metrics.messagesOut.inc(1 + updates.length);
    });
  }

  /** The query's result set, read page by page up to `maxResults` objects. */
  private async snapshot(tenant: string, topic: string, where: GoodUncleQuery): Promise<Snapshot | StoreRefusal> {
    const objects: StoredObject[] = [];
    let afterId = 0;
    for (;;) {
      const res = await this.store!.query(tenant, topic, { where, afterId, limit: Math.min(1000, this.maxResults - objects.length + 1) });
      if (!res.ok) return res;
      objects.push(...res.objects);
      if (objects.length > this.maxResults) return { ok: true, objects: objects.slice(0, this.maxResults), truncated: true };
      if (res.nextAfterId === null) return { ok: true, objects, truncated: false };
      afterId = res.nextAfterId;
    }
  }

  /** Ends a live query; answered once the user's count across the cluster has room again. */
  private async unsubscribe(conn: GUConn, req: RequestRef, r: Req<'unsubscribe'>): Promise<void> {
    const q = conn.state.queries.get(r.key);
    if (!q) {
      this.fail(conn, req, [{ field: 'query', code: 'not_subscribed', problem: `no subscription to "${r.topic}" with this query` }]);
      return;
    }
    await this.dropQuery(conn, q);
    if (!conn.closed) this.reply(conn, req, 'ok');
  }

  /** Ends a live query and gives its place in the user's count back (resolves once the service applied it). */
  private dropQuery(conn: GUConn, q: LiveQuery): Promise<void> {
    q.end();
    conn.state.queries.delete(q.key);
    this.ctx.hub.unsubscribe(conn, q.key);
    return this.counted.delete(q) ? this.ctx.subscriptions.release(conn, 1) : Promise.resolve();
  }

  // --- answers ----------------------------------------------------------------------------------

  private response(conn: GUConn, req: RequestRef, code: GoodUncleCode, a: Answer = {}): string {
    return renderGoodUncleResponse({
      session: conn.state.session,
      requestTime: req.time,
      requestJson: req.echo,
      time: Date.now(),
      code,
      ...(a.errors ? { errors: a.errors } : {}),
      ...(a.payloadJson !== undefined ? { payloadJson: a.payloadJson } : {}),
      passport: a.passport ?? [this.edge],
    });
  }

  private reply(conn: GUConn, req: RequestRef, code: GoodUncleCode, a: Answer = {}): void {
    this.ctx.send(conn, this.response(conn, req, code, a));
  }

  /** A refusal: the seed's code of the first problem, every problem listed; counted by its registered code. */
  private fail(conn: GUConn, req: RequestRef, errors: readonly GoodUncleFieldError[], passport?: readonly GoodUnclePassportEntry[], payloadJson?: string): void {
    const code = errors[0]!.code;
    this.ctx.metrics.error(code);
    this.reply(conn, req, goodUncleCode(code), { errors, ...(passport ? { passport } : {}), ...(payloadJson !== undefined ? { payloadJson } : {}) });
  }
}
