/**
 * The `fleetfreedom` dialect (seed 000) on the edge: `connectionResponse` on open, sessions resumed by
 * ghostId (the session id, valid on any edge), `login` through the session service, get/merge/remove of
 * versioned objects in the user's company (the ObjectStore), and per-company subscriptions whose
 * `<type><Part>Merged` / `<type>Deleted` frames are the store's change events read through the bus.
 * Limits, request order and admission are the shared edge modules; this file is the dialect's own
 * request handling (docs/dialects/fleetfreedom.md).
 */
import { randomBytes } from 'node:crypto';
import {
  FLEETFREEDOM_WIRE_CODES,
  SwitchboardError,
  busChannel,
  isPlainObject,
  wireCode,
  type Envelope,
  type ErrorCode,
  type Identity,
  type Logger,
  type StreamPosition,
} from '@switchboard/core';
import {
  FF_SUBSCRIPTION_TYPES,
  FF_TYPES,
  ffPublicObject,
  ffTypeWord,
  isFfType,
  parseFleetFreedomFrame,
  peekFfRequest,
  renderFfDeleted,
  renderFfMerged,
  renderFfResponse,
  FF_ERROR_CMD,
  type FfLoginCommand,
  type FfMergeCommand,
  type FfReadCommand,
  type FfSubscribeCommand,
  type FfReqId,
  type FfStoredObject,
  type FfSubscriptionType,
  type FfType,
} from '@switchboard/protocol';
import type { LoginResult, ResumedSession, StoredSubscription } from '@switchboard/session';
import { ATTR, type ObjectStore, type RemoveResult, type StoreRefusal, type WriteResult } from '@switchboard/store';
import type { Conn } from '../../conn.js';
import type { DialectContext, DialectHandler, Frame, Refusal, UpgradeDecision, UpgradeRequest } from '../../dialect.js';
import type { GroupSpec, Renderer, SubscribeOutcome } from '../../hub.js';
import { fleetfreedomConfig } from './config.js';

/** The dialect's name: in channel names, metrics and config. */
export const DIALECT = 'fleetfreedom';

/** A ghostId worth asking the session service about (session ids are 22 base64url characters). */
const GHOST_RE = /^[A-Za-z0-9_-]{8,128}$/;
/** A tenant that is a Fleet Freedom company id. */
const COMPANY_RE = /^[1-9]\d{0,14}$/;
/**
 * A company's own object is the one object of type `company` in its tenant, numbered 1 by the store; the
 * dialect shows it with the company id (docs: "The company object").
 */
const COMPANY_OBJECT_ID = 1;
const COMPANY_PARTS = FF_TYPES.company.parts.length;

/** Per-connection state of a Fleet Freedom client. */
export interface FfState {
  /** What `connectionResponse` calls the session: an anonymous id until login or resume, then the session id. */
  ghostId: string;
  /** A ghostId was presented in the path. */
  readonly ghostGiven: boolean;
  /** The live session the ghostId named (found at upgrade), until `open` resumes it. */
  resumeFrom: ResumedSession | null;
  /** The user's company once logged in. */
  company: number | null;
  /** Set while the connection's opening work (resume, restore) runs: frames wait for it. */
  ready: Promise<void> | null;
  /** Subscribed parts per object type (of the user's company). */
  readonly parts: Map<FfType, Set<FfSubscriptionType>>;
}

type FConn = Conn<FfState>;
type Cmd = { readonly cmd: string; readonly reqId: FfReqId };

/** What a group's renderer needs: the part it renders (null: deletes of the type) and the company. */
interface RenderContext {
  readonly st: FfSubscriptionType | null;
  readonly type: FfType;
  readonly company: number;
}

/** A session subscription as stored: a part (`subscriptionType`) or the deletes of a type (`deletedType`). */
interface StoredRequest {
  readonly company: number;
  readonly subscriptionType?: string;
  readonly deletedType?: string;
}

/** The company id a tenant names, or null when the tenant is not one. */
export function companyOf(tenant: string | undefined): number | null {
  return tenant !== undefined && COMPANY_RE.test(tenant) ? Number(tenant) : null;
}

const code = (c: ErrorCode): number => wireCode(FLEETFREEDOM_WIRE_CODES, c);

/** Store refusals as registered error codes. */
const STORE_CODES: Readonly<Record<StoreRefusal['code'], ErrorCode>> = {
  not_found: 'not_found',
  version_conflict: 'version_conflict',
  unknown_type: 'unknown_type',
  invalid_object: 'invalid_message',
  forbidden_key: 'forbidden_key',
  too_deep: 'too_deep',
  too_large: 'message_too_large',
  invalid_query: 'invalid_message',
  ids_exhausted: 'internal_error',
};

const deletedKey = (type: FfType) => `${type}Deleted`;
const newGhostId = () => randomBytes(16).toString('base64url');

/** The Fleet Freedom request handling of one edge. */
export class FleetFreedomHandler implements DialectHandler<FfState> {
  private store: ObjectStore | null = null;
  private readonly log: Logger;
  private readonly defaults: { readonly sessionPolicy: Record<string, unknown>; readonly passwordPolicy: Record<string, unknown> };
  /** The last change event parsed, shared by every group's renderer (one parse per message). */
  private lastEnv: Envelope | null = null;
  private lastObject: FfStoredObject | null = null;

  constructor(private readonly ctx: DialectContext) {
    this.log = ctx.logger;
    const o = fleetfreedomConfig.of(ctx.config);
    this.defaults = {
      sessionPolicy: { ttlSec: ctx.config.sessionTtlSec, sliding: true, ...o.sessionPolicy },
      passwordPolicy: { ...o.passwordPolicy },
    };
  }

  async start(): Promise<void> {
    this.store = await this.ctx.openStore({
      types: FF_TYPES,
      channel: (tenant, type) => busChannel(DIALECT, tenant, type),
      limits: { maxDepth: this.ctx.config.maxDepth, maxObjectBytes: this.ctx.limits.maxMessageBytes },
    });
  }

  upgrade(req: UpgradeRequest): UpgradeDecision<FfState> | Promise<UpgradeDecision<FfState>> {
    const ghost = req.params.ghostId ?? '';
    const state = (resumeFrom: ResumedSession | null): FfState => ({
      ghostId: newGhostId(),
      ghostGiven: ghost !== '',
      resumeFrom,
      company: null,
      ready: null,
      parts: new Map(),
    });
    if (!GHOST_RE.test(ghost)) return { accept: true, state: state(null) };
    return this.ctx.session.resumeSession(ghost).then(
      // A session of a tenant that is no company (another dialect's) cannot be a Fleet Freedom session.
      (s) => ({ accept: true, state: state(s && companyOf(s.tenant) !== null ? s : null) }),
      (err: unknown) => {
        this.log.warn({ err }, 'ghostId lookup failed: session service unavailable');
        this.ctx.metrics.error('unavailable');
        return { accept: false, status: 503, message: 'the session service is unavailable; retry' };
      },
    );
  }

  open(conn: FConn): void {
    const from = conn.state.resumeFrom;
    if (from === null) {
      const message = conn.state.ghostGiven ? 'Unknown or expired ghostId: log in' : 'Connected: log in';
      this.ctx.send(conn, this.connectionFrame(conn, 0, message));
      return;
    }
    conn.state.resumeFrom = null;
    conn.state.ready = this.resume(conn, from)
      .catch((err: unknown) => {
        this.log.error({ err, conn: conn.connId }, 'resuming a Fleet Freedom session failed');
        this.ctx.metrics.error('internal_error');
        if (conn.closed) return;
        this.ctx.send(conn, this.connectionFrame(conn, code('internal_error'), 'internal error'));
        this.ctx.close(conn, 'internal_error');
      })
      .finally(() => {
        conn.state.ready = null;
      });
  }

  message(conn: FConn, frame: Frame): Promise<void> | undefined {
    const ready = conn.state.ready;
    if (ready !== null) return ready.then(() => this.handle(conn, frame));
    return this.handle(conn, frame);
  }

  refuse(conn: FConn, refusal: Refusal): void {
    const req = peekFfRequest(refusal.head);
    this.ctx.send(conn, renderFfResponse(req.cmd, req.reqId, code(refusal.code), refusal.message));
  }

  renderer(spec: GroupSpec): Renderer {
    const rc = spec.render!.context as RenderContext;
    const { type, company } = rc;
    const st = rc.st;
    if (st === null) return (env) => renderFfDeleted(type, Number(env.attrs[ATTR.id]), company);
    return (env) => {
      const obj = this.objectOf(env);
      // A store event always carries its object; a minimal frame keeps fan-out going if one did not.
      return renderFfMerged(st, obj ?? { id: Number(env.attrs[ATTR.id]), v: [] }, company);
    };
  }

  /** Parses a change event's object once per message, whatever the number of groups rendering it. */
  private objectOf(env: Envelope): FfStoredObject | null {
    if (env !== this.lastEnv) {
      this.lastEnv = env;
      this.lastObject = null;
      try {
        const o = JSON.parse(env.data) as unknown;
        if (isPlainObject(o) && typeof o.id === 'number' && Array.isArray(o.v)) this.lastObject = o as FfStoredObject;
      } catch {
        // Not an object text: rendered minimally (see renderer); the store never publishes such an event.
      }
    }
    return this.lastObject;
  }

  private get objects(): ObjectStore {
    if (!this.store) throw new Error('fleetfreedom: the object store is not open (start() was not called)');
    return this.store;
  }

  private handle(conn: FConn, frame: Frame): Promise<void> | undefined {
    if (conn.closed) return undefined;
    if (frame.binary) {
      this.reply(conn, { cmd: FF_ERROR_CMD, reqId: null }, 'invalid_message', 'binary frames are not accepted: send `cmdName {JSON}` text');
      return undefined;
    }
    const parsed = parseFleetFreedomFrame(frame.text, { maxDepth: this.ctx.config.maxDepth });
    if (!parsed.ok) {
      this.reply(conn, parsed.error, parsed.error.code, parsed.error.message);
      return undefined;
    }
    const cmd = parsed.command;
    if (cmd.kind === 'login') return this.login(conn, cmd);
    if (conn.state.company === null) {
      this.reply(conn, cmd, 'not_authenticated', 'not logged in: send `login` first, or connect with a live ghostId');
      return undefined;
    }
    switch (cmd.kind) {
      case 'get':
      case 'merge':
      case 'remove':
        return this.objectCommand(conn, cmd);
      case 'subscribe':
        return this.subscribe(conn, cmd);
      case 'unsubscribe':
        return this.unsubscribe(conn, cmd);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Sessions: connect, resume, login.

  /** `connectionResponse {errorCode, message, serverTime, ghostId, expiry, …}`. */
  private connectionFrame(conn: FConn, errorCode: number, message: string, extra?: Record<string, unknown>): string {
    return renderFfResponse('connection', null, errorCode, message, { ...this.anonymous(conn), ...extra });
  }

  /** Time, ghostId and expiry of a connection not logged in: its id lives until the login deadline. */
  private anonymous(conn: FConn): Record<string, unknown> {
    const ttlMs = this.ctx.limits.authTimeoutMs > 0 ? this.ctx.limits.authTimeoutMs : this.ctx.config.sessionTtlSec * 1000;
    return { serverTime: new Date().toISOString(), ghostId: conn.state.ghostId, expiry: new Date(conn.openedAtMs + ttlMs).toISOString() };
  }

  /** Resumes the session a ghostId named: admitted like a login, then its subscriptions restored. */
  private async resume(conn: FConn, from: ResumedSession): Promise<void> {
    const identity: Identity = {
      userId: from.userId,
      roles: from.roles,
      ...(from.tenant !== undefined ? { tenant: from.tenant } : {}),
      sessionId: from.sessionId,
    };
    const res = await this.ctx.gate.admit(conn, this.ctx.metrics, identity, from.sessionId);
    if (!res.ok) {
      if (res.code === 'gone') return;
      this.ctx.metrics.error(res.code);
      this.ctx.send(conn, this.connectionFrame(conn, code(res.code), res.message));
      if (res.close) this.ctx.close(conn, res.close);
      return;
    }
    if (res.refreshed) return;
    conn.state.company = companyOf(conn.tenant);
    conn.state.ghostId = res.session.sessionId;
    const restore = res.session.resumed ? this.restorable(conn, res.session.subscriptions) : { parts: [], deleted: [] };
    const info = await this.sessionInfo(conn, identity.userId, identity.roles, res.session.expiresAt);
    if (conn.closed) return;
    const names = restore.parts.map((p) => p.st.name);
    this.ctx.send(
      conn,
      // The ghostId's session carried on (with or without subscriptions to give back), or a new one.
      renderFfResponse('connection', null, 0, res.session.continued ? 'Session resumed' : 'Session expired meanwhile: a new one was opened', {
        ...info,
        ...(names.length > 0 ? { subscriptions: { company: { id: conn.state.company }, subscriptionTypes: names } } : {}),
      }),
    );
    await this.restore(conn, restore);
  }

  private async login(conn: FConn, cmd: FfLoginCommand): Promise<void> {
    if (conn.identity) {
      this.reply(conn, cmd, 'forbidden', 'already logged in: open another connection to log in as another user');
      return;
    }
    let result: LoginResult;
    try {
      result = await this.ctx.session.login({ username: cmd.username, password: cmd.password, ip: conn.ip });
    } catch (err) {
      this.log.warn({ err }, 'login failed: session service unavailable');
      this.reply(conn, cmd, 'unavailable', 'the session service is unavailable; retry');
      return;
    }
    if (conn.closed) return;
    if (!result.ok) {
      this.reply(conn, cmd, result.code, result.message, { ...this.anonymous(conn), retryAfterSec: result.retryAfterSec });
      return;
    }
    if (companyOf(result.user.tenant) === null) {
      this.reply(conn, cmd, 'forbidden', `user "${result.user.name}" belongs to no Fleet Freedom company (its tenant must be a company id)`, this.anonymous(conn));
      return;
    }
    const identity: Identity = {
      userId: result.user.name,
      roles: result.user.roles,
      ...(result.user.tenant !== undefined ? { tenant: result.user.tenant } : {}),
      exp: Math.floor(result.expiresAt / 1000),
      sessionId: result.sessionId,
    };
    const res = await this.ctx.gate.admit(conn, this.ctx.metrics, identity, result.sessionId);
    if (!res.ok) {
      if (res.code === 'gone') return;
      this.reply(conn, cmd, res.code, res.message, this.anonymous(conn));
      if (res.close) this.ctx.close(conn, res.close);
      return;
    }
    if (res.refreshed) return;
    conn.state.company = companyOf(conn.tenant);
    conn.state.ghostId = res.session.sessionId;
    const info = await this.sessionInfo(conn, identity.userId, identity.roles, res.session.expiresAt);
    if (conn.closed) return;
    this.reply(conn, cmd, 0, 'Logged in', info);
  }

  /**
   * What `connectionResponse` and `loginResponse` carry for a logged-in user: the time, ghostId and
   * expiry, the user (its `user` object in the company when one has its `login`), and the company's
   * session and password policies over the configured defaults.
   */
  private async sessionInfo(conn: FConn, userId: string, roles: readonly string[], expiresAt: number): Promise<Record<string, unknown>> {
    const company = conn.state.company!;
    let user: Record<string, unknown> = { login: userId, company, roles };
    let sessionPolicy = this.defaults.sessionPolicy;
    let passwordPolicy = this.defaults.passwordPolicy;
    try {
      const [profile, own] = await Promise.all([
        this.objects.query(conn.tenant, 'user', { where: { login: userId }, limit: 1 }),
        this.objects.get(conn.tenant, 'company', COMPANY_OBJECT_ID),
      ]);
      if (profile.ok && profile.objects[0]) user = { ...ffPublicObject('user', profile.objects[0], company), roles };
      if (own.ok) {
        if (isPlainObject(own.object.sessionPolicy)) sessionPolicy = { ...sessionPolicy, ...own.object.sessionPolicy };
        if (isPlainObject(own.object.passwordPolicy)) passwordPolicy = { ...passwordPolicy, ...own.object.passwordPolicy };
      }
    } catch (err) {
      // The session stands without them: the defaults answer, and the failure is logged and counted.
      this.log.warn({ err }, 'user profile and company policies unavailable: answering the defaults');
      this.ctx.metrics.error('unavailable');
    }
    return {
      serverTime: new Date().toISOString(),
      ghostId: conn.state.ghostId,
      expiry: new Date(expiresAt).toISOString(),
      user,
      sessionPolicy,
      passwordPolicy,
    };
  }

  // ------------------------------------------------------------------------------------------------
  // Objects.

  private async objectCommand(conn: FConn, cmd: FfReadCommand | FfMergeCommand): Promise<void> {
    const company = conn.state.company!;
    const { type } = cmd;
    if (cmd.company !== null && cmd.company !== company) return this.reply(conn, cmd, 'forbidden', `company ${cmd.company} is not yours`);
    if (type === 'company' && cmd.id !== null && cmd.id !== company) return this.reply(conn, cmd, 'forbidden', `company ${cmd.id} is not yours`);
    try {
      if (cmd.kind === 'merge') return await this.merge(conn, cmd);
      if (cmd.kind === 'get') return await this.get(conn, cmd);
      return await this.remove(conn, cmd);
    } catch (err) {
      if (conn.closed) return;
      this.log.warn({ err, cmd: cmd.cmd }, 'object store unavailable');
      this.reply(conn, cmd, 'unavailable', 'the object store is unavailable; retry');
    }
  }

  private async get(conn: FConn, cmd: FfReadCommand): Promise<void> {
    const { type } = cmd;
    if (type === 'company') {
      const obj = await this.companyObject(conn.tenant);
      return this.replyObject(conn, cmd, 'Company retrieved', type, obj);
    }
    const r = await this.objects.get(conn.tenant, type, cmd.id);
    if (!r.ok) return this.refused(conn, cmd, type, r);
    this.replyObject(conn, cmd, `${ffTypeWord(type)} retrieved`, type, r.object);
  }

  private async remove(conn: FConn, cmd: FfReadCommand): Promise<void> {
    const { type } = cmd;
    if (type === 'company') return this.reply(conn, cmd, 'forbidden', 'a company cannot be removed by its users');
    const r: RemoveResult = await this.objects.remove(conn.tenant, type, cmd.id, cmd.v !== null ? { expectV: cmd.v } : {});
    if (!r.ok) return this.refused(conn, cmd, type, r);
    this.reply(conn, cmd, 0, `${ffTypeWord(type)} removed`, { [type]: { id: r.object.id, company: conn.state.company } });
  }

  private async merge(conn: FConn, cmd: FfMergeCommand): Promise<void> {
    const { type } = cmd;
    if (type === 'company') return this.mergeCompany(conn, cmd);
    if (cmd.id === null) {
      const r = await this.objects.create(conn.tenant, type, cmd.fields);
      return this.answerWrite(conn, cmd, r, `${ffTypeWord(type)} created`);
    }
    // Without `v` nothing matches: the merge conflicts, and the answer shows the stored `v`.
    const r = await this.objects.merge(conn.tenant, type, cmd.id, cmd.fields, { expectV: cmd.v ?? [] });
    this.answerWrite(conn, cmd, r, `${ffTypeWord(type)} merged`);
  }

  /** The company's object; before its first write, an empty one at `v` all 0. */
  private async companyObject(tenant: string): Promise<FfStoredObject> {
    const r = await this.objects.get(tenant, 'company', COMPANY_OBJECT_ID);
    if (r.ok) return r.object;
    if (r.code === 'not_found') return { id: COMPANY_OBJECT_ID, v: new Array<number>(COMPANY_PARTS).fill(0) };
    throw new SwitchboardError('internal_error', `company lookup refused: ${r.code} ${r.message}`);
  }

  /**
   * Merges the company's object. Its first write creates it (the client saw it at `v` all 0); when two
   * first writes race, the store numbers the loser 2: that object is removed again (its events never
   * reach subscribers, who filter on id 1) and the writer gets a version conflict.
   */
  private async mergeCompany(conn: FConn, cmd: FfMergeCommand): Promise<void> {
    const tenant = conn.tenant;
    const r = await this.objects.merge(tenant, 'company', COMPANY_OBJECT_ID, cmd.fields, { expectV: cmd.v ?? [] });
    if (r.ok || r.code !== 'not_found') return this.answerWrite(conn, cmd, r, 'Company merged');
    const empty = await this.companyObject(tenant);
    if (cmd.v === null || cmd.v.some((n) => n !== 0))
      return this.reply(conn, cmd, 'version_conflict', 'the company has not been written yet: merge with v all 0', { company: ffPublicObject('company', empty, conn.state.company!) });
    const created = await this.objects.create(tenant, 'company', cmd.fields);
    if (created.ok && created.object.id !== COMPANY_OBJECT_ID) {
      const undone = await this.objects.remove(tenant, 'company', created.object.id);
      if (!undone.ok) this.log.warn({ company: tenant, id: created.object.id, code: undone.code }, 'a raced company create could not be undone');
      const current = await this.companyObject(tenant);
      return this.reply(conn, cmd, 'version_conflict', 'the company was written meanwhile', { company: ffPublicObject('company', current, conn.state.company!) });
    }
    this.answerWrite(conn, cmd, created, 'Company merged');
  }

  private answerWrite(conn: FConn, cmd: FfMergeCommand, r: WriteResult, message: string): void {
    if (!r.ok) return this.refused(conn, cmd, cmd.type, r);
    this.replyObject(conn, cmd, message, cmd.type, r.object);
  }

  private refused(conn: FConn, cmd: Cmd, type: FfType, r: StoreRefusal): void {
    const c = STORE_CODES[r.code];
    if (r.code === 'version_conflict') {
      this.reply(conn, cmd, c, `${r.message}; the stored object is attached`, { [type]: ffPublicObject(type, r.current, conn.state.company!) });
      return;
    }
    this.reply(conn, cmd, c, r.message);
  }

  private replyObject(conn: FConn, cmd: Cmd, message: string, type: FfType, obj: FfStoredObject): void {
    this.reply(conn, cmd, 0, message, { [type]: ffPublicObject(type, obj, conn.state.company!) });
  }

  // ------------------------------------------------------------------------------------------------
  // Subscriptions.

  private subscribed(conn: FConn): string[] {
    const out: string[] = [];
    for (const set of conn.state.parts.values()) for (const st of set) out.push(st.name);
    return out;
  }

  /** A part's group: its `Merged` frames, for creates and merges that touched the part. */
  private partSpec(conn: FConn, st: FfSubscriptionType): GroupSpec {
    const filter: Record<string, string[]> = { [ATTR.part(st.part)]: ['true'], [ATTR.op]: ['create', 'merge'] };
    if (st.type === 'company') filter[ATTR.id] = [String(COMPANY_OBJECT_ID)];
    const context: RenderContext = { st, type: st.type, company: conn.state.company! };
    return {
      dialect: DIALECT,
      channel: this.objects.channel(conn.tenant, st.type),
      filter,
      projection: null,
      frequencyMs: 0,
      conflateBy: null,
      render: { key: st.name, context },
    };
  }

  /** A type's deletes: one group per type, whichever of its parts the client subscribed to. */
  private deletedSpec(conn: FConn, type: FfType): GroupSpec {
    const context: RenderContext = { st: null, type, company: conn.state.company! };
    return {
      dialect: DIALECT,
      channel: this.objects.channel(conn.tenant, type),
      filter: { [ATTR.op]: ['remove'] },
      projection: null,
      frequencyMs: 0,
      conflateBy: null,
      render: { key: deletedKey(type), context },
    };
  }

  private async subscribe(conn: FConn, cmd: FfSubscribeCommand): Promise<void> {
    const company = conn.state.company!;
    if (cmd.company !== company) return this.reply(conn, cmd, 'forbidden', `company ${cmd.company} is not yours`);
    const fresh = cmd.types.filter((st) => !conn.state.parts.get(st.type)?.has(st));
    const denied = fresh.find((st) => !this.ctx.authorize(conn, st.name));
    if (denied) return this.reply(conn, cmd, 'forbidden', `the roles of this session may not subscribe to ${denied.name}`);
    const max = this.ctx.limits.maxSubscriptionsPerConnection;
    const held = this.subscribed(conn).length;
    if (held + fresh.length > max) return this.reply(conn, cmd, 'too_many_subscriptions', `at most ${max} subscription types per connection`);
    // Every new type of the request in one reservation (all or nothing, like the request).
    const room = await this.ctx.subscriptions.reserve(conn, fresh.length);
    if (conn.closed) return;
    if (room === 'over_cap') {
      this.ctx.metrics.rateLimited('user_subscriptions');
      return this.reply(conn, cmd, 'too_many_subscriptions', `at most ${this.ctx.subscriptions.maxPerUser} subscriptions per user across the cluster`);
    }
    if (room === 'unavailable') return this.reply(conn, cmd, 'unavailable', 'the session service is unavailable; retry');
    const all = [...this.subscribed(conn), ...fresh.map((st) => st.name)];
    const answer = () => renderFfResponse('subscribe', cmd.reqId, 0, 'Subscribed', { company: { id: company }, subscriptionTypes: all });
    if (fresh.length === 0) {
      this.ctx.send(conn, answer());
      return;
    }
    // The answer goes out in the first group's commit, before any frame of the new subscriptions.
    let answered = false;
    const respond = () => {
      if (answered) return;
      answered = true;
      this.sendCorked(conn, answer());
    };
    const made: string[] = [];
    try {
      for (const st of fresh) {
        const parts = conn.state.parts.get(st.type);
        // Deletes first: a client never misses the delete of an object it got a `Merged` frame of.
        if (!parts && st.type !== 'company') {
          await this.join(conn, deletedKey(st.type), this.deletedSpec(conn, st.type), null, { company, deletedType: st.type }, respond);
          made.push(deletedKey(st.type));
        }
        await this.join(conn, st.name, this.partSpec(conn, st), null, { company, subscriptionType: st.name }, respond);
        made.push(st.name);
        this.track(conn, st);
      }
    } catch (err) {
      if (conn.closed) return;
      if (!(err instanceof SwitchboardError)) throw err;
      // All or nothing: what this request made is undone, and the client told (again, if the first
      // answer already went out).
      for (const key of made) this.leave(conn, key);
      void this.ctx.subscriptions.release(conn, fresh.length);
      this.reply(conn, cmd, err.code, `${err.message}; none of this request's subscriptions were made`);
    }
  }

  /** Drops subscription types; answered once the user's count across the cluster has room again. */
  private async unsubscribe(conn: FConn, cmd: FfSubscribeCommand): Promise<void> {
    const company = conn.state.company!;
    if (cmd.company !== company) return this.reply(conn, cmd, 'forbidden', `company ${cmd.company} is not yours`);
    // Unsubscribing a type not subscribed is not an error: the result is the same.
    let dropped = 0;
    for (const st of cmd.types)
      if (conn.state.parts.get(st.type)?.has(st)) {
        this.leave(conn, st.name);
        dropped++;
      }
    await this.ctx.subscriptions.release(conn, dropped);
    this.reply(conn, cmd, 0, 'Unsubscribed', { company: { id: company }, subscriptionTypes: this.subscribed(conn) });
  }

  /** Joins a group and records it in the session with the position it started at. */
  private async join(
    conn: FConn,
    key: string,
    spec: GroupSpec,
    recover: StreamPosition | null,
    request: StoredRequest,
    respond: (outcome: SubscribeOutcome) => void,
  ): Promise<SubscribeOutcome | undefined> {
    let outcome: SubscribeOutcome | undefined;
    await this.ctx.hub.subscribe(conn, key, spec, recover, (o) => {
      outcome = o;
      respond(o);
    });
    if (outcome && !conn.closed) this.ctx.gate.saveSubscription(conn, key, { ...request }, outcome.position);
    return outcome;
  }

  private track(conn: FConn, st: FfSubscriptionType): void {
    let set = conn.state.parts.get(st.type);
    if (!set) conn.state.parts.set(st.type, (set = new Set()));
    set.add(st);
  }

  /** Leaves a part's (or a type's deletes) group; the type's deletes go with its last part. */
  private leave(conn: FConn, key: string): void {
    this.ctx.hub.unsubscribe(conn, key);
    this.ctx.gate.forgetSubscription(conn, key);
    const st = FF_SUBSCRIPTION_TYPES.get(key);
    if (!st) return;
    const set = conn.state.parts.get(st.type);
    set?.delete(st);
    if (set && set.size === 0) {
      conn.state.parts.delete(st.type);
      if (st.type !== 'company') {
        this.ctx.hub.unsubscribe(conn, deletedKey(st.type));
        this.ctx.gate.forgetSubscription(conn, deletedKey(st.type));
      }
    }
  }

  /** The stored subscriptions a resumed session may restore (this dialect's, of the user's company). */
  private restorable(
    conn: FConn,
    subs: readonly StoredSubscription[],
  ): { parts: { st: FfSubscriptionType; position: StreamPosition | null }[]; deleted: { type: FfType; position: StreamPosition | null }[] } {
    const parts: { st: FfSubscriptionType; position: StreamPosition | null }[] = [];
    const deleted: { type: FfType; position: StreamPosition | null }[] = [];
    for (const s of subs) {
      if (s.dialect !== DIALECT) continue;
      const req = s.request as Partial<StoredRequest>;
      const st = typeof req.subscriptionType === 'string' ? FF_SUBSCRIPTION_TYPES.get(req.subscriptionType) : undefined;
      const position = s.position ?? null;
      // The channel policy is checked again: the roles may have changed since the subscription was made.
      if (req.company === conn.state.company && st && s.key === st.name && this.ctx.authorize(conn, st.name)) parts.push({ st, position });
      else if (req.company === conn.state.company && typeof req.deletedType === 'string' && isFfType(req.deletedType) && s.key === deletedKey(req.deletedType))
        deleted.push({ type: req.deletedType, position });
      else this.ctx.gate.forgetSubscription(conn, s.key);
    }
    // The model's order (types, then parts in `v` order); deletes come after every part (see restore).
    const order = [...FF_SUBSCRIPTION_TYPES.keys()];
    parts.sort((a, b) => order.indexOf(a.st.name) - order.indexOf(b.st.name));
    return { parts, deleted: deleted.filter((d) => parts.some((p) => p.st.type === d.type)) };
  }

  /**
   * Restores a resumed session's subscriptions, each replaying from its last checkpoint what the client
   * missed (at least once, in order per subscription): the parts first, then the deletes, so an object
   * merged and then removed while the client was away is never shown again after its delete.
   */
  private async restore(
    conn: FConn,
    r: { parts: { st: FfSubscriptionType; position: StreamPosition | null }[]; deleted: { type: FfType; position: StreamPosition | null }[] },
  ): Promise<void> {
    const company = conn.state.company!;
    const notRecovered: string[] = [];
    const note = (key: string) => (o: SubscribeOutcome) => {
      if (o.recovered === false) notRecovered.push(key);
    };
    const failed: string[] = [];
    // Counted against the user's cap but never refused by it (a resume keeps its subscriptions); when the
    // service cannot count them they are not restored (they stay in the session for the next resume).
    const parts = r.parts.filter(({ st }) => !conn.state.parts.get(st.type)?.has(st));
    const counted = parts.length === 0 || (await this.ctx.subscriptions.reserve(conn, parts.length, true)) === 'ok';
    if (conn.closed) return;
    for (const { st, position } of parts) {
      if (conn.closed) return;
      if (!counted) {
        failed.push(st.name);
        continue;
      }
      try {
        await this.ctx.hub.subscribe(conn, st.name, this.partSpec(conn, st), position, note(st.name));
        this.track(conn, st);
      } catch (err) {
        if (conn.closed) return;
        if (!(err instanceof SwitchboardError)) throw err;
        this.log.warn({ err, key: st.name }, 'a subscription could not be restored');
        failed.push(st.name);
        void this.ctx.subscriptions.release(conn, 1);
      }
    }
    for (const { type, position } of r.deleted) {
      if (conn.closed) return;
      if (!conn.state.parts.has(type)) continue;
      try {
        await this.ctx.hub.subscribe(conn, deletedKey(type), this.deletedSpec(conn, type), position, note(deletedKey(type)));
      } catch (err) {
        if (conn.closed) return;
        if (!(err instanceof SwitchboardError)) throw err;
        this.log.warn({ err, key: deletedKey(type) }, 'a subscription could not be restored');
        failed.push(deletedKey(type));
      }
    }
    // A type restored without its deletes record (older sessions): its deletes from now on.
    for (const type of [...conn.state.parts.keys()]) {
      if (conn.closed) return;
      if (type === 'company' || conn.subs.has(deletedKey(type)) || failed.includes(deletedKey(type))) continue;
      try {
        await this.join(conn, deletedKey(type), this.deletedSpec(conn, type), null, { company, deletedType: type }, () => undefined);
      } catch (err) {
        if (conn.closed) return;
        if (!(err instanceof SwitchboardError)) throw err;
        this.log.warn({ err, key: deletedKey(type) }, 'a subscription could not be restored');
        failed.push(deletedKey(type));
      }
    }
    if (conn.closed) return;
    if (notRecovered.length > 0)
      this.ctx.send(
        conn,
        renderFfResponse('subscribe', null, 0, 'Restored without replay: changes older than the history were missed; get the objects again', {
          company: { id: company },
          subscriptionTypes: notRecovered.filter((k) => FF_SUBSCRIPTION_TYPES.has(k)),
          recovered: false,
        }),
      );
    if (failed.length > 0) {
      this.ctx.metrics.error('unavailable');
      this.ctx.send(
        conn,
        renderFfResponse('subscribe', null, code('unavailable'), 'Some subscriptions could not be restored; subscribe again', {
          company: { id: company },
          subscriptionTypes: failed.filter((k) => FF_SUBSCRIPTION_TYPES.has(k)),
        }),
      );
    }
  }

  // ------------------------------------------------------------------------------------------------

  /** Answers a request: `<cmd>Response {reqId, errorCode, message, …}`; a failure is counted by code. */
  private reply(conn: FConn, cmd: Cmd, c: ErrorCode | 0, message: string, extra?: Record<string, unknown>): void {
    let n = 0;
    if (c !== 0) {
      this.ctx.metrics.error(c);
      n = code(c);
    }
    this.ctx.send(conn, renderFfResponse(cmd.cmd, cmd.reqId, n, message, extra));
  }

  /** Sends inside an already corked section (the hub's subscribe commit). */
  private sendCorked(conn: FConn, text: string): void {
    if (conn.closed) return;
    this.ctx.metrics.messagesOut.inc();
    conn.ws.send(text, false, false);
  }
}
