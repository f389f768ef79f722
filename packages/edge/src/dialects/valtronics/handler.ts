/**
 * The `valtronics` dialect (seed 002) on the edge: auth with a JWT, subscribe/unsubscribe with the seed's
 * filters, ping/pong, batches, and updates carrying offset/epoch. Limits, request order and the session
 * path are the shared edge modules; this file is the dialect's own request handling.
 */
import { SwitchboardError, busChannel, type Envelope, type ErrorCode, type Filter, type StreamPosition } from '@switchboard/core';
import {
  ParsedDataCache,
  isLocalChannel,
  parseValtronicsFrame,
  parseValtronicsMessage,
  renderAuthFailed,
  renderAuthOk,
  renderError,
  renderPong,
  renderSubscribeOk,
  renderUnsubscribeOk,
  renderValtronicsUpdate,
  normalizeValtronicsPublish,
  isValtronicsChannel,
  type RequestId,
  type SubscribeCommand,
  type ValtronicsChannel,
  type ValtronicsCommand,
  type ValtronicsParseError,
  type ValtronicsParseOptions,
} from '@switchboard/protocol';
import type { StoredSubscription } from '@switchboard/session';
import { randomBytes } from 'node:crypto';
import type { Conn } from '../../conn.js';
import type { DialectContext, DialectHandler, Frame, NormalizedPublish, Refusal, UpgradeDecision, UpgradeRequest } from '../../dialect.js';
import type { GroupSpec, Renderer } from '../../hub.js';
import { valtronicsConfig } from './config.js';

/** The dialect's name: in channel names, metrics and config. */
export const DIALECT = 'valtronics';

/** The node-local `system` channel: never a bus channel (`~` is not allowed in one). */
const SYSTEM_CHANNEL = `${DIALECT}:~node:system`;

/** Per-connection state of a valtronics client. */
export interface ValtronicsState {
  /** The channel a specialised endpoint (`/ws/telemetry`, …) is scoped to; null on `/ws`. */
  readonly endpointChannel: ValtronicsChannel | null;
  authFailures: number;
}

type VConn = Conn<ValtronicsState>;

/**
 * Idle memory: a subscription's group keeps its spec, so what the spec points to is shared where it can
 * be — one empty filter, one render key per channel name, one renderer per channel name without a
 * projection — rather than allocated per subscription (a quiet node holds one group per subscription).
 */
const NO_FILTER: Filter = Object.freeze({});
const RENDER_KEYS: Readonly<Record<ValtronicsChannel, { readonly key: string; readonly context: ValtronicsChannel }>> = {
  telemetry: { key: 'telemetry', context: 'telemetry' },
  alerts: { key: 'alerts', context: 'alerts' },
  devices: { key: 'devices', context: 'devices' },
  system: { key: 'system', context: 'system' },
};

/** Route (relative to the prefix) → the channel the endpoint is scoped to. */
const ENDPOINTS: Readonly<Record<string, ValtronicsChannel | null>> = {
  '/': null,
  '/telemetry': 'telemetry',
  '/alerts': 'alerts',
  '/system': 'system',
  '/devices': 'devices',
};

/** The routes of the dialect (under `/ws` on the main port). */
export const VALTRONICS_ROUTES = Object.keys(ENDPOINTS).map((path) => ({ path }));

/** The wire filters of a subscription whose device list was narrowed (to record it in the session). */
function narrowedFilters(spec: GroupSpec, devices: readonly string[]): Record<string, unknown> {
  const filters: Record<string, unknown> = {};
  for (const [attr, values] of Object.entries(spec.filter)) {
    if (attr === 'device_id') filters.device_id = devices.map((d) => (/^-?(0|[1-9]\d{0,14})$/.test(d) ? Number(d) : d));
    else if (attr === 'status') filters.status_types = values;
    else filters[attr] = values;
  }
  if (spec.projection) filters.metrics = spec.projection;
  if (spec.frequencyMs > 0) filters.frequency = `${spec.frequencyMs}ms`;
  return filters;
}

/** The valtronics request handling of one edge. */
export class ValtronicsHandler implements DialectHandler<ValtronicsState> {
  private readonly opts: { maxBatch: number; maxAuthFailures: number; systemIntervalMs: number };
  private readonly cache = new ParsedDataCache();
  /** Renderers of subscriptions without a projection, by channel name (shared: they hold no state of their own). */
  private readonly plainRenderers = new Map<ValtronicsChannel, Renderer>();
  private systemSeq = 0;
  private readonly systemEpoch = randomBytes(6).toString('base64url');

  constructor(private readonly ctx: DialectContext) {
    const o = valtronicsConfig.of(ctx.config);
    this.opts = { maxBatch: o.maxBatch, maxAuthFailures: o.maxAuthFailures, systemIntervalMs: o.systemIntervalMs };
    ctx.hub.registerLocalChannel(SYSTEM_CHANNEL, () => this.systemEnvelope());
  }

  upgrade(req: UpgradeRequest): UpgradeDecision<ValtronicsState> {
    return { accept: true, state: { endpointChannel: ENDPOINTS[req.route] ?? null, authFailures: 0 } };
  }

  message(conn: VConn, frame: Frame): Promise<void> | undefined {
    if (frame.binary) {
      this.error(conn, { code: 'invalid_message', message: 'binary frames are not accepted; send JSON text' });
      return undefined;
    }
    const parsed = parseValtronicsFrame(frame.text, this.parseOptions(conn));
    if (!parsed.ok) {
      this.error(conn, parsed.error);
      return undefined;
    }
    const cmd = parsed.command;
    if (cmd.type !== 'batch') return this.execute(conn, cmd);
    const n = cmd.messages.length;
    // The frame already took one token; a batch pays for every message it carries.
    if (n > 1 && !this.ctx.takeRate(conn, n - 1)) {
      this.error(conn, { code: 'rate_limited', message: `at most ${this.ctx.limits.messagesPerSec} messages per second`, id: cmd.id });
      return undefined;
    }
    if (n > 1) this.ctx.metrics.messagesIn.inc(n - 1);
    // A batch's new subscriptions are reserved in one round trip (refused as a whole: then one by one).
    const adding = this.newChannels(conn, cmd.messages);
    if (adding < 2) return this.runBatch(conn, cmd.messages, 0);
    return this.ctx.subscriptions.prepay(conn, adding).then(async () => {
      try {
        await this.runBatch(conn, cmd.messages, 0);
      } finally {
        await this.ctx.subscriptions.refund(conn);
      }
    });
  }

  /** How many channels a batch of an authenticated connection subscribes to that it does not hold yet. */
  private newChannels(conn: VConn, messages: readonly unknown[]): number {
    if (!conn.identity) return 0;
    const channels = new Set<string>();
    for (const m of messages) {
      if (typeof m !== 'object' || m === null) continue;
      const { type, channel } = m as { type?: unknown; channel?: unknown };
      if (type === 'subscribe' && typeof channel === 'string' && !conn.subs.has(channel)) channels.add(channel);
    }
    return channels.size;
  }

  refuse(conn: VConn, refusal: Refusal): void {
    this.ctx.send(conn, renderError(refusal));
  }

  renderer(spec: GroupSpec): Renderer {
    const channel = spec.render!.context as ValtronicsChannel;
    const projection = spec.projection;
    const cache = this.cache;
    if (projection !== null) return (env: Envelope) => renderValtronicsUpdate(channel, env, projection, cache);
    let plain = this.plainRenderers.get(channel);
    if (plain === undefined) {
      plain = (env: Envelope) => renderValtronicsUpdate(channel, env, null, cache);
      this.plainRenderers.set(channel, plain);
    }
    return plain;
  }

  normalizePublish(name: string, attrs: Readonly<Record<string, string | number | boolean>>, data: unknown): NormalizedPublish {
    if (!isValtronicsChannel(name)) return { ok: false, code: 'unknown_channel', message: `unknown channel "${name.slice(0, 64)}"` };
    const n = normalizeValtronicsPublish(name, attrs, data, this.ctx.config.maxDepth);
    if (!n.ok) return n;
    return { ok: true, name, attrs: n.value.attrs, data: n.value.data };
  }

  private systemEnvelope(): Envelope {
    const now = Date.now();
    return {
      channel: SYSTEM_CHANNEL,
      offset: ++this.systemSeq,
      epoch: this.systemEpoch,
      ts: now,
      attrs: {},
      data: JSON.stringify({ metrics: this.ctx.sampler.sample(now), timestamp: new Date(now).toISOString() }),
    };
  }

  private parseOptions(conn: VConn): ValtronicsParseOptions {
    return { maxDepth: this.ctx.config.maxDepth, maxBatch: this.opts.maxBatch, endpointChannel: conn.state.endpointChannel };
  }

  private runBatch(conn: VConn, messages: readonly unknown[], from: number): Promise<void> | undefined {
    const opts = this.parseOptions(conn);
    for (let i = from; i < messages.length; i++) {
      if (conn.closed) return undefined;
      const parsed = parseValtronicsMessage(messages[i], opts, true);
      if (!parsed.ok) {
        this.error(conn, parsed.error);
        continue;
      }
      const pending = this.execute(conn, parsed.command);
      if (pending !== undefined) return pending.then(() => this.runBatch(conn, messages, i + 1));
    }
    return undefined;
  }

  private execute(conn: VConn, cmd: ValtronicsCommand): Promise<void> | undefined {
    switch (cmd.type) {
      case 'ping':
        this.ctx.send(conn, renderPong(cmd.id, cmd.timestamp, Date.now()));
        return undefined;
      case 'auth':
        return this.auth(conn, cmd);
      case 'subscribe':
        if (!conn.identity) return this.notAuthenticated(conn, cmd.id, 'subscribe', cmd.channel);
        return this.subscribe(conn, cmd);
      case 'unsubscribe':
        if (!conn.identity) return this.notAuthenticated(conn, cmd.id, 'unsubscribe', cmd.channel);
        return this.unsubscribe(conn, cmd.id, cmd.channel, cmd.deviceIds);
      case 'batch':
        this.error(conn, { code: 'invalid_message', message: 'a batch cannot contain a batch', id: cmd.id });
        return undefined;
    }
  }

  private notAuthenticated(conn: VConn, id: RequestId, requestType: string, channel: string): undefined {
    this.error(conn, { code: 'not_authenticated', message: 'send {"type":"auth","token":...} first', id, requestType, channel });
    return undefined;
  }

  private async auth(conn: VConn, cmd: Extract<ValtronicsCommand, { type: 'auth' }>): Promise<void> {
    const res = await this.ctx.gate.authenticate(conn, this.ctx.metrics, cmd.token, cmd.sessionId);
    if (!res.ok) {
      if (res.code === 'gone') return;
      this.authFailed(conn, cmd.id, res.code, res.message);
      if (res.code === 'invalid_token' || res.code === 'expired_token') {
        conn.state.authFailures++;
        if (conn.state.authFailures >= this.opts.maxAuthFailures) this.ctx.close(conn, 'auth_failed');
      }
      if (res.close) this.ctx.close(conn, res.close);
      return;
    }
    const identity = res.identity;
    if (res.refreshed) {
      this.ctx.send(conn, renderAuthOk({ id: cmd.id, userId: identity.userId, roles: identity.roles, expiresAt: identity.exp }));
      return;
    }
    const session = res.session;
    this.ctx.send(
      conn,
      renderAuthOk({
        id: cmd.id,
        userId: identity.userId,
        roles: identity.roles,
        expiresAt: identity.exp,
        sessionId: session.sessionId,
        resumed: session.resumed,
      }),
    );
    if (session.resumed) await this.restore(conn, session.subscriptions, cmd.recover);
  }

  /**
   * Gives a resumed session its subscriptions back, each answered with a `subscribe_response` and
   * followed by what it missed: from the client's own positions when it sent them (exactly once), else
   * from the session's last checkpoint (at least once).
   */
  private async restore(
    conn: VConn,
    subs: readonly StoredSubscription[],
    clientPositions: Readonly<Record<string, StreamPosition>> | null,
  ): Promise<void> {
    const opts = this.parseOptions(conn);
    const commands: SubscribeCommand[] = [];
    for (const stored of subs) {
      if (stored.dialect !== DIALECT) continue;
      const parsed = parseValtronicsMessage({ ...stored.request, type: 'subscribe' }, opts, true);
      if (!parsed.ok || parsed.command.type !== 'subscribe') {
        this.error(conn, parsed.ok ? { code: 'invalid_message', message: 'stored subscription is not a subscribe' } : parsed.error);
        this.ctx.gate.forgetSubscription(conn, stored.key);
        continue;
      }
      commands.push({ ...parsed.command, recover: clientPositions?.[stored.key] ?? stored.position ?? null });
    }
    // Counted against the user's cap but never refused by it (a resume keeps its subscriptions); all in
    // one round trip. Unavailable: each is refused, and stays in the session for the next resume.
    const adding = new Set(commands.map((c) => c.channel).filter((c) => !conn.subs.has(c))).size;
    const paid = await this.ctx.subscriptions.prepay(conn, adding, true);
    try {
      for (const cmd of commands) {
        if (conn.closed) return;
        if (paid === 'ok') await this.subscribe(conn, cmd, true);
        else this.error(conn, { code: 'unavailable', message: 'the session service is unavailable: not restored; subscribe again', id: cmd.id, requestType: 'subscribe', channel: cmd.channel });
      }
    } finally {
      await this.ctx.subscriptions.refund(conn);
    }
  }

  /** Subscribes (or changes a subscription's filters); `restoring`: a resumed session's, never refused by the per-user cap. */
  private async subscribe(conn: VConn, cmd: SubscribeCommand, restoring = false): Promise<void> {
    const max = this.ctx.limits.maxSubscriptionsPerConnection;
    const adding = !conn.subs.has(cmd.channel);
    if (adding && conn.subs.size >= max) {
      this.error(conn, { code: 'too_many_subscriptions', message: `at most ${max} subscriptions per connection`, id: cmd.id, requestType: 'subscribe', channel: cmd.channel });
      return;
    }
    const denial = this.denial(conn, cmd);
    if (denial) {
      this.error(conn, { code: 'forbidden', message: denial, id: cmd.id, requestType: 'subscribe', channel: cmd.channel });
      return;
    }
    if (adding) {
      const room = await this.ctx.subscriptions.reserve(conn, 1, restoring);
      if (conn.closed) return;
      if (room !== 'ok') {
        if (room === 'over_cap') this.ctx.metrics.rateLimited('user_subscriptions');
        this.error(conn, {
          ...(room === 'over_cap'
            ? { code: 'too_many_subscriptions', message: `at most ${this.ctx.subscriptions.maxPerUser} subscriptions per user across the cluster` }
            : { code: 'unavailable', message: 'the session service is unavailable; retry' }),
          id: cmd.id,
          requestType: 'subscribe',
          channel: cmd.channel,
        });
        return;
      }
    }
    const local = isLocalChannel(cmd.channel);
    let frequencyMs = cmd.frequencyMs ?? 0;
    // The system channel is sampled, never pushed: "real-time" samples every second.
    if (local) frequencyMs = cmd.frequencyMs === null ? this.opts.systemIntervalMs : cmd.frequencyMs === 0 ? 1000 : cmd.frequencyMs;
    const spec: GroupSpec = {
      dialect: DIALECT,
      channel: local ? SYSTEM_CHANNEL : busChannel(DIALECT, conn.tenant, cmd.channel),
      filter: Object.keys(cmd.filter).length === 0 ? NO_FILTER : cmd.filter,
      projection: cmd.projection,
      frequencyMs,
      conflateBy: local ? null : 'device_id',
      render: RENDER_KEYS[cmd.channel],
    };
    let subscribedAt: StreamPosition | null | undefined;
    try {
      await this.ctx.hub.subscribe(conn, cmd.channel, spec, cmd.recover, (outcome) => {
        subscribedAt = outcome.position;
        this.sendCorked(
          conn,
          renderSubscribeOk({
            id: cmd.id,
            channel: cmd.channel,
            filters: cmd.echo,
            position: outcome.position,
            ...(outcome.recovered !== undefined ? { recovered: outcome.recovered, replayed: outcome.replayed } : {}),
          }),
        );
      });
    } catch (err) {
      if (adding && !conn.subs.has(cmd.channel)) void this.ctx.subscriptions.release(conn, 1);
      if (conn.closed) return;
      if (err instanceof SwitchboardError) {
        this.error(conn, { code: err.code, message: err.message, id: cmd.id, requestType: 'subscribe', channel: cmd.channel });
        return;
      }
      throw err;
    }
    // Registered with its starting position, so a resume replays from here even before a checkpoint.
    if (subscribedAt !== undefined && !local) this.ctx.gate.saveSubscription(conn, cmd.channel, { channel: cmd.channel, filters: cmd.echo }, subscribedAt);
  }

  /**
   * Why this connection may not subscribe (checked on every subscribe, a resumed session's included), or
   * null: the channel policy by role, then the token's `devices` claim — a token limited to devices reads
   * a device channel only with a `device_id` filter within them.
   */
  private denial(conn: VConn, cmd: SubscribeCommand): string | null {
    if (!this.ctx.authorize(conn, cmd.channel)) return `the roles of this connection may not subscribe to "${cmd.channel}"`;
    const allowed = conn.identity?.devices;
    if (allowed === undefined || isLocalChannel(cmd.channel)) return null;
    const wanted = cmd.filter.device_id;
    const outside = wanted ? wanted.filter((d) => !allowed.includes(d)) : null;
    if (outside !== null && outside.length === 0) return null;
    this.ctx.denied('device');
    return outside === null
      ? 'this token may read only some devices: subscribe with a "device_id" filter'
      : `this token may not read device ${outside.slice(0, 10).join(', ')}`;
  }

  private unsubscribe(conn: VConn, id: RequestId, channel: ValtronicsChannel, deviceIds: readonly string[] | null): Promise<void> | undefined {
    const group = conn.subs.get(channel);
    const ctx = { id, requestType: 'unsubscribe', channel };
    if (!group) {
      this.error(conn, { code: 'not_subscribed', message: `not subscribed to "${channel}"`, ...ctx });
      return undefined;
    }
    if (deviceIds === null) return this.unsubscribeAll(conn, id, channel);
    const current = group.spec.filter.device_id;
    if (!current) {
      this.error(conn, { code: 'not_subscribed', message: `the "${channel}" subscription covers every device; unsubscribe the channel instead`, ...ctx });
      return undefined;
    }
    const drop = new Set(deviceIds);
    const missing = deviceIds.filter((d) => !current.includes(d));
    if (missing.length > 0) {
      this.error(conn, { code: 'not_subscribed', message: `not subscribed to device ${missing.join(', ')}`, ...ctx });
      return undefined;
    }
    const remaining = current.filter((d) => !drop.has(d));
    if (remaining.length === 0) return this.unsubscribeAll(conn, id, channel);
    const filter: Filter = { ...group.spec.filter, device_id: remaining };
    return this.ctx.hub.subscribe(conn, channel, { ...group.spec, filter }, null, (outcome) => {
      this.sendCorked(conn, renderUnsubscribeOk(id, channel, remaining));
      this.ctx.gate.saveSubscription(conn, channel, { channel, filters: narrowedFilters(group.spec, remaining) }, outcome.position);
    });
  }

  /** Drops a subscription; answered once the user's count across the cluster has room again. */
  private async unsubscribeAll(conn: VConn, id: RequestId, channel: ValtronicsChannel): Promise<void> {
    this.ctx.hub.unsubscribe(conn, channel);
    this.ctx.gate.forgetSubscription(conn, channel);
    await this.ctx.subscriptions.release(conn, 1);
    this.ctx.send(conn, renderUnsubscribeOk(id, channel));
  }

  private authFailed(conn: VConn, id: RequestId, code: ErrorCode, message: string): void {
    this.ctx.metrics.error(code);
    this.ctx.send(conn, renderAuthFailed(id, code, message));
  }

  private error(conn: VConn, err: ValtronicsParseError): void {
    this.ctx.metrics.error(err.code);
    this.ctx.send(conn, renderError(err));
  }

  /** Sends inside an already corked section (the hub's subscribe commit). */
  private sendCorked(conn: VConn, text: string): void {
    if (conn.closed) return;
    this.ctx.metrics.messagesOut.inc();
    conn.ws.send(text, false, false);
  }
}
