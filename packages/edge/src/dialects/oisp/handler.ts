/**
 * The `oisp` dialect (seed 003) on the edge: a device registers with `{"type":"device","deviceId",
 * "deviceToken"}` (an RS256 device token whose `sub` is the device; its `accountId` claim is the tenant)
 * and then receives actuations as code 1024 frames; a backend sends actuations through the publish API
 * or the original's WebSocket form `{"type":"actuation","credentials","body"}`.
 *
 * One channel per device, `oisp:<accountId>:<deviceId>`, and one live connection per device in the
 * cluster: a registration closes every older connection of the device, on any edge, with 1000 (the
 * control plane's close by index key).
 *
 * Offline delivery: when a registered connection closes, its edge publishes a mark on the device's
 * channel (attr `~mark`, never rendered) naming the last position dispatched to it. A registration reads
 * the channel's recent history first: it replays from the newest mark, or — no mark: a device new here or
 * whose edge died — everything published within `OISP_ACTUATION_TTL_SEC`; the renderer drops what is older
 * than that. At least once and in order, with no state kept anywhere for a device but its channel.
 */
import { DEFAULT_TENANT, busChannel, wireCode, OISP_WIRE_CODES, type Envelope, type ErrorCode, type StreamPosition } from '@switchboard/core';
import {
  OISP_ACTUATION_SENT,
  OISP_MESSAGES,
  OISP_PONG,
  OISP_SUBSCRIBED,
  normalizeOispPublish,
  oispDeviceChannelName,
  parseOispFrame,
  renderOispActuation,
  renderOispResponse,
  type OispCommand,
} from '@switchboard/protocol';
import { createDeviceTokenVerifier, type DeviceVerifyResult } from '@switchboard/session';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Conn } from '../../conn.js';
import type { DialectContext, DialectHandler, Frame, NormalizedPublish, Refusal, UpgradeDecision } from '../../dialect.js';
import type { Group, GroupSpec, Renderer } from '../../hub.js';
import { oispConfig } from './config.js';

/** The dialect's name: in channel names, metrics and config. */
export const DIALECT = 'oisp';

/** Attr of the mark an edge leaves on a device's channel when the device's connection closes. */
export const MARK_ATTR = '~mark';

/** The subscription id of a device's channel (a connection has at most this one). */
const DEVICE_SUB = 'device';

/** How far back a registration looks for a mark (messages of the device's channel). */
const MARK_SCAN = 256;

/** Per-connection state: small, since devices are many and mostly idle. */
export interface OispState {
  /** The registered device; null before registration (and on a backend's actuation connection). */
  deviceId: string | null;
  /** The device's subscription, kept to read the last dispatched position when the connection closes. */
  group: Group | null;
  /** Whether service-account credentials were accepted on this connection (it needs no registration). */
  service: boolean;
}

type OConn = Conn<OispState>;

/** The connection index key of a device: registrations close every other connection under it. */
const deviceKey = (tenant: string, deviceId: string) => `oisp:${tenant}/${deviceId}`;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The position a mark names, when it is one of `epoch`. */
function markOffset(env: Envelope, epoch: string): number | null {
  try {
    const m = JSON.parse(env.data) as { e?: unknown; o?: unknown };
    return m.e === epoch && typeof m.o === 'number' && Number.isSafeInteger(m.o) && m.o >= 0 && m.o <= env.offset ? m.o : null;
  } catch {
    return null;
  }
}

/** The oisp request handling of one edge. */
export class OispHandler implements DialectHandler<OispState> {
  private readonly verifyDevice: ((token: string, deviceId: string) => Promise<DeviceVerifyResult>) | null;
  private readonly ttlMs: number;
  private readonly service: { readonly user: Buffer; readonly password: Buffer } | null;
  /** One renderer for every device's group: no closure per device. */
  private readonly renderActuation: Renderer;

  constructor(private readonly ctx: DialectContext) {
    const o = oispConfig.of(ctx.config);
    // A key file that cannot be read or is not RSA stops the start (createDeviceTokenVerifier throws).
    this.verifyDevice = o.devicePublicKeyFile !== undefined ? createDeviceTokenVerifier(o.devicePublicKeyFile) : null;
    if (this.verifyDevice === null) ctx.logger.warn('OISP_DEVICE_PUBLIC_KEY_FILE is not set: oisp device registrations are answered 500');
    this.ttlMs = o.actuationTtlSec * 1000;
    this.service =
      o.serviceUsername !== undefined && o.servicePassword !== undefined ? { user: digest(o.serviceUsername), password: digest(o.servicePassword) } : null;
    const ttlMs = this.ttlMs;
    this.renderActuation = (env: Envelope) => {
      if (env.attrs[MARK_ATTR] !== undefined) return null;
      // Only replayed messages can be this old: what the device missed longer ago than the TTL is dropped.
      if (ttlMs > 0 && env.ts < Date.now() - ttlMs) return null;
      return renderOispActuation(env.data);
    };
  }

  upgrade(): UpgradeDecision<OispState> {
    return { accept: true, state: { deviceId: null, group: null, service: false } };
  }

  message(conn: OConn, frame: Frame): Promise<void> | undefined {
    if (frame.binary) {
      this.wrongFormat(conn, 'invalid_message');
      return undefined;
    }
    const parsed = parseOispFrame(frame.text, this.ctx.config.maxDepth);
    if (!parsed.ok) {
      this.wrongFormat(conn, parsed.error.code);
      return undefined;
    }
    const cmd = parsed.command;
    switch (cmd.type) {
      case 'device':
        return this.register(conn, cmd);
      case 'ping':
        if (conn.state.deviceId === null && !conn.state.service) this.answer(conn, 'not_authenticated', 'Device not registered');
        else this.ctx.send(conn, OISP_PONG);
        return undefined;
      case 'actuation':
        return this.actuate(conn, cmd);
    }
  }

  refuse(conn: OConn, refusal: Refusal): void {
    this.answer(conn, refusal.code, refusal.code === 'internal_error' ? OISP_MESSAGES.internal : refusal.message);
  }

  close(conn: OConn): void {
    const group = conn.state.group;
    if (group === null) return;
    conn.state.group = null;
    const last = group.channel.last;
    if (last === null) return;
    // The mark: where a later registration of the device starts replaying (see the file comment).
    const data = `{"e":${JSON.stringify(last.epoch)},"o":${last.offset}}`;
    this.ctx.publish([{ channel: group.spec.channel, attrs: { [MARK_ATTR]: 1 }, data }]).catch((err: unknown) =>
      this.ctx.logger.warn({ err, channel: group.spec.channel }, 'oisp mark not published; the next registration replays the TTL window'),
    );
  }

  renderer(): Renderer {
    return this.renderActuation;
  }

  normalizePublish(name: string, _attrs: Readonly<Record<string, string | number | boolean>>, data: unknown): NormalizedPublish {
    const n = normalizeOispPublish(name, data, this.ctx.config.maxDepth);
    return n.ok ? { ok: true, name: n.name, attrs: {}, data: n.data } : n;
  }

  private async register(conn: OConn, cmd: Extract<OispCommand, { type: 'device' }>): Promise<void> {
    const current = conn.state.deviceId;
    if (current !== null && current !== cmd.deviceId) {
      // One connection is one device: a token of another device is refused like a bad one.
      this.invalidToken(conn);
      return;
    }
    if (this.verifyDevice === null) {
      this.answer(conn, 'internal_error', OISP_MESSAGES.internal);
      return;
    }
    const v = await this.verifyDevice(cmd.deviceToken, cmd.deviceId);
    if (conn.closed) return;
    if (!v.ok) {
      this.invalidToken(conn);
      return;
    }
    const tenant = v.accountId ?? DEFAULT_TENANT;
    if (current !== null) {
      // The same device again on its connection: a fresh token, nothing else changes.
      if (tenant !== conn.tenant) this.invalidToken(conn);
      else this.ctx.send(conn, OISP_SUBSCRIBED);
      return;
    }
    if (!(await this.admit(conn, tenant, cmd.deviceId))) return;
    conn.identity = { userId: cmd.deviceId, roles: [], tenant };
    conn.tenant = tenant;
    conn.state.deviceId = cmd.deviceId;
    this.ctx.conns.authenticated(conn);
    const key = deviceKey(tenant, cmd.deviceId);
    this.ctx.conns.index(conn, key);
    try {
      const channel = busChannel(DIALECT, tenant, oispDeviceChannelName(cmd.deviceId));
      await this.ctx.cluster.closeWhere(key, 'normal', conn.connId);
      if (conn.closed) return;
      const recover = await this.recoveryPoint(channel);
      if (conn.closed) return;
      const spec: GroupSpec = { dialect: DIALECT, channel, filter: {}, projection: null, frequencyMs: 0, conflateBy: null };
      await this.ctx.hub.subscribe(conn, DEVICE_SUB, spec, recover, () => {
        // Inside the hub's corked commit, before any replayed actuation.
        this.ctx.metrics.messagesOut.inc();
        conn.ws.send(OISP_SUBSCRIBED, false, false);
      });
      conn.state.group = conn.subs.get(DEVICE_SUB) ?? null;
    } catch (err) {
      if (conn.closed) return;
      this.ctx.logger.warn({ err }, 'oisp registration failed');
      this.answer(conn, 'unavailable', OISP_MESSAGES.internal);
      this.ctx.close(conn, 'internal_error');
    }
  }

  /** Counts the device's connection against the cluster-wide limits; false when refused (answered, closed). */
  private async admit(conn: OConn, tenant: string, deviceId: string): Promise<boolean> {
    let res;
    try {
      res = await this.ctx.session.admit({ userId: deviceKey(tenant, deviceId), connId: conn.connId, nodeId: this.ctx.conns.nodeId, ip: conn.ip });
    } catch (err) {
      this.ctx.logger.warn({ err }, 'oisp admission unavailable');
      if (conn.closed) return false;
      this.answer(conn, 'unavailable', OISP_MESSAGES.internal);
      this.ctx.close(conn, 'internal_error');
      return false;
    }
    if (!res.ok) {
      this.ctx.metrics.rateLimited(res.rule);
      if (conn.closed) return false;
      this.answer(conn, res.code, res.message);
      this.ctx.close(conn, 'admission_refused');
      return false;
    }
    if (conn.closed) {
      this.ctx.session.release(conn.connId).catch((err: unknown) => this.ctx.logger.warn({ err }, 'admission release failed'));
      return false;
    }
    // Released by the edge when the connection closes.
    conn.admitted = true;
    return true;
  }

  /**
   * Where the device's subscription starts: after the newest mark's position, else before the first
   * message within the TTL, else at the channel's top as read here — never later, so an actuation
   * published while the device registers is not missed.
   */
  private async recoveryPoint(channel: string): Promise<StreamPosition> {
    const reader = this.ctx.busReader;
    const top = await reader.position(channel);
    if (this.ttlMs === 0 || top.offset === 0) return top;
    const h = await reader.history(channel, { epoch: top.epoch, offset: Math.max(0, top.offset - MARK_SCAN) });
    if (!h.recovered) return top;
    const msgs = h.messages;
    for (let i = msgs.length - 1; i >= 0; i--) {
      const m = msgs[i]!;
      if (m.attrs[MARK_ATTR] === undefined) continue;
      const o = markOffset(m, top.epoch);
      if (o !== null) return { epoch: top.epoch, offset: o };
    }
    const cutoff = Date.now() - this.ttlMs;
    for (const m of msgs) if (m.attrs[MARK_ATTR] === undefined && m.ts >= cutoff) return { epoch: top.epoch, offset: m.offset - 1 };
    return top;
  }

  private async actuate(conn: OConn, cmd: Extract<OispCommand, { type: 'actuation' }>): Promise<void> {
    if (!this.credentialsValid(cmd.username, cmd.password)) {
      this.answer(conn, 'invalid_credentials', 'Invalid credentials');
      this.ctx.close(conn, 'policy_violation');
      return;
    }
    if (!conn.state.service) {
      conn.state.service = true;
      // A backend's connection never registers a device: no registration deadline for it.
      this.ctx.conns.authenticated(conn);
    }
    try {
      const channel = busChannel(DIALECT, cmd.accountId ?? DEFAULT_TENANT, oispDeviceChannelName(cmd.deviceId));
      await this.ctx.publish([{ channel, attrs: {}, data: cmd.data }]);
      this.ctx.send(conn, OISP_ACTUATION_SENT);
    } catch (err) {
      this.ctx.logger.warn({ err }, 'oisp actuation not published');
      this.answer(conn, 'unavailable', OISP_MESSAGES.internal);
    }
  }

  /** Both compared in constant time (over digests, so lengths leak nothing either). */
  private credentialsValid(username: string, password: string): boolean {
    const s = this.service;
    if (s === null) return false;
    const userOk = timingSafeEqual(digest(username), s.user);
    const passOk = timingSafeEqual(digest(password), s.password);
    return userOk && passOk;
  }

  private invalidToken(conn: OConn): void {
    this.answer(conn, 'invalid_token', OISP_MESSAGES.invalidToken);
    this.ctx.close(conn, 'policy_violation');
  }

  /** A frame that is not a message of the protocol: 401 "Wrong message format", then close 1007. */
  private wrongFormat(conn: OConn, code: ErrorCode): void {
    this.answer(conn, code, OISP_MESSAGES.wrongFormat);
    this.ctx.close(conn, 'invalid_payload');
  }

  private answer(conn: OConn, code: ErrorCode, content: string): void {
    this.ctx.metrics.error(code);
    this.ctx.send(conn, renderOispResponse(wireCode(OISP_WIRE_CODES, code), content));
  }
}
