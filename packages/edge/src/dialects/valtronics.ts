/**
 * The `valtronics` dialect (seed 002) on the edge: auth with a JWT, subscribe/unsubscribe with the
 * seed's filters, ping/pong, batches, the seed's rate limits, and updates carrying offset/epoch.
 * Requests on one connection are handled strictly in order, even when one needs asynchronous work.
 */
import {
  SwitchboardError,
  TokenBucket,
  type Config,
  type ErrorCode,
  type Filter,
  type Logger,
} from '@switchboard/core';
import {
  VALTRONICS_ENDPOINTS,
  isLocalChannel,
  parseValtronicsFrame,
  parseValtronicsMessage,
  renderAuthFailed,
  renderAuthOk,
  renderError,
  renderPong,
  renderSubscribeOk,
  renderUnsubscribeOk,
  type SubscribeCommand,
  type ValtronicsChannel,
  type ValtronicsCommand,
  type ValtronicsParseError,
  type ValtronicsParseOptions,
} from '@switchboard/protocol';
import type { SessionApi, StoredSubscription, TokenVerifier } from '@switchboard/session';
import type { BaseConn, ConnectionRegistry } from '../connection.js';
import type { GroupSpec, Hub } from '../hub.js';
import type { EdgeMetrics } from '../metrics.js';
import type { CloseFn } from '../server.js';

/** Connection state of a valtronics client. */
export interface ValtronicsConn extends BaseConn {
  /** The channel a specialised endpoint (`/ws/telemetry`, …) is scoped to; null on `/ws`. */
  readonly endpointChannel: ValtronicsChannel | null;
  readonly bucket: TokenBucket;
  authFailures: number;
  /** Rate-limited messages in a row. */
  rateStrikes: number;
  /** Frames waiting while an asynchronous request runs; null when idle. */
  queue: string[] | null;
}

/** What the handler needs from the node. */
export interface ValtronicsDeps {
  readonly config: Config;
  readonly hub: Hub;
  readonly verifier: TokenVerifier;
  readonly session: SessionApi;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  readonly conns: ConnectionRegistry;
  readonly close: CloseFn;
}

const DIALECT = 'valtronics';

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
/** Frames queued behind a slow request before the connection counts as abusive. */
const MAX_QUEUED_FRAMES = 1000;

/** The valtronics request handler. */
export class ValtronicsHandler {
  readonly dialect = DIALECT;
  /** Paths this dialect is mounted on. */
  readonly paths = Object.keys(VALTRONICS_ENDPOINTS);
  private readonly cfg: Config;
  private readonly log: Logger;
  private readonly mIn;
  private readonly mOut;

  constructor(private readonly deps: ValtronicsDeps) {
    this.cfg = deps.config;
    this.log = deps.logger.child({ dialect: DIALECT });
    this.mIn = deps.metrics.messagesIn.labels(DIALECT);
    this.mOut = deps.metrics.messagesOut.labels(DIALECT);
  }

  /** Connection state for an upgrade on `path` (the upgrade handler copies it into the socket). */
  newConn(path: string, ip: string, connId: string): Omit<ValtronicsConn, 'ws'> {
    return {
      connId,
      dialect: DIALECT,
      closed: false,
      subs: new Map(),
      ip,
      openedAtMs: Date.now(),
      identity: null,
      admitted: false,
      sessionId: null,
      endpointChannel: VALTRONICS_ENDPOINTS[path] ?? null,
      bucket: new TokenBucket(this.cfg.messagesPerSec, this.cfg.messagesBurst),
      authFailures: 0,
      rateStrikes: 0,
      queue: null,
    };
  }

  /** A frame arrived. The ArrayBuffer is only valid during this call, so it is copied first. */
  onMessage(conn: ValtronicsConn, data: ArrayBuffer, isBinary: boolean): void {
    this.mIn.inc();
    if (!conn.bucket.take(1)) {
      this.rateLimited(conn, undefined);
      return;
    }
    conn.rateStrikes = 0;
    if (data.byteLength > this.cfg.valtronicsMaxMessageBytes) {
      this.sendError(conn, {
        code: 'message_too_large',
        message: `message is ${data.byteLength} bytes; the limit is ${this.cfg.valtronicsMaxMessageBytes}`,
      });
      return;
    }
    if (isBinary) {
      this.sendError(conn, { code: 'invalid_message', message: 'binary frames are not accepted; send JSON text' });
      return;
    }
    const text = Buffer.from(data).toString('utf8');
    if (conn.queue !== null) {
      if (conn.queue.length >= MAX_QUEUED_FRAMES) {
        this.deps.metrics.rateLimitRejections.inc({ dialect: DIALECT, rule: 'queue' });
        this.deps.close(conn, 'rate_limit_abuse');
        return;
      }
      conn.queue.push(text);
      return;
    }
    this.run(conn, this.handleFrame(conn, text));
  }

  /** The connection closed: release what it held. */
  onClose(conn: ValtronicsConn): void {
    conn.queue = null;
  }

  private run(conn: ValtronicsConn, pending: Promise<void> | undefined): void {
    if (pending === undefined) return;
    conn.queue = [];
    pending.then(
      () => this.drain(conn),
      (err: unknown) => this.fail(conn, err),
    );
  }

  /** Runs queued frames one after another, each to completion, keeping request order. */
  private async drain(conn: ValtronicsConn): Promise<void> {
    try {
      while (!conn.closed && conn.queue !== null && conn.queue.length > 0) {
        const next = this.handleFrame(conn, conn.queue.shift()!);
        if (next !== undefined) await next;
      }
    } catch (err) {
      this.fail(conn, err);
    }
    conn.queue = null;
  }

  private fail(conn: ValtronicsConn, err: unknown): void {
    this.log.error({ err, conn: conn.connId }, 'request failed');
    conn.queue = null;
    this.sendError(conn, { code: 'internal_error', message: 'internal error' });
  }

  private parseOptions(conn: ValtronicsConn): ValtronicsParseOptions {
    return { maxDepth: this.cfg.maxDepth, maxBatch: this.cfg.maxBatch, endpointChannel: conn.endpointChannel };
  }

  private handleFrame(conn: ValtronicsConn, text: string): Promise<void> | undefined {
    const parsed = parseValtronicsFrame(text, this.parseOptions(conn));
    if (!parsed.ok) {
      this.sendError(conn, parsed.error);
      return undefined;
    }
    const cmd = parsed.command;
    if (cmd.type !== 'batch') return this.execute(conn, cmd);
    const n = cmd.messages.length;
    // The frame already took one token; a batch pays for every message it carries.
    if (n > 1 && !conn.bucket.take(n - 1)) {
      this.rateLimited(conn, cmd.id);
      return undefined;
    }
    if (n > 1) this.mIn.inc(n - 1);
    return this.runBatch(conn, cmd.messages, 0);
  }

  private runBatch(conn: ValtronicsConn, messages: readonly unknown[], from: number): Promise<void> | undefined {
    const opts = this.parseOptions(conn);
    for (let i = from; i < messages.length; i++) {
      if (conn.closed) return undefined;
      const parsed = parseValtronicsMessage(messages[i], opts, true);
      if (!parsed.ok) {
        this.sendError(conn, parsed.error);
        continue;
      }
      const pending = this.execute(conn, parsed.command);
      if (pending !== undefined) return pending.then(() => this.runBatch(conn, messages, i + 1));
    }
    return undefined;
  }

  private execute(conn: ValtronicsConn, cmd: ValtronicsCommand): Promise<void> | undefined {
    switch (cmd.type) {
      case 'ping':
        this.send(conn, renderPong(cmd.id, cmd.timestamp, Date.now()));
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
        this.sendError(conn, { code: 'invalid_message', message: 'a batch cannot contain a batch', id: cmd.id });
        return undefined;
    }
  }

  private notAuthenticated(conn: ValtronicsConn, id: string | number | undefined, requestType: string, channel: string): undefined {
    this.sendError(conn, { code: 'not_authenticated', message: 'send {"type":"auth","token":...} first', id, requestType, channel });
    return undefined;
  }

  private async auth(conn: ValtronicsConn, cmd: Extract<ValtronicsCommand, { type: 'auth' }>): Promise<void> {
    const verified = await this.deps.verifier.verify(cmd.token);
    if (conn.closed) return;
    if (!verified.ok) {
      conn.authFailures++;
      this.authFailed(conn, cmd.id, verified.code, verified.message);
      if (conn.authFailures >= this.cfg.maxAuthFailures) this.deps.close(conn, 'auth_failed');
      return;
    }
    const identity = verified.identity;
    if (conn.identity) {
      // A refreshed token on a live connection: same subject only.
      if (conn.identity.userId !== identity.userId) {
        this.authFailed(conn, cmd.id, 'user_mismatch', 'the token names another user than this connection');
        return;
      }
      conn.identity = identity;
      this.send(conn, renderAuthOk({ id: cmd.id, userId: identity.userId, roles: identity.roles, expiresAt: identity.exp }));
      return;
    }
    let admitted;
    try {
      admitted = await this.deps.session.admit({
        userId: identity.userId,
        connId: conn.connId,
        nodeId: this.deps.conns.nodeId,
        ip: conn.ip,
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'admission unavailable');
      if (!conn.closed) this.authFailed(conn, cmd.id, 'unavailable', 'the session service is unavailable; retry');
      return;
    }
    if (!admitted.ok) {
      this.deps.metrics.rateLimitRejections.inc({ dialect: DIALECT, rule: admitted.rule });
      if (conn.closed) return;
      this.authFailed(conn, cmd.id, admitted.code, admitted.message);
      this.deps.close(conn, 'admission_refused');
      return;
    }
    if (conn.closed) {
      await this.deps.session.release(conn.connId);
      return;
    }
    conn.admitted = true;
    // The client may name a session to resume; a token issued at login names its own.
    const wanted = cmd.sessionId ?? identity.sessionId;
    let session;
    try {
      session = await this.deps.session.openSession({
        userId: identity.userId,
        roles: identity.roles,
        ...(identity.tenant !== undefined ? { tenant: identity.tenant } : {}),
        ...(wanted !== undefined ? { sessionId: wanted } : {}),
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'session service unavailable');
      if (!conn.closed) this.authFailed(conn, cmd.id, 'unavailable', 'the session service is unavailable; retry');
      this.deps.close(conn, 'internal_error');
      return;
    }
    if (conn.closed) return;
    conn.identity = identity;
    conn.sessionId = session.sessionId;
    this.deps.conns.unauthenticated.delete(conn);
    this.send(
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
    conn: ValtronicsConn,
    subs: readonly StoredSubscription[],
    clientPositions: Readonly<Record<string, { epoch: string; offset: number }>> | null,
  ): Promise<void> {
    const opts = this.parseOptions(conn);
    for (const stored of subs) {
      if (conn.closed) return;
      if (stored.dialect !== DIALECT) continue;
      const parsed = parseValtronicsMessage({ ...stored.request, type: 'subscribe' }, opts, true);
      if (!parsed.ok || parsed.command.type !== 'subscribe') {
        this.sendError(conn, parsed.ok ? { code: 'invalid_message', message: 'stored subscription is not a subscribe' } : parsed.error);
        this.deps.session.removeSubscription(conn.sessionId!, stored.channel).catch(() => {});
        continue;
      }
      const recover = clientPositions?.[stored.channel] ?? stored.position ?? null;
      await this.subscribe(conn, { ...parsed.command, recover });
    }
  }

  private async subscribe(conn: ValtronicsConn, cmd: SubscribeCommand): Promise<void> {
    if (!conn.subs.has(cmd.channel) && conn.subs.size >= this.cfg.maxSubscriptionsPerConnection) {
      this.sendError(conn, {
        code: 'too_many_subscriptions',
        message: `at most ${this.cfg.maxSubscriptionsPerConnection} subscriptions per connection`,
        id: cmd.id,
        requestType: 'subscribe',
        channel: cmd.channel,
      });
      return;
    }
    const local = isLocalChannel(cmd.channel);
    let frequencyMs = cmd.frequencyMs ?? 0;
    // The system channel is sampled, never pushed: "real-time" samples every second.
    if (local) frequencyMs = cmd.frequencyMs === null ? this.cfg.systemIntervalMs : cmd.frequencyMs === 0 ? 1000 : cmd.frequencyMs;
    const spec: GroupSpec = {
      dialect: DIALECT,
      channel: cmd.channel,
      filter: cmd.filter,
      projection: cmd.projection,
      frequencyMs,
      conflateBy: local ? null : 'device_id',
    };
    let subscribedAt: { epoch: string; offset: number } | null | undefined;
    try {
      await this.deps.hub.subscribe(conn, spec, cmd.recover, (outcome) => {
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
      if (conn.closed) return;
      if (err instanceof SwitchboardError) {
        this.sendError(conn, { code: err.code, message: err.message, id: cmd.id, requestType: 'subscribe', channel: cmd.channel });
        return;
      }
      throw err;
    }
    if (subscribedAt !== undefined && conn.sessionId !== null && !local) {
      // Registered with its starting position, so a resume replays from here even before a checkpoint.
      this.saveSubscription(conn, cmd.channel, cmd.echo, subscribedAt);
    }
  }

  private saveSubscription(conn: ValtronicsConn, channel: string, filters: Record<string, unknown>, position: { epoch: string; offset: number } | null): void {
    const sub: StoredSubscription = {
      channel,
      dialect: DIALECT,
      request: { channel, filters },
      ...(position ? { position } : {}),
    };
    this.deps.session.saveSubscription(conn.sessionId!, sub).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'subscription not recorded in the session'));
  }

  private forgetSubscription(conn: ValtronicsConn, channel: string): void {
    if (conn.sessionId === null) return;
    this.deps.session.removeSubscription(conn.sessionId, channel).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'subscription not removed from the session'));
  }

  private unsubscribe(
    conn: ValtronicsConn,
    id: string | number | undefined,
    channel: ValtronicsChannel,
    deviceIds: readonly string[] | null,
  ): Promise<void> | undefined {
    const group = conn.subs.get(channel);
    const ctx = { id, requestType: 'unsubscribe', channel };
    if (!group) {
      this.sendError(conn, { code: 'not_subscribed', message: `not subscribed to "${channel}"`, ...ctx });
      return undefined;
    }
    if (deviceIds === null) {
      this.deps.hub.unsubscribe(conn, channel);
      this.forgetSubscription(conn, channel);
      this.send(conn, renderUnsubscribeOk(id, channel));
      return undefined;
    }
    const current = group.spec.filter.device_id;
    if (!current) {
      this.sendError(conn, {
        code: 'not_subscribed',
        message: `the "${channel}" subscription covers every device; unsubscribe the channel instead`,
        ...ctx,
      });
      return undefined;
    }
    const drop = new Set(deviceIds);
    const missing = deviceIds.filter((d) => !current.includes(d));
    if (missing.length > 0) {
      this.sendError(conn, { code: 'not_subscribed', message: `not subscribed to device ${missing.join(', ')}`, ...ctx });
      return undefined;
    }
    const remaining = current.filter((d) => !drop.has(d));
    if (remaining.length === 0) {
      this.deps.hub.unsubscribe(conn, channel);
      this.forgetSubscription(conn, channel);
      this.send(conn, renderUnsubscribeOk(id, channel));
      return undefined;
    }
    const filter: Filter = { ...group.spec.filter, device_id: remaining };
    return this.deps.hub.subscribe(conn, { ...group.spec, filter }, null, (outcome) => {
      this.sendCorked(conn, renderUnsubscribeOk(id, channel, remaining));
      if (conn.sessionId !== null) this.saveSubscription(conn, channel, narrowedFilters(group.spec, remaining), outcome.position);
    });
  }

  private rateLimited(conn: ValtronicsConn, id: string | number | undefined): void {
    conn.rateStrikes++;
    this.deps.metrics.rateLimitRejections.inc({ dialect: DIALECT, rule: 'messages_per_sec' });
    this.sendError(conn, { code: 'rate_limited', message: `at most ${this.cfg.messagesPerSec} messages per second`, id });
    if (this.cfg.rateLimitCloseAfter > 0 && conn.rateStrikes >= this.cfg.rateLimitCloseAfter) {
      this.deps.close(conn, 'rate_limit_abuse');
    }
  }

  private authFailed(conn: ValtronicsConn, id: string | number | undefined, code: ErrorCode, message: string): void {
    this.deps.metrics.errors.inc({ dialect: DIALECT, code });
    this.send(conn, renderAuthFailed(id, code, message));
  }

  private sendError(conn: ValtronicsConn, err: ValtronicsParseError): void {
    this.deps.metrics.errors.inc({ dialect: DIALECT, code: err.code });
    this.send(conn, renderError(err));
  }

  /** Sends a reply; corks, since replies also go out after an `await`, outside any uWS callback. */
  private send(conn: ValtronicsConn, text: string): void {
    if (conn.closed) return;
    this.mOut.inc();
    const ws = conn.ws;
    ws.cork(() => ws.send(text, false, false));
  }

  /** Sends inside an already corked section (the hub's subscribe commit). */
  private sendCorked(conn: ValtronicsConn, text: string): void {
    if (conn.closed) return;
    this.mOut.inc();
    conn.ws.send(text, false, false);
  }
}
