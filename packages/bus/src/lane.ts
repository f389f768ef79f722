/**
 * A reading loop of the Redis Streams bus: one blocking connection and the shard feeds it reads together
 * (standalone Redis: one lane for every shard; a cluster: one per shard). The lane only reads; what it
 * reads, and what happens on a reconnect or an error, is up to its {@link LaneHost}.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '@switchboard/core';
import { keys } from './keys.js';

/** What a lane needs from the bus that owns it. */
export interface LaneHost {
  readonly log: Logger;
  readonly readCount: number;
  readonly blockMs: number;
  /** Turns an XREAD reply into deliveries; updates the lane's positions. */
  ingest(lane: Lane, reply: [Buffer, [Buffer, Buffer[]][]][]): void;
  /** The lane was away (a reconnect or an error): report gaps of the shards it reads. */
  checkGaps(shards: readonly number[], positions: ReadonlyMap<number, string>): Promise<void>;
  /** Counts a reconnect of a lane. */
  reconnected(): void;
  /** A read failed; the lane retries after a short pause. */
  readFailed(lane: Lane, err: unknown): void;
  /** After a failed read: follow the lane's shard if it moved to another node (cluster). */
  relocate(lane: Lane): Promise<void>;
  /** Wakes a blocked XREAD (CLIENT UNBLOCK) so its lane picks up a new read set. */
  unblock(clientId: number): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a lane waits after a read that was not full before reading again (see the loop). */
const READ_COALESCE_MS = 1;

/**
 * One reading loop: a blocking connection and the shards it reads together. Standalone Redis has one
 * lane for every shard; a cluster has one per shard.
 */
export class Lane {
  /** Shard → id of the last entry read. */
  readonly shards = new Map<number, string>();
  private clientId: number | null = null;
  private generation = 0;
  private readingGeneration = -1;
  private wake: (() => void) | null = null;
  private stopped = false;
  private failed = false;

  constructor(
    private readonly host: LaneHost,
    private conn: Redis,
    readonly name: string,
  ) {
    this.watch(conn);
  }

  /** Any drop of the connection means the loop was away: it must check for gaps when it is back. */
  private watch(conn: Redis): void {
    conn.on('close', () => {
      this.clientId = null;
      this.failed = true;
    });
  }

  start(): void {
    this.loop().catch((err: unknown) => this.host.log.error({ err, lane: this.name }, 'reader loop crashed'));
  }

  add(shard: number, startId: string): void {
    this.shards.set(shard, startId);
    this.changed();
  }

  remove(shard: number): void {
    this.shards.delete(shard);
    this.changed();
  }

  stop(): void {
    this.stopped = true;
    this.changed();
    this.conn.disconnect();
  }

  /** The read set changed: wake the loop, or unblock its XREAD so it re-reads with the new set. */
  private changed(): void {
    this.generation++;
    if (this.wake) {
      const w = this.wake;
      this.wake = null;
      w();
      return;
    }
    this.unblock(0);
  }

  private unblock(attempt: number): void {
    if (this.readingGeneration < 0 || this.readingGeneration === this.generation || this.clientId === null) return;
    this.host.unblock(this.clientId);
    // The XREAD may not have reached Redis yet when UNBLOCK did: try again shortly while still stale.
    if (attempt < 5) setTimeout(() => this.unblock(attempt + 1), 20 * (attempt + 1)).unref();
  }

  private async loop(): Promise<void> {
    // The XREAD arguments before the ids, rebuilt only when the read set changes: with many shards they are
    // most of each call, and a busy lane calls it thousands of times a second.
    let builtGeneration = -1;
    let head: (string | Buffer | number)[] = [];
    let order: number[] = [];
    let coalesce = false;
    while (!this.stopped) {
      // A read that came back with less than a full count from every stream was answered at once, with what had arrived
      // by then: waiting a moment before the next one lets a busy feed be read in batches instead of a few
      // entries per call (each call costs a command over every shard, on both sides). An idle feed still
      // blocks in Redis and is answered the moment an entry comes.
      if (coalesce) {
        coalesce = false;
        await sleep(READ_COALESCE_MS);
      }
      if (this.shards.size === 0) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      if (builtGeneration !== this.generation) {
        builtGeneration = this.generation;
        head = ['COUNT', this.host.readCount, 'BLOCK', this.host.blockMs, 'STREAMS'];
        order = [];
        for (const shard of this.shards.keys()) {
          head.push(Buffer.from(keys.feed(shard)));
          order.push(shard);
        }
      }
      const args: (string | Buffer | number)[] = head.slice();
      for (let i = 0; i < order.length; i++) args.push(this.shards.get(order[i]!) ?? '$');
      try {
        if (this.clientId === null) this.clientId = Number(await this.conn.client('ID'));
        if (this.failed) {
          this.failed = false;
          this.host.reconnected();
          await this.host.checkGaps(order.filter((s) => this.shards.has(s)), this.shards);
        }
        this.readingGeneration = this.generation;
        const reply = (await this.conn.callBuffer('XREAD', ...args)) as [Buffer, [Buffer, Buffer[]][]][] | null;
        this.readingGeneration = -1;
        if (this.failed) {
          // The connection dropped and came back while this XREAD was queued or running.
          this.failed = false;
          this.host.reconnected();
          await this.host.checkGaps(order.filter((s) => this.shards.has(s)), this.shards);
        }
        coalesce = false;
        if (reply) {
          // COUNT is per stream: a read is full when any of its streams filled it.
          coalesce = true;
          for (let i = 0; i < reply.length; i++) if (reply[i]![1].length >= this.host.readCount) coalesce = false;
          this.host.ingest(this, reply);
        }
      } catch (err) {
        this.readingGeneration = -1;
        if (this.stopped) break;
        this.failed = true;
        this.clientId = null;
        this.host.readFailed(this, err);
        await sleep(200);
        await this.host.relocate(this);
      }
    }
  }

  /** Replaces the connection (cluster: the slot moved to another master). */
  replaceConnection(conn: Redis): void {
    this.conn.disconnect();
    this.conn = conn;
    this.clientId = null;
    this.watch(conn);
  }

  /** The blocking connection this lane reads on. */
  get connection(): Redis {
    return this.conn;
  }
}
