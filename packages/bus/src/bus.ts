import type { Envelope, PublishRequest, StreamPosition } from '@switchboard/core';

/** Receives envelopes of channels this node has interest in, in publish order per channel. */
export type DeliveryHandler = (batch: readonly Envelope[]) => void;

/** What the bus reports when it could not deliver something: the hub then recovers from history. */
export interface BusGap {
  /** Channels whose continuity is no longer guaranteed (all interested channels of the shard). */
  readonly channels: readonly string[];
  readonly reason: string;
}

/** Where a publish went: its position; `duplicate` when its idempotency key named an earlier publish. */
export interface PublishResult extends StreamPosition {
  /** True when nothing was published: the idempotency key was remembered, and this is the first position. */
  readonly duplicate?: boolean;
}

/** Answer of {@link Bus.history}. */
export interface HistoryResult {
  /**
   * True when `messages` holds every message after the requested position (possibly none). False when
   * the epoch changed or the history no longer reaches back: then `messages` is empty.
   */
  readonly recovered: boolean;
  readonly messages: readonly Envelope[];
  /** The channel's position after the last message in `messages` (or its current top when none). */
  readonly position: StreamPosition;
}

/**
 * The fan-out seam: publish envelopes to channels and deliver those of interested channels to this
 * node, with per-channel offsets, epochs and history for recovery.
 */
export interface Bus {
  /**
   * Publishes one message; resolves with the position the bus assigned to it. A message whose
   * idempotency key the bus still remembers (for the channel) is not published again: the first
   * position comes back, marked `duplicate`.
   */
  publish(req: PublishRequest): Promise<PublishResult>;
  /** Publishes many messages (pipelined); results in the same order. Order per channel is kept. */
  publishBatch(reqs: readonly PublishRequest[]): Promise<PublishResult[]>;
  /** Sets the one handler that receives deliveries. */
  onDeliver(handler: DeliveryHandler): void;
  /** Sets the handler told about delivery gaps the bus could not avoid. */
  onGap(handler: (gap: BusGap) => void): void;
  /**
   * Adds interest in a channel. Once it resolves, every message published to the channel after a
   * subsequent {@link position} or {@link history} answer is delivered.
   */
  subscribe(channel: string): Promise<void>;
  /** Drops interest in a channel. */
  unsubscribe(channel: string): Promise<void>;
  /** The channel's current position (creates the channel's epoch when it has none yet). */
  position(channel: string): Promise<StreamPosition>;
  /**
   * The channel's epoch `epoch` reused offsets (a failover lost acknowledged writes): starts a new epoch
   * unless the channel already moved on, so no position of the abandoned one is recovered from messages
   * it did not name. Resolves with the channel's position afterwards.
   */
  abandonEpoch(channel: string, epoch: string): Promise<StreamPosition>;
  /** Messages published after `since`, in order, or `recovered:false` when that is impossible. */
  history(channel: string, since: StreamPosition, limit?: number): Promise<HistoryResult>;
  /** Whether the backend is reachable (for `/readyz`). */
  ready(): boolean;
  /** Stops delivery and releases connections. */
  close(): Promise<void>;
}

/** History settings shared by the implementations. */
export interface HistoryOptions {
  /** Messages kept per channel (0: no history; recovery then only succeeds when nothing was missed). */
  readonly historySize: number;
  /** Seconds a channel's history and epoch live after its last publish. */
  readonly historyTtlSec: number;
}
