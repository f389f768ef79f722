/**
 * One subscription: its filters, its position in the channel, and the bookkeeping that turns the
 * server's at-least-once replays into exactly-once delivery (drop by offset) and never hides a gap.
 */
import { Emitter } from './emitter.js';
import type { Channel, ChannelFilters, ChannelUpdates, Position, RecoveryEvent, ServerError, SubscribedEvent } from './types.js';

/** Events of a {@link Subscription}. */
export interface SubscriptionEvents<C extends Channel> {
  /** An update, exactly once and in offset order. */
  readonly update: ChannelUpdates[C];
  /** The server (re)confirmed the subscription. */
  readonly subscribed: SubscribedEvent;
  /** A recovery attempt's outcome, or an epoch change; `recovered: false` means: reload your state. */
  readonly recovered: RecoveryEvent;
  /** The server refused the subscription (it is then closed unless the error was transient). */
  readonly error: ServerError;
}

/** The fields of a `subscribe_response` the subscription reads. */
export interface SubscribeResponse {
  readonly epoch?: unknown;
  readonly offset?: unknown;
  readonly recovered?: unknown;
  readonly replayed?: unknown;
}

/** The fields of an update frame the subscription reads. */
export interface UpdateFrame {
  readonly offset?: unknown;
  readonly epoch?: unknown;
  readonly [key: string]: unknown;
}

/** A subscription made by `SwitchboardClient.subscribe`. */
export class Subscription<C extends Channel = Channel> extends Emitter<SubscriptionEvents<C>> {
  /**
   * Accepting updates: the server confirmed this subscription on the current connection.
   * @internal
   */
  live = false;
  /**
   * The server's session holds this subscription with these filters (so a resume may restore it).
   * @internal
   */
  confirmed = false;
  /**
   * The channel has no position (the node-local `system` channel): nothing to recover or dedupe.
   * @internal
   */
  local = false;
  private pos: Position | null = null;
  /** Replayed frames still to come after a `recovered: true` response. */
  private replayLeft = 0;
  /** The channel's top when a recovery was answered: reached once the replay is complete. */
  private replayTop: Position | null = null;
  private dropped = 0;
  private done = false;

  /** Made by `SwitchboardClient.subscribe`. */
  constructor(
    /** The channel. */
    readonly channel: C,
    /** The filters, as given. */
    readonly filters: ChannelFilters[C],
    private readonly detach: () => void,
  ) {
    super();
  }

  /** The position of the last update delivered (or of the subscription's start); null before the first confirmation. */
  get position(): Position | null {
    return this.pos;
  }

  /** Whether updates flow now (confirmed on the current connection). */
  get active(): boolean {
    return this.live;
  }

  /** Whether it was unsubscribed or refused. */
  get closed(): boolean {
    return this.done;
  }

  /** Duplicates dropped by offset so far. */
  get duplicatesDropped(): number {
    return this.dropped;
  }

  /** Ends the subscription; no update is delivered after this call. */
  unsubscribe(): void {
    if (this.done) return;
    this.done = true;
    this.live = false;
    this.detach();
  }

  /**
   * The server confirmed the subscription. `asked` is the position sent as `recover` (null for a
   * fresh subscription), `restored` says it came back with a resumed session.
   * @internal
   */
  subscribed(res: SubscribeResponse, asked: Position | null, restored: boolean): void {
    const top = typeof res.epoch === 'string' && typeof res.offset === 'number' ? { epoch: res.epoch, offset: res.offset } : null;
    const replayed = typeof res.replayed === 'number' ? res.replayed : 0;
    this.local = top === null;
    this.confirmed = !this.local;
    this.live = true;
    this.replayLeft = replayed;
    this.replayTop = null;
    // A position never moves back within an epoch: were a subscription answered twice on one
    // connection, what the first answer delivered would otherwise be delivered again.
    const prev = this.pos;
    if (res.recovered === true && asked) {
      // Everything after `asked` follows (`replayed` frames, up to and past `top`): the position moves
      // with them, and to `top` once they are all in, so a filtered subscription does not stay behind.
      this.pos = asked;
      this.raiseTo(prev);
      if (replayed === 0) this.raiseTo(top);
      else this.replayTop = top;
    } else {
      // Fresh, or not recovered: delivery starts after `top`; frames that raced the answer follow it.
      this.pos = top;
      this.raiseTo(prev);
    }
    this.emit('subscribed', { position: this.pos, restored });
    if (asked && res.recovered !== undefined) {
      const recovered = res.recovered === true;
      this.emit('recovered', {
        recovered,
        replayed: recovered ? replayed : 0,
        epochChanged: !recovered && top !== null && top.epoch !== asked.epoch,
        from: asked,
        position: this.pos,
      });
    }
  }

  /**
   * An update for this channel arrived: delivered unless it is a duplicate by offset. An update of
   * another epoch means the channel's history was reset: surfaced as a `recovered: false` event.
   * @internal
   */
  update(frame: UpdateFrame): void {
    if (!this.live) return;
    let deliver = true;
    if (!this.local && typeof frame.offset === 'number' && typeof frame.epoch === 'string') {
      const p = this.pos;
      if (p && frame.epoch === p.epoch && frame.offset <= p.offset) {
        deliver = false;
        this.dropped++;
      } else {
        const next = { epoch: frame.epoch, offset: frame.offset };
        this.pos = next;
        if (p && frame.epoch !== p.epoch)
          this.emit('recovered', { recovered: false, replayed: 0, epochChanged: true, from: p, position: next });
      }
      if (this.replayLeft > 0 && --this.replayLeft === 0) this.raiseTo(this.replayTop);
    }
    if (deliver) this.emit('update', frame as ChannelUpdates[C]);
  }

  /**
   * The connection is gone: stop accepting until the next confirmation. The position stays: it is
   * what the next connection recovers from.
   * @internal
   */
  reset(): void {
    this.live = false;
    this.replayLeft = 0;
    this.replayTop = null;
  }

  /**
   * The server refused it for good.
   * @internal
   */
  fail(err: ServerError): void {
    this.done = true;
    this.live = false;
    this.emit('error', err);
  }

  /**
   * A transient refusal: reported, and retried by the client.
   * @internal
   */
  report(err: ServerError): void {
    this.emit('error', err);
  }

  private raiseTo(top: Position | null): void {
    const p = this.pos;
    if (top && (!p || (p.epoch === top.epoch && p.offset < top.offset))) this.pos = top;
  }
}
