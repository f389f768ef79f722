import { channelNameError, idempotencyKeyError, wallClockMs, type Envelope, type PublishRequest, type StreamPosition } from '@switchboard/core';
import type { Bus, BusGap, DeliveryHandler, HistoryOptions, HistoryResult, PublishResult } from './bus.js';
import { newEpoch } from './epoch.js';

interface ChannelState {
  epoch: string;
  offset: number;
  /** Oldest first; at most `historySize` long. */
  history: Envelope[];
  expiresAtMs: number;
}

/**
 * The in-process broker that {@link MemoryBus} nodes share: what Redis is to the Redis bus. One broker
 * per process; `switchboard start` without `REDIS_URL` uses it.
 */
export class MemoryBroker {
  private readonly channels = new Map<string, ChannelState>();
  private readonly nodes = new Set<MemoryBus>();
  /** Remembered idempotency keys, `<channel>\n<key>` → first position and when it is forgotten. */
  private readonly idempotency = new Map<string, { readonly position: StreamPosition; readonly expiresAtMs: number }>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(readonly options: HistoryOptions & { readonly idempotencyWindowSec?: number }) {
    // Expired channels would otherwise keep their history forever.
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), 10_000);
    this.sweepTimer.unref();
  }

  /** A new node on this broker. */
  node(): MemoryBus {
    const bus = new MemoryBus(this);
    this.nodes.add(bus);
    return bus;
  }

  /** @internal */
  detach(node: MemoryBus): void {
    this.nodes.delete(node);
  }

  /** @internal Looks up a channel, dropping it when its TTL passed, creating it when asked. */
  state(channel: string, nowMs: number, create: boolean): ChannelState | undefined {
    let st = this.channels.get(channel);
    if (st && st.expiresAtMs <= nowMs) {
      this.channels.delete(channel);
      st = undefined;
    }
    if (!st && create) {
      st = { epoch: newEpoch(), offset: 0, history: [], expiresAtMs: nowMs + this.options.historyTtlSec * 1000 };
      this.channels.set(channel, st);
    }
    return st;
  }

  /** @internal */
  append(req: PublishRequest): Envelope {
    const nowMs = wallClockMs();
    const st = this.state(req.channel, nowMs, true)!;
    st.offset += 1;
    st.expiresAtMs = nowMs + this.options.historyTtlSec * 1000;
    const env: Envelope = { channel: req.channel, offset: st.offset, epoch: st.epoch, ts: nowMs, attrs: req.attrs, data: req.data };
    if (this.options.historySize > 0) {
      st.history.push(env);
      // Trimmed a quarter past its size, not on every message: a splice copies the whole history, and
      // history() never reaches back further than historySize anyway.
      const keep = this.options.historySize;
      if (st.history.length > keep + (keep >> 2)) st.history.splice(0, st.history.length - keep);
    }
    for (const node of this.nodes) node.offer(env);
    return env;
  }

  /**
   * @internal A publish: the first position again (duplicate) when its idempotency key is remembered,
   * else appended, and its key remembered for the window.
   */
  publish(req: PublishRequest): PublishResult {
    const nowMs = wallClockMs();
    const key = req.idempotencyKey === undefined ? null : `${req.channel}\n${req.idempotencyKey}`;
    if (key !== null) {
      const prev = this.idempotency.get(key);
      if (prev && prev.expiresAtMs > nowMs) return { ...prev.position, duplicate: true };
    }
    const env = this.append(req);
    const position = { epoch: env.epoch, offset: env.offset };
    if (key !== null) this.idempotency.set(key, { position, expiresAtMs: nowMs + (this.options.idempotencyWindowSec ?? 300) * 1000 });
    return position;
  }

  /** @internal Starts a new epoch of `channel` when it is still at `epoch` (see `Bus.abandonEpoch`). */
  abandon(channel: string, epoch: string, nowMs: number): StreamPosition {
    const st = this.state(channel, nowMs, false);
    if (st && st.epoch === epoch) this.channels.delete(channel);
    const now = this.state(channel, nowMs, true)!;
    return { epoch: now.epoch, offset: now.offset };
  }

  /** Drops every channel (tests use it to simulate a backend that lost its data). */
  flush(): void {
    this.channels.clear();
  }

  private sweep(nowMs: number): void {
    for (const [name, st] of this.channels) if (st.expiresAtMs <= nowMs) this.channels.delete(name);
    for (const [key, rec] of this.idempotency) if (rec.expiresAtMs <= nowMs) this.idempotency.delete(key);
  }

  /** Stops the broker's timer. */
  close(): void {
    clearInterval(this.sweepTimer);
  }
}

/**
 * One node's view of a {@link MemoryBroker}: interest, and deliveries batched per microtask so the hub
 * sees batches as it does with Redis.
 */
export class MemoryBus implements Bus {
  private readonly interest = new Set<string>();
  private handler: DeliveryHandler | null = null;
  private pending: Envelope[] = [];
  private scheduled = false;
  private closed = false;

  /** @internal use {@link MemoryBroker.node} */
  constructor(private readonly broker: MemoryBroker) {}

  /** @internal called by the broker for every published envelope. */
  offer(env: Envelope): void {
    if (this.closed || !this.interest.has(env.channel)) return;
    this.pending.push(env);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (this.handler && batch.length > 0 && !this.closed) this.handler(batch);
  };

  publish(req: PublishRequest): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new Error('bus closed'));
    const bad = channelNameError(req.channel) ?? (req.idempotencyKey !== undefined ? idempotencyKeyError(req.idempotencyKey) : undefined);
    if (bad) return Promise.reject(bad);
    return Promise.resolve(this.broker.publish(req));
  }

  publishBatch(reqs: readonly PublishRequest[]): Promise<PublishResult[]> {
    if (this.closed) return Promise.reject(new Error('bus closed'));
    for (const r of reqs) {
      const bad = channelNameError(r.channel) ?? (r.idempotencyKey !== undefined ? idempotencyKeyError(r.idempotencyKey) : undefined);
      if (bad) return Promise.reject(bad);
    }
    return Promise.resolve(reqs.map((r) => this.broker.publish(r)));
  }

  onDeliver(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  onGap(_handler: (gap: BusGap) => void): void {
    // An in-process broker never loses a delivery: there is no gap to report.
  }

  subscribe(channel: string): Promise<void> {
    const bad = channelNameError(channel);
    if (bad) return Promise.reject(bad);
    this.interest.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.interest.delete(channel);
    return Promise.resolve();
  }

  position(channel: string): Promise<StreamPosition> {
    const bad = channelNameError(channel);
    if (bad) return Promise.reject(bad);
    const st = this.broker.state(channel, Date.now(), true)!;
    return Promise.resolve({ epoch: st.epoch, offset: st.offset });
  }

  abandonEpoch(channel: string, epoch: string): Promise<StreamPosition> {
    const bad = channelNameError(channel);
    if (bad) return Promise.reject(bad);
    return Promise.resolve(this.broker.abandon(channel, epoch, Date.now()));
  }

  history(channel: string, since: StreamPosition, limit = Number.MAX_SAFE_INTEGER): Promise<HistoryResult> {
    const bad = channelNameError(channel);
    if (bad) return Promise.reject(bad);
    const st = this.broker.state(channel, Date.now(), true)!;
    const top = { epoch: st.epoch, offset: st.offset };
    if (since.epoch !== st.epoch || since.offset > st.offset)
      return Promise.resolve({ recovered: false, messages: [], position: top });
    if (since.offset === st.offset) return Promise.resolve({ recovered: true, messages: [], position: top });
    const oldest = st.history[0]?.offset ?? st.offset + 1;
    const missing = st.offset - since.offset;
    if (since.offset + 1 < oldest || missing > limit || missing > this.broker.options.historySize)
      return Promise.resolve({ recovered: false, messages: [], position: top });
    const messages = st.history.slice(since.offset + 1 - oldest);
    return Promise.resolve({ recovered: true, messages, position: top });
  }

  ready(): boolean {
    return !this.closed;
  }

  close(): Promise<void> {
    this.closed = true;
    this.interest.clear();
    this.pending = [];
    this.broker.detach(this);
    return Promise.resolve();
  }
}
