/** A scalar attribute value: what filters match against. */
export type AttrValue = string | number | boolean;

/** Attributes of a published message (e.g. `device_id`, `severity`): the only fields filters look at. */
export type Attrs = Readonly<Record<string, AttrValue>>;

/** A position in a channel's stream: `epoch` names the stream generation, `offset` counts messages in it. */
export interface StreamPosition {
  readonly epoch: string;
  readonly offset: number;
}

/**
 * One published message as it travels through the bus to every edge.
 * `data` is the payload as JSON text: it is parsed only where a projection needs it, so the common
 * path (render as-is) never parses or re-serialises it.
 */
export interface Envelope {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  /** Publish time in milliseconds since the Unix epoch, for the publish→socket latency histogram. */
  readonly ts: number;
  readonly attrs: Attrs;
  readonly data: string;
  /**
   * The identity of the write that produced the message, where the bus has one (Redis: the publishing
   * script's server time in µs and the message's index in it, `<µs>-<i>`, carried by live and history
   * reads alike): an offset seen again with a newer write id was reused, not redelivered.
   */
  readonly writeId?: string;
}

/** What a publisher hands to the bus: the bus assigns offset, epoch and timestamp. */
export interface PublishRequest {
  readonly channel: string;
  readonly attrs: Attrs;
  /** JSON text of the payload. */
  readonly data: string;
  /**
   * Makes a retried publish safe: a publish whose key the bus still remembers for the channel is not
   * published again, and the first position is returned (printable, at most 128 characters).
   */
  readonly idempotencyKey?: string;
}

/**
 * A filter: for each attribute name, the set of accepted values (compared as strings, so `1` and `"1"`
 * match). An empty filter accepts everything.
 */
export type Filter = Readonly<Record<string, readonly string[]>>;

/** What one subscription asks for, independent of the dialect that asked. */
export interface Subscription {
  readonly channel: string;
  readonly filter: Filter;
  /** Keys of the payload to keep (e.g. telemetry metrics); `null` keeps everything. */
  readonly projection: readonly string[] | null;
  /** 0 for real-time; otherwise the conflation interval: latest message per key, flushed every interval. */
  readonly frequencyMs: number;
}

/** An authenticated principal. */
export interface Identity {
  readonly userId: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  /** Token expiry, seconds since the Unix epoch. */
  readonly exp?: number;
  /** When the token was issued, seconds since the Unix epoch (revocations compare it). */
  readonly iat?: number;
  /** The devices the token may read (its `devices` claim); absent: no device restriction. */
  readonly devices?: readonly string[];
  /** The session the token was issued for at login, if any. */
  readonly sessionId?: string;
}
