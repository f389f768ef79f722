/**
 * The `fme` dialect (seed 001) on the edge: `open` joins a connection to streams, `send` relays a message
 * through the bus to every other connection, on any edge, that opened any stream the sender opened, and
 * the two admin queries answer for the whole cluster from the shared channel view.
 *
 * A stream is a bus channel `fme:<tenant>:<name>` and a connection's open stream is one hub subscription
 * (subscription id = the name). `send` publishes the message once per stream the sender has open, with
 * `SENDER_ATTR` naming the sender (the hub never hands it back to the sender) and, on every stream but the
 * first (in name order), the sender's streams that sort before it (`PRIOR_ATTR`). A receiver's
 * subscription to stream `c` renders nothing for a message that also went to one of the receiver's own
 * streams sorting before `c`: a receiver sharing several streams with the sender gets the message once,
 * through the first of them, with no work per receiver (the check runs once per group, and receivers
 * sharing the same earlier streams share the group).
 */
import { SwitchboardError, TokenBucket, busChannel, splitBusChannel, type ErrorCode, type PublishRequest } from '@switchboard/core';
import {
  fmeStreamId,
  fmeStreamName,
  normalizeFmePublish,
  parseFmeFrame,
  renderFmeChannelInfo,
  renderFmeError,
  renderFmeNumChannels,
  renderFmeRelay,
  type FmeAdminQuery,
} from '@switchboard/protocol';
import { ADMIN_ROLE } from '../../channel-admin.js';
import type { Conn } from '../../conn.js';
import type { DialectContext, DialectHandler, Frame, NormalizedPublish, Refusal, UpgradeDecision, UpgradeRequest } from '../../dialect.js';
import { SENDER_ATTR, type GroupSpec, type Renderer } from '../../hub.js';
import { admissionUserOf } from '../../session-gate.js';
import { fmeConfig } from './config.js';

/** The dialect's name: in channel names, metrics and config. */
export const DIALECT = 'fme';

/** On a relayed message: ` a b ` — the sender's streams sorting before the one it was published to. */
export const PRIOR_ATTR = '~prior';

/** Per-connection state of an FME client (its open streams are its hub subscriptions). */
export interface FmeState {
  /** Admission of a connection that came with a token, while it runs; later frames wait for it. */
  admission: Promise<void> | null;
  /** Admin query rate limit, made on the first admin query. */
  adminBucket: TokenBucket | null;
}

type FConn = Conn<FmeState>;

/** Admin query names in `switchboard_admin_queries_total{query}`. */
const QUERY_LABEL: Readonly<Record<FmeAdminQuery, string>> = {
  getnumchannels: 'fme_getnumchannels',
  getchannelinfo: 'fme_getchannelinfo',
};

/** The token an upgrade carries: `?access_token=` or `Authorization: Bearer`. */
function upgradeToken(req: UpgradeRequest): string | null {
  const q = req.query.get('access_token');
  if (q !== null && q !== '') return q;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

/** The streams of `names` (sorted) that sort before `name`: what a subscription to `name` defers to. */
function priorOf(name: string, sorted: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of sorted) {
    if (n >= name) break;
    out.push(n);
  }
  return out;
}

/** The fme request handling of one edge. */
export class FmeHandler implements DialectHandler<FmeState> {
  private readonly opts: { requireToken: boolean; channelInfoMax: number; adminQueriesPerSec: number };

  constructor(private readonly ctx: DialectContext) {
    const o = fmeConfig.of(ctx.config);
    this.opts = { requireToken: o.requireToken, channelInfoMax: o.channelInfoMax, adminQueriesPerSec: o.adminQueriesPerSec };
    for (const label of Object.values(QUERY_LABEL)) ctx.admin.metrics.declare(label);
  }

  upgrade(req: UpgradeRequest): UpgradeDecision<FmeState> | Promise<UpgradeDecision<FmeState>> {
    const state: FmeState = { admission: null, adminBucket: null };
    const token = upgradeToken(req);
    if (token === null) {
      if (this.opts.requireToken) return { accept: false, status: 401, message: 'a token is required: ?access_token=<jwt> or Authorization: Bearer <jwt>' };
      return { accept: true, state };
    }
    // Verified before `res.upgrade`: a bad token refuses the upgrade.
    return this.ctx.verifier.verify(token).then((v) => (v.ok ? { accept: true, state, identity: v.identity } : { accept: false, status: 401, message: v.message }));
  }

  open(conn: FConn): void {
    // A connection that came with a token counts against its user's connection limits, like any other.
    // Admission only, no session: FME has nothing a session could resume.
    if (conn.identity === null) return;
    conn.state.admission = this.admit(conn).finally(() => {
      conn.state.admission = null;
    });
  }

  private async admit(conn: FConn): Promise<void> {
    let res;
    try {
      res = await this.ctx.session.admit({ userId: admissionUserOf(conn.identity!), connId: conn.connId, nodeId: this.ctx.conns.nodeId, ip: conn.ip });
    } catch (err) {
      this.ctx.logger.warn({ err }, 'fme admission unavailable');
      this.error(conn, 'unavailable', 'the session service is unavailable; reconnect later');
      this.ctx.close(conn, 'internal_error');
      return;
    }
    if (!res.ok) {
      this.ctx.metrics.rateLimited(res.rule);
      this.error(conn, res.code, res.message);
      this.ctx.close(conn, 'admission_refused');
      return;
    }
    // Released by the edge when the connection closes; one that closed meanwhile is released here.
    if (conn.closed) {
      this.ctx.session.release(conn.connId).catch((err: unknown) => this.ctx.logger.warn({ err }, 'admission release failed'));
      return;
    }
    conn.admitted = true;
  }

  message(conn: FConn, frame: Frame): Promise<void> | undefined {
    const admission = conn.state.admission;
    if (admission !== null) return admission.then(() => (conn.closed ? undefined : this.handle(conn, frame)));
    return this.handle(conn, frame);
  }

  refuse(conn: FConn, refusal: Refusal): void {
    this.error(conn, refusal.code, refusal.message);
  }

  renderer(spec: GroupSpec): Renderer {
    const prior = spec.render?.context as readonly string[] | undefined;
    if (prior === undefined || prior.length === 0) return (env) => renderFmeRelay(env.data);
    const needles = prior.map((n) => ` ${n} `);
    return (env) => {
      const p = env.attrs[PRIOR_ATTR];
      if (typeof p === 'string') for (let i = 0; i < needles.length; i++) if (p.includes(needles[i]!)) return null;
      return renderFmeRelay(env.data);
    };
  }

  normalizePublish(name: string, _attrs: Readonly<Record<string, string | number | boolean>>, data: unknown): NormalizedPublish {
    // Attributes are dropped: receivers filter nothing, and none may pose as a sender.
    const n = normalizeFmePublish(name, data, this.ctx.config.maxDepth);
    return n.ok ? { ok: true, name: n.name, attrs: {}, data: n.data } : n;
  }

  private handle(conn: FConn, frame: Frame): Promise<void> | undefined {
    if (frame.binary) {
      this.error(conn, 'invalid_message', 'binary frames are not accepted; send JSON text');
      return undefined;
    }
    const parsed = parseFmeFrame(frame.text, { maxDepth: this.ctx.config.maxDepth, maxStreams: this.ctx.limits.maxSubscriptionsPerConnection });
    if (!parsed.ok) {
      this.error(conn, parsed.error.code, parsed.error.message, parsed.error.op);
      return undefined;
    }
    const cmd = parsed.command;
    switch (cmd.op) {
      case 'open':
        return this.openStreams(conn, cmd.streams);
      case 'send':
        return this.send(conn, cmd.data);
      case 'close':
        return this.closeStreams(conn);
      case 'admin':
        return this.admin(conn, cmd.query);
    }
  }

  private spec(conn: FConn, name: string, sorted: readonly string[]): GroupSpec {
    const prior = priorOf(name, sorted);
    return {
      dialect: DIALECT,
      channel: busChannel(DIALECT, conn.tenant, name),
      filter: {},
      projection: null,
      frequencyMs: 0,
      conflateBy: null,
      render: { key: prior.join(' '), context: prior },
    };
  }

  /**
   * Joins the connection to more streams. New subscriptions first, then the existing ones move to the
   * groups that defer to the new earlier streams (a receiver may get a message sent meanwhile twice, never
   * miss one, while its own set of streams changes).
   */
  private async openStreams(conn: FConn, ids: readonly string[]): Promise<void> {
    const fresh = [...new Set(ids.map(fmeStreamName))].filter((n) => !conn.subs.has(n));
    const max = this.ctx.limits.maxSubscriptionsPerConnection;
    if (conn.subs.size + fresh.length > max) {
      this.error(conn, 'too_many_subscriptions', `at most ${max} streams per connection (${conn.subs.size} open)`, 'open');
      return;
    }
    if (fresh.length === 0) return;
    // Every new stream of the `open` in one reservation, all or nothing like the per-connection cap
    // (anonymous connections are not admitted, so not counted: see docs/dialects/fme.md).
    const room = await this.ctx.subscriptions.reserve(conn, fresh.length);
    if (conn.closed) return;
    if (room === 'over_cap') {
      this.ctx.metrics.rateLimited('user_subscriptions');
      this.error(conn, 'too_many_subscriptions', `at most ${this.ctx.subscriptions.maxPerUser} streams per user across the cluster`, 'open');
      return;
    }
    if (room === 'unavailable') {
      this.error(conn, 'unavailable', 'the session service is unavailable; retry', 'open');
      return;
    }
    const existing = [...conn.subs.keys()];
    const sorted = [...existing, ...fresh].sort();
    try {
      for (const name of fresh) {
        if (conn.closed) return;
        await this.ctx.hub.subscribe(conn, name, this.spec(conn, name, sorted), null, noAnswer);
      }
      for (const name of existing) {
        if (conn.closed) return;
        const spec = this.spec(conn, name, sorted);
        if (conn.subs.get(name)?.spec.render?.key !== spec.render!.key) await this.ctx.hub.subscribe(conn, name, spec, null, noAnswer);
      }
    } catch (err) {
      // The streams opened before the failure stay open (and counted); the rest go back to the user.
      const unmade = fresh.filter((name) => !conn.subs.has(name)).length;
      if (unmade > 0) void this.ctx.subscriptions.release(conn, unmade);
      this.failed(conn, err, 'open', 'internal_error');
    }
  }

  /**
   * Closes every open stream. The next frame of the connection waits until the user's count across the
   * cluster has room again (FME answers `close` with nothing).
   */
  private closeStreams(conn: FConn): Promise<void> | undefined {
    const names = [...conn.subs.keys()];
    if (names.length === 0) return undefined;
    for (const name of names) this.ctx.hub.unsubscribe(conn, name);
    return this.ctx.subscriptions.release(conn, names.length);
  }

  private async send(conn: FConn, data: string): Promise<void> {
    if (conn.subs.size === 0) {
      this.error(conn, 'not_subscribed', 'no stream is open: send {"ws_op":"open","ws_stream_ids":[...]} first', 'send');
      return;
    }
    const sorted = [...conn.subs.keys()].sort();
    const reqs: PublishRequest[] = [];
    let prior = ' ';
    for (const name of sorted) {
      const attrs: Record<string, string> = { [SENDER_ATTR]: conn.connId };
      if (prior !== ' ') attrs[PRIOR_ATTR] = prior;
      reqs.push({ channel: busChannel(DIALECT, conn.tenant, name), attrs, data });
      prior += `${name} `;
    }
    try {
      // Awaited: the next frame of this connection is published after this one, so order holds per stream.
      await this.ctx.publish(reqs);
    } catch (err) {
      this.failed(conn, err, 'send', 'unavailable');
    }
  }

  private async admin(conn: FConn, query: FmeAdminQuery): Promise<void> {
    const label = QUERY_LABEL[query];
    const metrics = this.ctx.admin.metrics;
    if (conn.identity === null || !conn.identity.roles.includes(ADMIN_ROLE)) {
      const anonymous = conn.identity === null;
      metrics.count(label, anonymous ? 'unauthorized' : 'forbidden');
      this.error(
        conn,
        anonymous ? 'not_authenticated' : 'forbidden',
        anonymous ? `admin queries need a token with the "${ADMIN_ROLE}" role: connect with ?access_token=<jwt>` : `admin queries need the "${ADMIN_ROLE}" role`,
        'admin',
      );
      return;
    }
    const bucket = (conn.state.adminBucket ??= new TokenBucket(this.opts.adminQueriesPerSec, this.opts.adminQueriesPerSec));
    if (!bucket.take()) {
      metrics.count(label, 'rate_limited');
      this.ctx.metrics.rateLimited('admin_queries');
      this.error(conn, 'rate_limited', `at most ${this.opts.adminQueriesPerSec} admin queries per second`, 'admin');
      return;
    }
    const cap = this.opts.channelInfoMax;
    try {
      const v = await this.ctx.admin.view({ tenant: conn.tenant, dialect: DIALECT, channel: null, members: query === 'getchannelinfo' ? cap : 0 }, label);
      if (conn.closed) return;
      if (query === 'getnumchannels') {
        const streams = v.channels.slice(0, cap).map((c) => ({ stream: streamOf(c.channel), numchannels: c.subscribers }));
        this.ctx.send(conn, renderFmeNumChannels(v.subscriptions, streams, v.truncated || v.channels.length > cap));
      } else {
        const channels = v.members.map((m) => ({ port: m.port, stream: streamOf(m.channel), host: m.host, writable: m.writable }));
        this.ctx.send(conn, renderFmeChannelInfo(v.memberCount, channels, channels.length < v.memberCount));
      }
    } catch (err) {
      this.failed(conn, err, 'admin', 'unavailable');
    }
  }

  /** Answers a request that failed: a registered error's own code, else `otherwise` (bus errors: unavailable). */
  private failed(conn: FConn, err: unknown, op: string, otherwise: ErrorCode): void {
    const code: ErrorCode = err instanceof SwitchboardError ? err.code : otherwise;
    if (code === 'internal_error') this.ctx.logger.error({ err, op }, 'fme request failed');
    else this.ctx.logger.warn({ err, op }, 'fme request failed: backend unavailable');
    this.error(conn, code, code === 'internal_error' ? 'internal error' : code === 'unavailable' ? 'the message bus is unavailable; retry' : (err as Error).message, op);
  }

  private error(conn: FConn, code: ErrorCode, message: string, op?: string): void {
    this.ctx.metrics.error(code);
    this.ctx.send(conn, renderFmeError(op === undefined ? { code, message } : { code, message, op }));
  }
}

/** FME answers `open` with nothing. */
function noAnswer(): void {
  // The seed defines no acknowledgement of `open`.
}

/** The stream id of an `fme` bus channel. */
function streamOf(channel: string): string {
  return fmeStreamId(splitBusChannel(channel)?.name ?? channel);
}
