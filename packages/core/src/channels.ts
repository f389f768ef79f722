import { SwitchboardError } from './codes.js';

/**
 * Channel names end up inside Redis keys (`sb:{shard}:h:<channel>`), so they are restricted to a
 * conservative alphabet: no braces (they would change the Redis Cluster hash tag), no spaces or
 * control characters, bounded length.
 */
const CHANNEL_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,254}$/;

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

/** The tenant of a connection whose token names none. */
export const DEFAULT_TENANT = 'default';

/** Tenants and dialect names are one segment of a bus channel name: no `:` inside. */
const SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/** True when `tenant` may name a tenant (a Fleet Freedom company, a Good Uncle account, a token's `tenant`). */
export function isValidTenant(tenant: unknown): tenant is string {
  return typeof tenant === 'string' && SEGMENT_RE.test(tenant);
}

/**
 * The bus channel of a dialect's channel in a tenant: `<dialect>:<tenant>:<name>`. Tenants never share a
 * bus channel, so a tenant never receives another's messages whatever a dialect does with its names.
 * Throws for a dialect or tenant that is not one segment, or a name that makes an invalid channel.
 */
export function busChannel(dialect: string, tenant: string, name: string): string {
  if (!SEGMENT_RE.test(dialect)) throw new SwitchboardError('invalid_message', `"${dialect.slice(0, 64)}" is not a valid dialect name`);
  if (!SEGMENT_RE.test(tenant)) throw new SwitchboardError('invalid_message', `"${tenant.slice(0, 64)}" is not a valid tenant`);
  const channel = `${dialect}:${tenant}:${name}`;
  const err = channelNameError(channel);
  if (err) throw err;
  return channel;
}

/** The parts of a bus channel name made by {@link busChannel}, or null for any other name. */
export function splitBusChannel(channel: string): { dialect: string; tenant: string; name: string } | null {
  const a = channel.indexOf(':');
  const b = a < 0 ? -1 : channel.indexOf(':', a + 1);
  if (a <= 0 || b <= a + 1 || b === channel.length - 1) return null;
  return { dialect: channel.slice(0, a), tenant: channel.slice(a + 1, b), name: channel.slice(b + 1) };
}

/** Idempotency keys name Redis keys too: printable ASCII without spaces, 1 to 128 characters. */
const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,128}$/;

/** The error for a value that may not be an idempotency key, or undefined when it may. */
export function idempotencyKeyError(key: unknown): SwitchboardError | undefined {
  if (typeof key === 'string' && IDEMPOTENCY_KEY_RE.test(key)) return undefined;
  return new SwitchboardError('invalid_message', 'an idempotency key is 1 to 128 printable ASCII characters without spaces');
}
