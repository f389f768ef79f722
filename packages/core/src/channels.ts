import { SwitchboardError } from './codes.js';

/**
 * Channel names end up inside Redis keys (`sb:{shard}:h:<channel>`), so they are restricted to a
 * conservative alphabet: no braces (they would change the Redis Cluster hash tag), no spaces or
 * control characters, bounded length.
 */
const CHANNEL_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,254}$/;

/**
 * Names that passed {@link CHANNEL_RE}: every published message is checked (by the publish API and again
 * by the bus), almost always against a handful of names, and a set lookup costs less than the regex.
 * Only names the regex accepted are ever added, so the set can never let an invalid name through.
 */
const validChannels = new Set<string>();
/** Beyond this many names the set is emptied: memory stays bounded whatever names clients send. */
const MAX_CACHED_CHANNELS = 4096;

/**
 * The error for a name that may not name a channel, or undefined when it may. It says nothing about
 * whether the channel exists. Every Bus checks names with it before they reach a key, so a dialect
 * that forgets to restrict its channels cannot make a node write into another channel's (or another
 * shard's) keys.
 */
export function channelNameError(name: string): SwitchboardError | undefined {
  if (validChannels.has(name)) return undefined;
  if (CHANNEL_RE.test(name)) {
    if (validChannels.size >= MAX_CACHED_CHANNELS) validChannels.clear();
    validChannels.add(name);
    return undefined;
  }
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
 * Bus channels already built, by dialect, tenant and name (exactly those three strings, so no two inputs
 * share an entry): publishes name the same few channels over and over. Only results that passed every
 * check are stored; {@link busChannelCount} bounds the total.
 */
const busChannels = new Map<string, Map<string, Map<string, string>>>();
let busChannelCount = 0;

/**
 * The bus channel of a dialect's channel in a tenant: `<dialect>:<tenant>:<name>`. Tenants never share a
 * bus channel, so a tenant never receives another's messages whatever a dialect does with its names.
 * Throws for a dialect or tenant that is not one segment, or a name that makes an invalid channel.
 */
export function busChannel(dialect: string, tenant: string, name: string): string {
  const byTenant = busChannels.get(dialect)?.get(tenant);
  const cached = byTenant?.get(name);
  if (cached !== undefined) return cached;
  if (!SEGMENT_RE.test(dialect)) throw new SwitchboardError('invalid_message', `"${dialect.slice(0, 64)}" is not a valid dialect name`);
  if (!SEGMENT_RE.test(tenant)) throw new SwitchboardError('invalid_message', `"${tenant.slice(0, 64)}" is not a valid tenant`);
  const channel = `${dialect}:${tenant}:${name}`;
  const err = channelNameError(channel);
  if (err) throw err;
  remember(dialect, tenant, name, byTenant, channel);
  return channel;
}

function remember(dialect: string, tenant: string, name: string, byTenant: Map<string, string> | undefined, channel: string): void {
  if (busChannelCount >= MAX_CACHED_CHANNELS) {
    busChannels.clear();
    busChannelCount = 0;
    byTenant = undefined;
  }
  if (byTenant === undefined) {
    let byDialect = busChannels.get(dialect);
    if (byDialect === undefined) busChannels.set(dialect, (byDialect = new Map<string, Map<string, string>>()));
    byTenant = new Map();
    byDialect.set(tenant, byTenant);
  }
  byTenant.set(name, channel);
  busChannelCount++;
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
