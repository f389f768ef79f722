import { loadOptions, type AttrValue } from '@switchboard/core';
import { DIALECTS, parseApiKey } from '@switchboard/edge';
import { CallError, describeRefusal, postJson } from '../http-call.js';
import type { CliIo } from '../main.js';
import { UsageError } from '../spec.js';

/** Arguments of `switchboard publish`. */
export interface PublishArgs {
  readonly channel: string;
  /** The dialect whose channel this is. */
  readonly dialect: string;
  /** The tenant (the API's default, or the key's only tenant, when absent). */
  readonly tenant: string | undefined;
  readonly data: string;
  readonly attrs: readonly string[];
  readonly url: string;
  /** From `--api-key` or `SWITCHBOARD_API_KEY`; else the first configured key. */
  readonly apiKey: string | undefined;
}

const NUMBER_RE = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/** Parses `k=v` pairs; values that look like numbers become numbers. */
export function parseAttrArgs(pairs: readonly string[]): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--attr "${pair}" is not key=value`, 'publish');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    attrs[key] = NUMBER_RE.test(value) ? Number(value) : value;
  }
  return attrs;
}

const START_HINT = 'Start one with `npm start` or `npx switchboard dev-cluster` (edges on 8000, 8001, …), or pass --url.';

/**
 * `switchboard publish CHANNEL --data JSON [--attr k=v ...]`: checks the attrs against what the dialect's
 * filters can match (a mistake is refused before anything is sent, a doubtful value is warned about),
 * then publishes through the node's HTTP API.
 */
export async function publishCommand(args: PublishArgs, io: CliIo): Promise<number> {
  let data: unknown;
  try {
    data = JSON.parse(args.data);
  } catch {
    throw new UsageError('--data must be JSON, e.g. --data \'{"temperature":{"value":23.5,"unit":"°C"}}\'', 'publish');
  }
  const dialect = DIALECTS.find((d) => d.name === args.dialect);
  if (!dialect) throw new UsageError(`--dialect "${args.dialect}" is not one of ${DIALECTS.map((d) => d.name).join(', ')}`, 'publish');
  const attrs = parseAttrArgs(args.attrs);
  const check = dialect.checkPublishAttrs?.(args.channel, attrs) ?? { errors: [], warnings: [] };
  if (check.errors.length > 0) throw new UsageError(check.errors.join('\n'), 'publish');
  for (const w of check.warnings) io.stderr.write(`switchboard publish: warning: ${w}\n`);
  // Only when no key was given is the configured list read (and, in production, checked).
  const configured = args.apiKey === undefined ? loadOptions(['apiKeys'], io.env).apiKeys[0] : undefined;
  const apiKey = args.apiKey ?? (configured !== undefined ? parseApiKey(configured).key : undefined);
  if (apiKey === undefined) throw new UsageError('no API key: pass --api-key KEY or set SWITCHBOARD_API_KEY (or SWITCHBOARD_API_KEYS)', 'publish');
  const a = await postJson(
    args.url,
    '/api/publish',
    apiKey,
    {
      dialect: args.dialect,
      ...(args.tenant !== undefined ? { tenant: args.tenant } : {}),
      channel: args.channel,
      attrs,
      data,
    },
    'Switchboard node',
    START_HINT,
  );
  if (a.status >= 200 && a.status < 300) {
    io.stdout.write(`${JSON.stringify(a.json)}\n`);
    return 0;
  }
  const hint =
    a.status === 401
      ? '\nPass the key with --api-key or SWITCHBOARD_API_KEY (one of the server\'s SWITCHBOARD_API_KEYS; dev mode: dev-api-key).'
      : a.status === 404 && a.json.error === 'not_found'
        ? '\nIs --url an edge (or `switchboard start`), not the session service?'
        : '';
  throw new CallError(`${args.url} refused the publish: ${describeRefusal(a)}${hint}`);
}
