/**
 * Channel names end up inside Redis keys (`sb:{shard}:h:<channel>`), so they are restricted to a
 * conservative alphabet: no braces (they would change the Redis Cluster hash tag), no spaces or
 * control characters, bounded length.
 */
const CHANNEL_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$/;

/** True when `name` is syntactically a channel name. It says nothing about whether the channel exists. */
export function isValidChannelName(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_RE.test(name);
}

/**
 * An allow-list of channels: exact names and `prefix*` patterns. Only channels it accepts may name a
 * Redis key or be published to.
 */
export class ChannelAllowList {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(patterns: Iterable<string>) {
    for (const p of patterns) {
      if (p.endsWith('*')) this.prefixes.push(p.slice(0, -1));
      else this.exact.add(p);
    }
  }

  /** True when `name` is a valid channel name accepted by one of the patterns. */
  allows(name: unknown): name is string {
    if (!isValidChannelName(name)) return false;
    if (this.exact.has(name)) return true;
    for (const p of this.prefixes) if (name.startsWith(p) && name.length > p.length) return true;
    return false;
  }
}
