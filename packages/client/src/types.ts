/**
 * The public types of the SDK: the `valtronics` channels with their filters and update frames (seed
 * 002 plus the native `offset`/`epoch`), positions, events and the WebSocket it needs. Self-contained
 * on purpose: the SDK has no runtime dependency and its types pull in none either.
 */

/** One value or several; the server accepts both. */
export type OneOrMany<T> = T | readonly T[];

/** A device id: numbers and numeric strings match each other (`1` and `"1"`). */
export type DeviceId = number | string;

/** `"real-time"` (the default) or a conflation interval from `100ms` to `1h`. */
export type Frequency = 'real-time' | `${number}ms` | `${number}s` | `${number}m` | `${number}h`;

/** Filters of the `telemetry` channel. */
export interface TelemetryFilters {
  readonly device_id?: OneOrMany<DeviceId>;
  /** Keeps only these metrics of each update's `telemetry` map. */
  readonly metrics?: OneOrMany<string>;
  readonly frequency?: Frequency;
}

/** Filters of the `alerts` channel. */
export interface AlertFilters {
  readonly device_id?: OneOrMany<DeviceId>;
  readonly severity?: OneOrMany<string>;
  readonly alert_type?: OneOrMany<string>;
}

/** Filters of the `devices` channel. */
export interface DeviceFilters {
  readonly device_id?: OneOrMany<DeviceId>;
  /** Matched against each update's `new_status`. */
  readonly status_types?: OneOrMany<string>;
  readonly frequency?: Frequency;
}

/** A metric of the node-local `system` channel. */
export type SystemMetric = 'cpu_usage' | 'memory_usage' | 'disk_usage' | 'active_connections';

/** Filters of the `system` channel. */
export interface SystemFilters {
  readonly metrics?: OneOrMany<SystemMetric>;
  readonly frequency?: Frequency;
}

/** Fields every update carries: the channel's position of this message. */
export interface UpdateBase {
  /** Counts the channel's messages (all of them, so a filtered subscription sees gaps). */
  readonly offset: number;
  /** The channel's history generation; a new epoch means the history was reset. */
  readonly epoch: string;
}

/** One metric of a telemetry update, as the publisher sent it (`{value, unit, timestamp}` by the seed). */
export interface TelemetryMetric {
  readonly value?: unknown;
  readonly unit?: string;
  readonly timestamp?: string;
  readonly [key: string]: unknown;
}

/** A `telemetry_update` frame. */
export interface TelemetryUpdate extends UpdateBase {
  readonly type: 'telemetry_update';
  readonly channel: 'telemetry';
  readonly device_id: DeviceId | null;
  readonly telemetry: Readonly<Record<string, TelemetryMetric>>;
}

/** An `alert` frame: the seed's fields plus whatever the publisher added. */
export interface AlertUpdate extends UpdateBase {
  readonly type: 'alert';
  readonly channel: 'alerts';
  readonly alert_id?: number | string;
  readonly device_id?: DeviceId;
  readonly severity?: string;
  readonly alert_type?: string;
  readonly title?: string;
  readonly message?: string;
  readonly timestamp?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/** A `device_status_update` frame. */
export interface DeviceStatusUpdate extends UpdateBase {
  readonly type: 'device_status_update';
  readonly channel: 'devices';
  readonly device_id?: DeviceId;
  readonly old_status?: string;
  readonly new_status?: string;
  readonly timestamp?: string;
  readonly reason?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/** A `system_status_update` frame (produced by the node the client is on). */
export interface SystemStatusUpdate extends UpdateBase {
  readonly type: 'system_status_update';
  readonly channel: 'system';
  readonly metrics: Readonly<Partial<Record<SystemMetric, number>>>;
  readonly timestamp: string | null;
}

/** The filters of each channel. */
export interface ChannelFilters {
  readonly telemetry: TelemetryFilters;
  readonly alerts: AlertFilters;
  readonly devices: DeviceFilters;
  readonly system: SystemFilters;
}

/** The update frame of each channel. */
export interface ChannelUpdates {
  readonly telemetry: TelemetryUpdate;
  readonly alerts: AlertUpdate;
  readonly devices: DeviceStatusUpdate;
  readonly system: SystemStatusUpdate;
}

/** A channel name. */
export type Channel = keyof ChannelUpdates;

/** Where a subscription stands in its channel: the last message delivered to the application. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** Emitted by a subscription each time the server confirms it (first subscribe and every reconnect). */
export interface SubscribedEvent {
  /** The position delivery continues from; null on the node-local `system` channel. */
  readonly position: Position | null;
  /** True when the server gave it back from the resumed session rather than a new `subscribe`. */
  readonly restored: boolean;
}

/**
 * Emitted after every reconnect that tried to recover a subscription, and when a live update shows
 * that the channel's epoch changed. `recovered: false` means messages may have been missed: reload
 * the state the application built from this channel.
 */
export interface RecoveryEvent {
  readonly recovered: boolean;
  /** Messages replayed by the server (recovered: true); duplicates among them are dropped. */
  readonly replayed: number;
  /** The channel's history was reset (new epoch): the old position means nothing any more. */
  readonly epochChanged: boolean;
  /** The position that was asked for. */
  readonly from: Position | null;
  /** Where delivery continues from. */
  readonly position: Position | null;
}

/** An error reported by the server (`code` as in docs/errors.md) or by the SDK itself. */
export interface ServerError {
  readonly code: string;
  readonly message: string;
}

/** The connection states. */
export type ClientState = 'connecting' | 'connected' | 'disconnected';

/** A state change, with why and what happens next. */
export interface StateChange {
  readonly state: ClientState;
  /** The endpoint tried or connected to. */
  readonly url: string;
  /** Failed attempts since the last successful connection. */
  readonly attempt: number;
  /** `disconnected`: the WebSocket close code (1006 when the connection just dropped). */
  readonly code?: number;
  /** `disconnected`: why, in words. */
  readonly reason?: string;
  /** `disconnected`: milliseconds until the next attempt; null when the client will not retry. */
  readonly delayMs?: number | null;
  /** `connected`: the session id (send it back to resume on any edge). */
  readonly sessionId?: string;
  /** `connected`: whether the server resumed the previous session. */
  readonly resumed?: boolean;
}

/** A successful `auth_response`, at connect or after a token refresh on the live connection. */
export interface AuthEvent {
  readonly userId: string;
  readonly roles: readonly string[];
  /** When the token expires (ms since the epoch, server clock); null when the server did not say. */
  readonly expiresAtMs: number | null;
  /** True for a refresh on an already authenticated connection. */
  readonly refreshed: boolean;
}

/** A token, or a function that fetches a fresh one (called at connect, before expiry and on `expired_token`). */
export type TokenSource = string | (() => string | Promise<string>);

/** The part of the WHATWG `WebSocket` the SDK uses: browsers' and Node's global one, and `ws`. */
export interface WebSocketLike {
  readonly readyState: number;
  // Handlers typed loosely (`never`) so that every implementation's own event types fit; the SDK
  // reads `data` of message events and `code`/`reason` of close events, which all of them have.
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A `WebSocket` constructor (the global one, or `WebSocket` from the `ws` package). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of {@link SwitchboardClient}. */
export interface ClientOptions {
  /**
   * The endpoint, `ws://host:8000/ws` (or `wss://`); several endpoints are tried in turn, moving to
   * the next one on every reconnect.
   */
  readonly url: string | readonly string[];
  /** A token, or a function returning a fresh one. */
  readonly token: TokenSource;
  /** The WebSocket constructor; default `globalThis.WebSocket` (browsers, Node ≥ 22). Pass `ws` on Node 20. */
  readonly WebSocket?: WebSocketConstructor;
  /** First reconnect delay cap in ms (full jitter: a random delay up to the cap); default 500. */
  readonly backoffInitialMs?: number;
  /** Largest reconnect delay cap in ms; default 30000. */
  readonly backoffMaxMs?: number;
  /** Silence in ms after which the client sends a `ping`; default 15000. */
  readonly idlePingMs?: number;
  /** No traffic for this long after that ping: the connection is dead and replaced; default 10000. */
  readonly pongTimeoutMs?: number;
  /** Time in ms to open, authenticate and resubscribe before giving up on an attempt; default 15000. */
  readonly connectTimeoutMs?: number;
  /** Refresh the token this long (ms) before it expires, at most a quarter of its lifetime; default 30000. */
  readonly refreshBeforeMs?: number;
  /** The server's frame size limit in bytes (`valtronicsMaxMessageBytes`); default 1024. */
  readonly maxFrameBytes?: number;
  /** Connect at once (default); false waits for {@link SwitchboardClient.connect}. */
  readonly autoConnect?: boolean;
}
