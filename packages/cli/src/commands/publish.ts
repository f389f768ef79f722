import { loadConfig, type AttrValue } from '@switchboard/core';

/** Arguments of `switchboard publish`. */
export interface PublishArgs {
  readonly channel: string;
  /** The dialect whose channel this is (the API's default, `valtronics`, when absent). */
  readonly dialect: string | undefined;
  /** The tenant (the API's default, or the key's only tenant, when absent). */
  readonly tenant: string | undefined;
  readonly data: string;
  readonly attrs: readonly string[];
  readonly url: string;
  readonly apiKey: string | undefined;
}

const NUMBER_RE = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/** Parses `k=v` pairs; values that look like numbers become numbers. */
export function parseAttrArgs(pairs: readonly string[]): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--attr: "${pair}" is not key=value`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    attrs[key] = NUMBER_RE.test(value) ? Number(value) : value;
  }
  return attrs;
}

/**
 * `switchboard publish CHANNEL --data JSON [--attr k=v ...] [--dialect D] [--tenant T] [--url URL] [--api-key KEY]`: publishes
 * through the node's HTTP API with the configured (dev by default) API key.
 */
export async function publishCommand(args: PublishArgs, out: NodeJS.WritableStream): Promise<number> {
  let data: unknown;
  try {
    data = JSON.parse(args.data);
  } catch {
    throw new Error('--data must be JSON, e.g. --data \'{"temperature":{"value":23.5,"unit":"°C"}}\'');
  }
  const apiKey = args.apiKey ?? process.env.SWITCHBOARD_API_KEY ?? loadConfig(process.env).apiKeys[0]!;
  const res = await fetch(new URL('/api/publish', args.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      ...(args.dialect !== undefined ? { dialect: args.dialect } : {}),
      ...(args.tenant !== undefined ? { tenant: args.tenant } : {}),
      channel: args.channel,
      attrs: parseAttrArgs(args.attrs),
      data,
    }),
  });
  const text = await res.text();
  out.write(text.endsWith('\n') ? text : text + '\n');
  return res.ok ? 0 : 1;
}
