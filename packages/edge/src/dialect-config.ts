/**
 * The options every dialect has (its port, message size and rate, backpressure, idle and auth deadlines):
 * each dialect's config section starts with them, env `<DIALECT>_<OPTION>`, falling back to the core
 * option of the same meaning when that is set, else to the dialect's own default.
 */
import { configSchemas, defineConfigSection, sectionOption, type CONFIG_SPEC, type Config, type ConfigSection, type OptionSpecs } from '@switchboard/core';
import { z } from 'zod';

const { int } = configSchemas;

/** The limits a dialect runs under on one edge. */
export interface DialectLimits {
  /** Its own listener port (where it owns `/`); undefined: only under its prefix on the main port. */
  readonly port: number | undefined;
  /** Largest message answered normally; a larger one gets the dialect's "too large" error. */
  readonly maxMessageBytes: number;
  /** uWS's hard frame limit: a larger frame drops the connection natively (clients see 1006). */
  readonly maxFrameBytes: number;
  readonly messagesPerSec: number;
  readonly messagesBurst: number;
  readonly maxSubscriptionsPerConnection: number;
  /** A connection not authenticated within this is closed with 4001; 0: no deadline (anonymous sessions). */
  readonly authTimeoutMs: number;
  readonly maxBackpressureBytes: number;
  /** uWS idle timeout (protocol pings keep live clients under it); 0 disables it. */
  readonly idleTimeoutSec: number;
  /** A connection that sent nothing for this long is closed (application-level keep-alive); 0: never. */
  readonly silenceTimeoutMs: number;
}

type StandardKey = Exclude<keyof DialectLimits, never>;

/** The standard options of a dialect section, with the dialect's own defaults where it has them. */
function standardOptions(prefix: string, name: string, defaults: Partial<DialectLimits>) {
  const d = <K extends StandardKey>(k: K): DialectLimits[K] | undefined => defaults[k];
  return {
    port: sectionOption({
      schema: int(0, 65535).optional(),
      env: `${prefix}_PORT`,
      type: 'integer',
      default: d('port'),
      doc: `A listener of its own for \`${name}\`, where it owns \`/\` (unset: only under its prefix on the main port).`,
    }),
    maxMessageBytes: sectionOption({
      schema: int(64, 16 * 1024 * 1024),
      env: `${prefix}_MAX_MESSAGE_BYTES`,
      type: 'integer (bytes)',
      default: d('maxMessageBytes') as number,
      doc: `Largest \`${name}\` client message; a larger one gets the dialect's "too large" error, the connection stays open.`,
    }),
    maxFrameBytes: sectionOption({
      schema: int(1024, 16 * 1024 * 1024),
      env: `${prefix}_MAX_FRAME_BYTES`,
      type: 'integer (bytes)',
      default: d('maxFrameBytes') as number,
      doc: `Hard limit on one \`${name}\` frame: uWebSockets.js drops the connection on a larger one (clients see 1006).`,
    }),
    messagesPerSec: sectionOption({
      schema: int(1),
      env: `${prefix}_MESSAGES_PER_SEC`,
      type: 'integer',
      default: d('messagesPerSec') as number,
      doc: `Messages per second per \`${name}\` connection (token bucket); excess gets the dialect's rate-limit error.`,
    }),
    messagesBurst: sectionOption({
      schema: int(1),
      env: `${prefix}_MESSAGES_BURST`,
      type: 'integer',
      default: d('messagesBurst') as number,
      doc: `Bucket size of the \`${name}\` message rate limit.`,
    }),
    maxSubscriptionsPerConnection: sectionOption({
      schema: int(1),
      env: `${prefix}_MAX_SUBSCRIPTIONS_PER_CONNECTION`,
      type: 'integer',
      default: d('maxSubscriptionsPerConnection') as number,
      doc: `Most subscriptions one \`${name}\` connection may hold.`,
    }),
    authTimeoutMs: sectionOption({
      schema: int(0),
      env: `${prefix}_AUTH_TIMEOUT_MS`,
      type: 'integer (ms)',
      default: d('authTimeoutMs') as number,
      doc: `A \`${name}\` connection not authenticated within this is closed with 4001 (0: no deadline).`,
    }),
    maxBackpressureBytes: sectionOption({
      schema: int(1024),
      env: `${prefix}_MAX_BACKPRESSURE_BYTES`,
      type: 'integer (bytes)',
      default: d('maxBackpressureBytes') as number,
      doc: `Send buffer per \`${name}\` connection; past it the client is closed with 4008 (slow consumer).`,
    }),
    idleTimeoutSec: sectionOption({
      schema: int(0, 960),
      env: `${prefix}_IDLE_TIMEOUT_SEC`,
      type: 'integer (s)',
      default: d('idleTimeoutSec') as number,
      doc: `WebSocket idle timeout of \`${name}\` connections (the server sends protocol pings; 0 disables it).`,
    }),
    silenceTimeoutMs: sectionOption({
      schema: int(0),
      env: `${prefix}_SILENCE_TIMEOUT_MS`,
      type: 'integer (ms)',
      default: d('silenceTimeoutMs') ?? 0,
      doc: `Close a \`${name}\` connection that sent nothing for this long (0: never).`,
    }),
  } satisfies OptionSpecs;
}

/** The standard options' fallbacks to core options of the same meaning. */
const FALLBACK = {
  maxMessageBytes: 'maxMessageBytes',
  maxFrameBytes: 'maxPayloadBytes',
  messagesPerSec: 'messagesPerSec',
  messagesBurst: 'messagesBurst',
  maxSubscriptionsPerConnection: 'maxSubscriptionsPerConnection',
  authTimeoutMs: 'authTimeoutMs',
  maxBackpressureBytes: 'maxBackpressureBytes',
  idleTimeoutSec: 'idleTimeoutSec',
} as const;

/** A dialect's config section: the standard options plus its own. */
export type DialectConfigSection = ConfigSection;

/**
 * Declares a dialect's config section: `defaults` for the standard options, `options` of its own.
 * `ownDefaults` lists standard options whose default is a property of the protocol rather than a tuning
 * (an auth deadline of 0 for a dialect with anonymous sessions): they never follow the core option, only
 * the dialect's own env var changes them.
 */
export function dialectSection<E extends OptionSpecs>(args: {
  name: string;
  title: string;
  defaults?: Partial<DialectLimits>;
  ownDefaults?: readonly (keyof typeof FALLBACK)[];
  options?: E;
}): ConfigSection<ReturnType<typeof standardOptions> & E> {
  const prefix = args.name.toUpperCase();
  type All = ReturnType<typeof standardOptions> & E;
  const options = { ...standardOptions(prefix, args.name, args.defaults ?? {}), ...(args.options ?? {}) } as All;
  const fallback: Partial<Record<string, keyof typeof CONFIG_SPEC>> = { ...FALLBACK };
  for (const key of args.ownDefaults ?? []) {
    if (args.defaults?.[key] === undefined) throw new Error(`dialect ${args.name}: ${key} is listed in ownDefaults but has no default`);
    delete fallback[key];
  }
  return defineConfigSection<All>({ name: args.name, title: args.title, options, fallback: fallback as Partial<Record<keyof All, keyof typeof CONFIG_SPEC>> });
}

/** The standard limits of a dialect in a configuration. */
export function dialectLimits(section: DialectConfigSection, config: Config): DialectLimits {
  const v = section.of(config) as Record<string, unknown>;
  const num = (k: StandardKey) => v[k] as number;
  return {
    port: v.port as number | undefined,
    maxMessageBytes: num('maxMessageBytes'),
    maxFrameBytes: Math.max(num('maxFrameBytes'), num('maxMessageBytes')),
    messagesPerSec: num('messagesPerSec'),
    messagesBurst: num('messagesBurst'),
    maxSubscriptionsPerConnection: num('maxSubscriptionsPerConnection'),
    authTimeoutMs: num('authTimeoutMs'),
    maxBackpressureBytes: num('maxBackpressureBytes'),
    idleTimeoutSec: num('idleTimeoutSec'),
    silenceTimeoutMs: num('silenceTimeoutMs'),
  };
}

/** Re-exported so dialect folders declare their own options with the same helpers. */
export { sectionOption, configSchemas, z };
