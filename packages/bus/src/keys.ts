/** Shards and Redis key names of the Redis Streams bus (DESIGN §4): shared by everything that writes its streams. */
import calculateSlot from 'cluster-key-slot';

/** FNV-1a over the channel name: stable across processes and versions, cheap, well spread. */
export function shardOf(channel: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) {
    h ^= channel.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/** The Redis keys of a shard and channel. */
export const keys = {
  feed: (s: number) => `sb:{${s}}:feed`,
  meta: (s: number, channel: string) => `sb:{${s}}:meta:${channel}`,
  history: (s: number, channel: string) => `sb:{${s}}:h:${channel}`,
  /** A remembered idempotency key of a publish to the channel (value: its first position). */
  idempotency: (s: number, channel: string, key: string) => `sb:{${s}}:idem:${channel}:${key}`,
};

/** Compares stream ids `ms-seq`; negative when a < b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const dm = Number(am) - Number(bm);
  return dm !== 0 ? dm : Number(as) - Number(bs);
}

/** The Redis Cluster hash slot of a key (honours its `{s}` hash tag): which master holds a shard. */
export function slotOfKey(key: string): number {
  return calculateSlot(key);
}
