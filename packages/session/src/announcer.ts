/**
 * Announces revocations to the edges (their control channel) and retries the announcements that fail,
 * with backoff, for a bounded time and a bounded queue. The announcement is the fast path: retrying it
 * makes a short Redis outage cost seconds, not a missed close. What it gives up on (too old, queue full)
 * still reaches every edge through their poll of the revocation log (`SessionApi.revocationsSince`).
 */
import type { Logger } from '@switchboard/core';

/** Retry settings of a {@link RevocationAnnouncer}. */
export interface AnnouncerOptions {
  /** Delay before the first retry; doubles after each failed round, up to `maxDelayMs`. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
  /** A key still not announced this long after its first attempt is given up. */
  readonly giveUpAfterMs: number;
  /** Most keys waiting for a retry; beyond it the oldest are given up. */
  readonly maxQueued: number;
}

/** The service's retry settings: retries for a minute, 0.2 s to 5 s apart, at most 10 000 keys waiting. */
export const ANNOUNCE_RETRY: AnnouncerOptions = { firstDelayMs: 200, maxDelayMs: 5000, giveUpAfterMs: 60_000, maxQueued: 10_000 };

/** Keys per retried announcement: what an edge reads of one revocation message. */
const MAX_KEYS_PER_ANNOUNCEMENT = 1000;

/** Sends one announcement; rejects when it was not published. */
export type AnnounceFn = (keys: readonly string[]) => Promise<void>;

/** Announces revocations, retrying the failed ones in the background. */
export class RevocationAnnouncer {
  private queue: { readonly key: string; readonly firstMs: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private delayMs: number;
  private retrying = false;

  constructor(
    private readonly send: AnnounceFn,
    private readonly log: Logger,
    private readonly o: AnnouncerOptions = ANNOUNCE_RETRY,
    private readonly now: () => number = Date.now,
  ) {
    this.delayMs = o.firstDelayMs;
  }

  /** Keys waiting for a retry. */
  get pending(): number {
    return this.queue.length;
  }

  /** Announces `keys` once now; a failure is queued for retries, never thrown. */
  async announce(keys: readonly string[]): Promise<void> {
    try {
      await this.send(keys);
    } catch (err) {
      this.log.warn({ err, keys: keys.length }, 'revocation not announced to the edges; retrying');
      this.enqueue(keys);
    }
  }

  /** Stops retrying; what waits is dropped (the edges' poll still delivers it). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
  }

  private enqueue(keys: readonly string[]): void {
    const firstMs = this.now();
    for (const key of keys) this.queue.push({ key, firstMs });
    const over = this.queue.length - this.o.maxQueued;
    if (over > 0) {
      this.queue.splice(0, over);
      this.log.warn({ dropped: over }, 'revocation retry queue full: the oldest are left to the edges’ poll');
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.retrying || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.retry();
    }, this.delayMs);
    this.timer.unref();
  }

  /** One round: announces what waits, in order, until one announcement fails. */
  private async retry(): Promise<void> {
    this.retrying = true;
    try {
      const cutoff = this.now() - this.o.giveUpAfterMs;
      const expired = this.queue.findIndex((e) => e.firstMs > cutoff);
      const stale = expired < 0 ? this.queue.length : expired;
      if (stale > 0) {
        this.queue.splice(0, stale);
        this.log.warn({ dropped: stale }, 'revocations not announced in time: left to the edges’ poll');
      }
      while (this.queue.length > 0) {
        const batch = this.queue.slice(0, MAX_KEYS_PER_ANNOUNCEMENT);
        try {
          await this.send(batch.map((e) => e.key));
        } catch (err) {
          this.delayMs = Math.min(this.o.maxDelayMs, this.delayMs * 2);
          this.log.warn({ err, pending: this.queue.length, nextRetryMs: this.delayMs }, 'revocation announcement retry failed');
          return;
        }
        // Only what was sent leaves the queue (a full queue may have dropped some of it meanwhile).
        const sent = new Set(batch);
        this.queue = this.queue.filter((e) => !sent.has(e));
        this.log.info({ keys: batch.length }, 'revocation announced after a retry');
      }
      this.delayMs = this.o.firstDelayMs;
    } finally {
      this.retrying = false;
      this.schedule();
    }
  }
}
