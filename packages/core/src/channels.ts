import { SwitchboardError } from './codes.js';

/**
 * Channel names end up inside Redis keys (`sb:{shard}:h:<channel>`), so they are restricted to a
 * conservative alphabet: no braces (they would change the Redis Cluster hash tag), no spaces or
 * control characters, bounded length.
 */
const CHANNEL_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$/;

/**
 * The error for a name that may not name a channel, or undefined when it may. It says nothing about
 * whether the channel exists. Every Bus checks names with it before they reach a key, so a dialect
 * that forgets to restrict its channels cannot make a node write into another channel's (or another
 * shard's) keys.
 */
export function channelNameError(name: string): SwitchboardError | undefined {
  if (CHANNEL_RE.test(name)) return undefined;
  return new SwitchboardError('invalid_message', `"${name.slice(0, 64)}" is not a valid channel name`);
}
