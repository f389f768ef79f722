/**
 * The Switchboard client: one WebSocket to an edge speaking the native `valtronics` dialect, kept
 * alive across drops, drains and dead links. Every reconnect resumes the session on whichever edge
 * answers (`session_id` plus the subscriptions' `recover` positions in `auth`), so each subscription
 * continues exactly after the last update it delivered, or says explicitly that it cannot.
 */
import { backoffDelayMs, closeAction } from './backoff.js';
import { Emitter } from './emitter.js';
import { Subscription } from './subscription.js';
import type {
  AuthEvent,
  Channel,
  ChannelFilters,
  ClientOptions,
  ClientState,
  Position,
  ServerError,
  StateChange,
  TokenSource,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/** Events of a {@link SwitchboardClient}. */
export interface ClientEvents {
  /** `connecting`, `connected`, `disconnected` (with the reason and the delay before the next attempt). */
  readonly state: StateChange;
  /** A successful authentication: at connect and after each token refresh. */
  readonly auth: AuthEvent;
  /** An error that belongs to no subscription (auth refused, token function failed, …). */
  readonly error: ServerError;
}

type Frame = Record<string, unknown>;
type Pending = { readonly sub: Subscription; readonly asked: Position | null } | null;
type Phase = 'idle' | 'opening' | 'authenticating' | 'syncing' | 'connected';

/** The update frame type of each channel. */
const UPDATE_TYPES: Readonly<Record<string, string>> = {
  telemetry: 'telemetry_update',
  alerts: 'alert',
  devices: 'device_status_update',
  system: 'system_status_update',
};
/** Subscribe errors worth retrying on the same connection; any other refusal is final. */
const TRANSIENT = ['rate_limited', 'unavailable', 'internal_error'];
const OPEN = 1;
const MAX_TIMER_MS = 2 ** 31 - 1;

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A client for the `valtronics` dialect that never loses or doubles an update. */
export class SwitchboardClient extends Emitter<ClientEvents> {
  private readonly urls: readonly string[];
  private readonly WS: WebSocketConstructor;
  private readonly tokenSource: TokenSource;
  private readonly o: {
    backoffInitialMs: number;
    backoffMaxMs: number;
    idlePingMs: number;
    pongTimeoutMs: number;
    connectTimeoutMs: number;
    refreshBeforeMs: number;
    maxFrameBytes: number;
  };
  private readonly subs = new Map<Channel, Subscription>();
  private ws: WebSocketLike | null = null;
  private phase: Phase = 'idle';
  private stateNow: ClientState = 'disconnected';
  /** connect() was called and disconnect() was not (nor did auth fail for good). */
  private wanted = false;
  /** A reconnect is scheduled. */
  private retrying = false;
  /** The connect promised by `autoConnect` is still to happen. */
  private autoConnect = false;
  /** Bumped per attempt so that late callbacks of an old socket or token fetch do nothing. */
  private generation = 0;
  private urlIndex = 0;
  private attempt = 0;
  private seq = 0;
  private token: string | null = null;
  private tokenExpiresAtMs: number | null = null;
  /** Server clock minus local clock, from the `pong`'s `server_time`: token expiry is in server time. */
  private skewMs = 0;
  private session: string | null = null;
  /** Whether the server resumed the session on this connection. */
  private resumed = false;
  private user: string | null = null;
  private authId = '';
  private barrierId = '';
  private refreshId = '';
  private refreshFailures = 0;
  /** A fresh token was already fetched for this attempt after `expired_token`/`invalid_token`. */
  private freshTried = false;
  /** A fresh token was already tried after a 4001/4003 close. */
  private authCloseRetried = false;
  private readonly pending = new Map<string, Pending>();
  /** Positions sent in this connection's `auth` (what a restored subscription recovers from). */
  private readonly asked = new Map<string, Position>();
  /** Channels the resumed session gave back on this connection. */
  private readonly restored = new Set<string>();
  private lastRxMs = 0;
  private pingOut = false;
  private pingSentMs = 0;
  private readonly timers: Record<'reconnect' | 'beat' | 'connect' | 'refresh', ReturnType<typeof setTimeout> | undefined> = {
    reconnect: undefined,
    beat: undefined,
    connect: undefined,
    refresh: undefined,
  };

  /** Creates the client; it connects at once unless `autoConnect` is false. */
  constructor(options: ClientOptions) {
    super();
    this.urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new Error('no url given');
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error('no global WebSocket: pass one, e.g. `WebSocket` from the "ws" package');
    this.WS = WS;
    this.tokenSource = options.token;
    this.o = {
      backoffInitialMs: options.backoffInitialMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      idlePingMs: options.idlePingMs ?? 15_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      refreshBeforeMs: options.refreshBeforeMs ?? 30_000,
      maxFrameBytes: options.maxFrameBytes ?? 1024,
    };
    // After the caller's synchronous code, so listeners added right after `new` see the first state
    // (and a disconnect() or close() right after `new` wins).
    if (options.autoConnect !== false) {
      this.autoConnect = true;
      void Promise.resolve().then(() => {
        if (this.autoConnect) this.connect();
      });
    }
  }

  /** The connection state. */
  get state(): ClientState {
    return this.stateNow;
  }

  /** The session id the server gave (resumed on every reconnect); null before the first connection. */
  get sessionId(): string | null {
    return this.session;
  }

  /** The authenticated user; null before the first connection. */
  get userId(): string | null {
    return this.user;
  }

  /** Starts connecting (and reconnecting) if it is not already. */
  connect(): void {
    this.autoConnect = false;
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    this.authCloseRetried = false;
    void this.open();
  }

  /**
   * Closes the connection and stops reconnecting. Subscriptions and their positions stay, so a later
   * {@link connect} resumes where this left off (or reports `recovered: false`).
   */
  disconnect(): void {
    this.autoConnect = false;
    this.wanted = false;
    this.lost(1000, 'disconnect() called', false);
  }

  /** Disconnects for good and ends every subscription. */
  close(): void {
    this.disconnect();
    for (const sub of [...this.subs.values()]) sub.unsubscribe();
    this.session = null;
  }

  /**
   * Subscribes to a channel with its typed filters. The server keeps one subscription per channel
   * and connection, so a second one to the same channel throws: unsubscribe the first.
   */
  subscribe<C extends Channel>(channel: C, filters?: ChannelFilters[C]): Subscription<C> {
    if (this.subs.has(channel)) throw new Error(`already subscribed to "${channel}"; unsubscribe() first`);
    const sub: Subscription<C> = new Subscription(channel, filters ?? {}, () => this.forget(sub));
    this.subs.set(channel, sub);
    if (this.phase === 'connected') this.sendSubscribe(sub);
    return sub;
  }

  /** The live subscription to a channel, if any. */
  subscription<C extends Channel>(channel: C): Subscription<C> | undefined {
    return this.subs.get(channel) as Subscription<C> | undefined;
  }

  // -------------------------------------------------------------------------------------------------
  // Connection lifecycle

  private setState(change: StateChange): void {
    this.stateNow = change.state;
    this.emit('state', change);
  }

  private get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!;
  }

  private async open(): Promise<void> {
    clearTimeout(this.timers.reconnect);
    this.retrying = false;
    const gen = ++this.generation;
    const url = this.url;
    this.phase = 'opening';
    this.freshTried = false;
    this.setState({ state: 'connecting', url, attempt: this.attempt });
    this.timers.connect = setTimeout(() => this.lost(1006, `not connected within ${this.o.connectTimeoutMs} ms`, true), this.o.connectTimeoutMs);
    let token: string;
    let ws: WebSocketLike;
    try {
      token = await this.getToken(false);
      if (gen !== this.generation) return;
      ws = new this.WS(url);
    } catch (err) {
      if (gen !== this.generation) return;
      this.emit('error', { code: 'client_error', message: errorText(err) });
      this.lost(1006, errorText(err), true);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.phase = 'authenticating';
      this.lastRxMs = Date.now();
      this.sendAuth(token);
      this.beat();
    };
    ws.onmessage = (ev: { data: unknown }) => this.onFrame(ev.data);
    ws.onclose = (ev: { code: number; reason: string }) => this.onClose(ev.code, ev.reason);
    // An error event carries nothing useful (browsers hide the cause); the close event follows it.
    ws.onerror = null;
  }

  private onClose(code: number, reason: string): void {
    const action = closeAction(code);
    reason ||= code === 1006 ? 'connection lost' : 'connection closed';
    if (action === 'stop') {
      // Another connection resumed this session: taking it back would start a tug of war.
      this.lost(code, reason, false);
      return;
    }
    if (action === 'auth_failed') {
      // Retry once with a fresh token from the token function; a fixed token would fail again.
      const retry = typeof this.tokenSource === 'function' && !this.authCloseRetried;
      this.authCloseRetried = true;
      if (retry) this.token = null;
      this.lost(code, reason, retry);
      return;
    }
    this.lost(code, reason, true, action === 'reconnect_now');
  }

  /**
   * The connection is gone (or given up): clean up, then reconnect after a backoff delay (0 after a
   * drain of a working connection) on the next endpoint, or stop when `retry` is false.
   */
  private lost(code: number, reason: string, retry: boolean, now = false): void {
    const ws = this.ws;
    this.ws = null;
    this.generation++;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        if (ws.readyState <= OPEN) ws.close(1000);
      } catch {
        // A socket that cannot even be closed is dropped all the same: it has no handlers any more.
      }
    }
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.phase = 'idle';
    this.pending.clear();
    this.asked.clear();
    this.restored.clear();
    this.pingOut = false;
    for (const sub of this.subs.values()) sub.reset();
    const url = this.url;
    if (!retry || !this.wanted) {
      this.wanted = false;
      // Said once: a disconnect() while already stopped changes nothing.
      if (this.stateNow !== 'disconnected' || this.retrying)
        this.setState({ state: 'disconnected', url, attempt: this.attempt, code, reason, delayMs: null });
      this.retrying = false;
      return;
    }
    const delayMs = now && this.attempt === 0 ? 0 : backoffDelayMs(this.attempt, this.o.backoffInitialMs, this.o.backoffMaxMs);
    this.attempt++;
    this.urlIndex++;
    this.retrying = true;
    this.setState({ state: 'disconnected', url, attempt: this.attempt, code, reason, delayMs });
    this.timers.reconnect = setTimeout(() => void this.open(), delayMs);
  }

  /**
   * Dead-link detection without a timer per frame: after `idlePingMs` of silence a `ping` goes out
   * (the server answers every ping with a pong); when nothing at all arrives within `pongTimeoutMs`
   * after it, the link is dead. Counting from the ping, not from the last frame, keeps a throttled
   * timer (a background tab) from declaring a healthy but quiet link dead.
   */
  private beat(): void {
    const now = Date.now();
    let next: number;
    if (this.pingOut) {
      const waited = now - this.pingSentMs;
      if (waited >= this.o.pongTimeoutMs) {
        this.lost(1006, `no traffic for ${now - this.lastRxMs} ms`, true);
        return;
      }
      next = this.o.pongTimeoutMs - waited;
    } else if (now - this.lastRxMs >= this.o.idlePingMs) {
      this.pingOut = true;
      this.pingSentMs = now;
      this.send({ type: 'ping' });
      next = this.o.pongTimeoutMs;
    } else {
      next = this.lastRxMs + this.o.idlePingMs - now;
    }
    this.timers.beat = setTimeout(() => this.beat(), next);
  }

  // -------------------------------------------------------------------------------------------------
  // Tokens

  private async getToken(fresh: boolean): Promise<string> {
    const src = this.tokenSource;
    if (typeof src === 'string') return src;
    const exp = this.tokenExpiresAtMs;
    const expired = exp !== null && exp - (Date.now() + this.skewMs) < 1000;
    if (!fresh && this.token !== null && !expired) return this.token;
    const token = await src();
    if (typeof token !== 'string' || token === '') throw new Error('the token function returned no token');
    this.token = token;
    this.tokenExpiresAtMs = null;
    return token;
  }

  /** Refreshes the token before it expires: at most `refreshBeforeMs` and a quarter of its life early. */
  private scheduleRefresh(): void {
    clearTimeout(this.timers.refresh);
    const exp = this.tokenExpiresAtMs;
    if (typeof this.tokenSource !== 'function' || exp === null) return;
    const remaining = exp - (Date.now() + this.skewMs);
    const delay = Math.max(0, remaining - Math.min(this.o.refreshBeforeMs, remaining / 4));
    this.timers.refresh = setTimeout(() => void this.refresh(), Math.min(delay, MAX_TIMER_MS));
  }

  private async refresh(): Promise<void> {
    const gen = this.generation;
    try {
      const token = await this.getToken(true);
      if (gen !== this.generation || this.phase !== 'connected') return;
      this.refreshId = this.nextId('r');
      this.send({ type: 'auth', id: this.refreshId, token });
    } catch (err) {
      if (gen === this.generation) this.refreshFailed({ code: 'client_error', message: `token function failed: ${errorText(err)}` });
    }
  }

  /** Reports a failed refresh and tries again a little later; the connection itself stays. */
  private refreshFailed(err: ServerError): void {
    this.emit('error', err);
    if (++this.refreshFailures > 3) return;
    const gen = this.generation;
    this.timers.refresh = setTimeout(() => {
      if (gen === this.generation) void this.refresh();
    }, 1000 * this.refreshFailures);
  }

  // -------------------------------------------------------------------------------------------------
  // Frames

  private nextId(prefix: string): string {
    return `${prefix}${++this.seq}`;
  }

  private send(frame: Frame): void {
    const ws = this.ws;
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(frame));
  }

  private fits(frame: Frame): boolean {
    return new TextEncoder().encode(JSON.stringify(frame)).length <= this.o.maxFrameBytes;
  }

  /**
   * `auth` names the session to resume and the position of every subscription the session holds,
   * so the edge replays from exactly there; a `ping` right behind it is answered only after the
   * resumed subscriptions were restored (requests are handled in order): that pong ends the resume.
   */
  private sendAuth(token: string): void {
    this.authId = this.nextId('a');
    const frame: Frame = { type: 'auth', id: this.authId, token };
    if (this.session !== null) frame.session_id = this.session;
    const recover: Record<string, Position> = {};
    let any = false;
    for (const sub of this.subs.values()) {
      const pos = sub.position;
      if (sub.confirmed && pos) {
        recover[sub.channel] = pos;
        any = true;
      }
    }
    if (any) frame.recover = recover;
    // Too big for the server's frame limit (a long token): resume without positions; the subscriptions
    // are then subscribed again with their own `recover` after the resume.
    if (any && !this.fits(frame)) delete frame.recover;
    this.asked.clear();
    if (frame.recover) for (const [ch, pos] of Object.entries(recover)) this.asked.set(ch, pos);
    this.send(frame);
    this.barrierId = this.nextId('b');
    this.send({ type: 'ping', id: this.barrierId });
  }

  private sendSubscribe(sub: Subscription): void {
    const asked = sub.local ? null : sub.position;
    const id = this.nextId('s');
    const frame: Frame = { type: 'subscribe', id, channel: sub.channel };
    if (Object.keys(sub.filters).length > 0) frame.filters = sub.filters;
    if (asked) frame.recover = asked;
    if (!this.fits(frame)) {
      this.subs.delete(sub.channel);
      sub.fail({ code: 'message_too_large', message: `the subscribe frame is over ${this.o.maxFrameBytes} bytes` });
      return;
    }
    this.pending.set(id, { sub, asked });
    this.send(frame);
  }

  private forget(sub: Subscription): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (this.phase !== 'connected') return;
    const id = this.nextId('u');
    this.pending.set(id, null);
    this.send({ type: 'unsubscribe', id, channel: sub.channel });
  }

  private onFrame(data: unknown): void {
    this.lastRxMs = Date.now();
    this.pingOut = false;
    if (typeof data !== 'string') return;
    let msg: Frame;
    try {
      const parsed: unknown = JSON.parse(data);
      if (typeof parsed !== 'object' || parsed === null) return;
      msg = parsed as Frame;
    } catch {
      // Not JSON: the server never sends that; nothing to deliver.
      return;
    }
    const channel = typeof msg.channel === 'string' ? msg.channel : '';
    switch (msg.type) {
      case 'auth_response':
        if (msg.id === this.authId && this.phase === 'authenticating') this.onAuth(msg);
        else if (msg.id === this.refreshId) this.onRefreshed(msg);
        return;
      case 'pong':
        if (msg.id === this.barrierId && this.phase === 'syncing') this.onResumed(msg);
        return;
      case 'subscribe_response':
        this.onSubscribed(channel, msg);
        return;
      case 'error':
        this.onError(msg);
        return;
      case 'unsubscribe_response':
        if (typeof msg.id === 'string') this.pending.delete(msg.id);
        return;
      default:
        if (UPDATE_TYPES[channel] === msg.type) this.subs.get(channel as Channel)?.update(msg);
    }
  }

  private onAuth(msg: Frame): void {
    if (msg.success === true) {
      this.user = typeof msg.user_id === 'string' ? msg.user_id : null;
      const resumed = (this.resumed = msg.resumed === true);
      // A new session holds none of our subscriptions: all of them are subscribed again.
      if (!resumed) for (const sub of this.subs.values()) sub.confirmed = false;
      this.session = typeof msg.session_id === 'string' ? msg.session_id : null;
      this.tokenExpiresAtMs = typeof msg.expires_at === 'string' ? Date.parse(msg.expires_at) || null : null;
      this.phase = 'syncing';
      this.emit('auth', this.authEvent(msg, false));
      return;
    }
    const code = typeof msg.error === 'string' ? msg.error : 'auth_failed';
    const message = typeof msg.message === 'string' ? msg.message : code;
    if ((code === 'expired_token' || code === 'invalid_token') && typeof this.tokenSource === 'function' && !this.freshTried) {
      // The cached token went stale: ask the token function for a new one, on the same connection.
      this.freshTried = true;
      const gen = this.generation;
      this.getToken(true).then(
        (token) => {
          if (gen === this.generation && this.phase === 'authenticating') this.sendAuth(token);
        },
        (err: unknown) => {
          if (gen === this.generation) this.lost(1006, `token function failed: ${errorText(err)}`, true);
        },
      );
      return;
    }
    this.emit('error', { code, message });
    // Limits and an unavailable session service pass; a token the server refuses does not.
    const transient = code === 'unavailable' || code === 'connection_limit' || code === 'rate_limited';
    this.lost(1006, `auth refused: ${code}`, transient);
  }

  private authEvent(msg: Frame, refreshed: boolean): AuthEvent {
    return {
      userId: typeof msg.user_id === 'string' ? msg.user_id : '',
      roles: Array.isArray(msg.roles) ? (msg.roles as string[]) : [],
      expiresAtMs: this.tokenExpiresAtMs,
      refreshed,
    };
  }

  private onRefreshed(msg: Frame): void {
    this.refreshId = '';
    if (msg.success === true) {
      this.refreshFailures = 0;
      this.tokenExpiresAtMs = typeof msg.expires_at === 'string' ? Date.parse(msg.expires_at) || null : null;
      this.emit('auth', this.authEvent(msg, true));
      this.scheduleRefresh();
      return;
    }
    const code = typeof msg.error === 'string' ? msg.error : 'auth_failed';
    this.refreshFailed({ code, message: typeof msg.message === 'string' ? msg.message : code });
  }

  /** The resume is complete: subscribe what the session did not give back, drop what it should not have. */
  private onResumed(msg: Frame): void {
    const serverMs = typeof msg.server_time === 'string' ? Date.parse(msg.server_time) : NaN;
    if (!Number.isNaN(serverMs)) this.skewMs = serverMs - Date.now();
    clearTimeout(this.timers.connect);
    this.phase = 'connected';
    for (const sub of this.subs.values()) if (!sub.live) this.sendSubscribe(sub);
    for (const channel of this.restored) {
      if (this.subs.has(channel as Channel)) continue;
      const id = this.nextId('u');
      this.pending.set(id, null);
      this.send({ type: 'unsubscribe', id, channel });
    }
    this.attempt = 0;
    this.authCloseRetried = false;
    this.refreshFailures = 0;
    this.setState({
      state: 'connected',
      url: this.url,
      attempt: 0,
      ...(this.session !== null ? { sessionId: this.session } : {}),
      resumed: this.resumed,
    });
    this.scheduleRefresh();
  }

  private onSubscribed(channel: string, msg: Frame): void {
    const id = msg.id;
    if (typeof id === 'string') {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (p && this.subs.get(p.sub.channel) === p.sub) p.sub.subscribed(msg, p.asked, false);
      return;
    }
    // No id: restored by the resumed session. Taken only for a subscription the session holds with
    // these very filters and whose position went out in `auth`; any other is replaced after the resume.
    if (this.phase !== 'syncing') return;
    this.restored.add(channel);
    const sub = this.subs.get(channel as Channel);
    const asked = this.asked.get(channel);
    if (sub && sub.confirmed && asked) sub.subscribed(msg, asked, true);
  }

  private onError(msg: Frame): void {
    const err: ServerError = {
      code: typeof msg.code === 'string' ? msg.code : 'error',
      message: typeof msg.message === 'string' ? msg.message : '',
    };
    const id = msg.id;
    if (typeof id === 'string') {
      if (id === this.authId && this.phase === 'authenticating') {
        this.onAuth({ success: false, error: err.code, message: err.message });
        return;
      }
      if (id === this.refreshId) {
        this.refreshId = '';
        this.refreshFailed(err);
        return;
      }
      const p = this.pending.get(id);
      if (p !== undefined) {
        this.pending.delete(id);
        if (p === null || this.subs.get(p.sub.channel) !== p.sub) return;
        if (!TRANSIENT.includes(err.code)) {
          this.subs.delete(p.sub.channel);
          p.sub.fail(err);
          return;
        }
        p.sub.report(err);
        const gen = this.generation;
        setTimeout(() => {
          if (gen === this.generation && this.phase === 'connected' && this.subs.get(p.sub.channel) === p.sub && !p.sub.live)
            this.sendSubscribe(p.sub);
        }, backoffDelayMs(2, this.o.backoffInitialMs, this.o.backoffMaxMs) + 250);
        return;
      }
    }
    if (err.code === 'rate_limited') this.resendPending();
    this.emit('error', err);
  }

  /**
   * A frame refused by the rate limit carries no id: whichever subscribe it was is sent again a
   * little later (a doubled answer is harmless: positions never move back).
   */
  private resendPending(): void {
    const gen = this.generation;
    setTimeout(() => {
      if (gen !== this.generation) return;
      for (const [id, p] of this.pending) {
        if (p === null || this.subs.get(p.sub.channel) !== p.sub || p.sub.live) continue;
        this.pending.delete(id);
        this.sendSubscribe(p.sub);
      }
    }, 1000);
  }
}
