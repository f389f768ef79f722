import { loadOptions, type AttrValue } from '@switchboard/core';
import { DIALECTS, parseApiKey } from '@switchboard/edge';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { CallError, describeRefusal, networkReason, postJson } from '../http-call.js';
import type { CliIo } from '../main.js';
import { UsageError } from '../spec.js';

/** Arguments of `switchboard publish`. */
export interface PublishArgs {
  /** Required without `stdin`; with it, the default channel of lines that name none. */
  readonly channel: string | undefined;
  /** Publish newline-delimited bodies from standard input over the publish socket. */
  readonly stdin?: NodeJS.ReadableStream;
  readonly idempotencyKey?: string;
  /** The dialect whose channel this is. */
  readonly dialect: string;
  /** The tenant (the API's default, or the key's only tenant, when absent). */
  readonly tenant: string | undefined;
  readonly data: string | undefined;
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
  if (args.stdin) return publishStream(args, args.stdin, io);
  if (args.channel === undefined) throw new UsageError('missing CHANNEL (or pass --stdin)', 'publish');
  if (args.data === undefined) throw new UsageError('--data JSON is required (or pass --stdin)', 'publish');
  let data: unknown;
  try {
    data = JSON.parse(args.data);
  } catch {
    throw new UsageError('--data must be JSON, e.g. --data \'{"temperature":{"value":23.5,"unit":"°C"}}\'', 'publish');
  }
  const dialect = findDialect(args.dialect);
  const attrs = parseAttrArgs(args.attrs);
  const check = dialect.checkPublishAttrs?.(args.channel, attrs) ?? { errors: [], warnings: [] };
  if (check.errors.length > 0) throw new UsageError(check.errors.join('\n'), 'publish');
  for (const w of check.warnings) io.stderr.write(`switchboard publish: warning: ${w}\n`);
  const apiKey = resolveApiKey(args, io);
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
      ...(args.idempotencyKey !== undefined ? { idempotency_key: args.idempotencyKey } : {}),
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

function findDialect(name: string) {
  const dialect = DIALECTS.find((d) => d.name === name);
  if (!dialect) throw new UsageError(`--dialect "${name}" is not one of ${DIALECTS.map((d) => d.name).join(', ')}`, 'publish');
  return dialect;
}

/** `--api-key`, `SWITCHBOARD_API_KEY`, or the first configured key (read, and checked, only then). */
function resolveApiKey(args: PublishArgs, io: CliIo): string {
  const configured = args.apiKey === undefined ? loadOptions(['apiKeys'], io.env).apiKeys[0] : undefined;
  const apiKey = args.apiKey ?? (configured !== undefined ? parseApiKey(configured).key : undefined);
  if (apiKey === undefined) throw new UsageError('no API key: pass --api-key KEY or set SWITCHBOARD_API_KEY (or SWITCHBOARD_API_KEYS)', 'publish');
  return apiKey;
}

/**
 * Messages not yet acknowledged before more lines are sent: keeps a fast producer from flooding the socket,
 * and stays under the edge's own limit (`SWITCHBOARD_PUBLISH_SOCKET_MAX_IN_FLIGHT`, 20,000 by default), past
 * which it refuses frames with `too_many_in_flight`.
 */
const MAX_IN_FLIGHT_MESSAGES = 10_000;

/**
 * `switchboard publish --stdin`: every line of standard input is a publish body (`{"channel","attrs",
 * "data","idempotency_key"}`, or `{"messages":[…]}`), sent over one persistent publish socket
 * (`/api/publish/ws`) without waiting for the answers one by one; each answer is printed as a line, with
 * the input line number as its `id`. CHANNEL, --dialect and --tenant fill in what a line leaves out
 * (CHANNEL also what the messages of a batch line leave out).
 * Exit 0 when every line was published, 1 when any was refused.
 */
async function publishStream(args: PublishArgs, input: NodeJS.ReadableStream, io: CliIo): Promise<number> {
  findDialect(args.dialect);
  const apiKey = resolveApiKey(args, io);
  const url = new URL('/api/publish/ws', args.url.replace(/^http/, 'ws'));
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${apiKey}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) =>
      reject(new CallError(`${url.href} refused the publish socket: ${res.statusCode ?? 0}${res.statusCode === 401 ? '\nPass the key with --api-key or SWITCHBOARD_API_KEY.' : ''}`)),
    );
    ws.once('error', (err) => reject(new CallError(`no Switchboard node at ${args.url} (${url.href}: ${networkReason(err)}).\n${START_HINT}`)));
  });
  let sent = 0;
  let answered = 0;
  let refused = 0;
  /** Messages of each line in flight, by the line's id, and their sum. */
  const messagesOf = new Map<number, number>();
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.on('message', (raw: Buffer) => {
    answered++;
    const text = raw.toString('utf8');
    const id = /^\{"id":(\d+)/.exec(text)?.[1];
    const n = id === undefined ? undefined : messagesOf.get(Number(id));
    if (n !== undefined) {
      messagesOf.delete(Number(id));
      inFlight -= n;
    }
    if (text.includes('"error"')) refused++;
    io.stdout.write(`${text}\n`);
    const w = wake;
    wake = null;
    w?.();
  });
  const defaults = { dialect: args.dialect, ...(args.tenant !== undefined ? { tenant: args.tenant } : {}), ...(args.channel !== undefined ? { channel: args.channel } : {}) };
  let lineNo = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    if (line.trim() === '') continue;
    let body: unknown;
    try {
      body = JSON.parse(line);
    } catch {
      io.stdout.write(`${JSON.stringify({ id: lineNo, error: 'invalid_json', message: 'the line is not JSON' })}\n`);
      refused++;
      continue;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      io.stdout.write(`${JSON.stringify({ id: lineNo, error: 'invalid_message', message: 'a line is a JSON object' })}\n`);
      refused++;
      continue;
    }
    const batch = (body as { messages?: unknown }).messages;
    const messages = Array.isArray(batch) ? Math.max(1, batch.length) : 1;
    // The API takes a batch's dialect and tenant from the body but each message's channel from itself:
    // CHANNEL fills in the messages of a batch line that name none, as it does for a single line.
    if (Array.isArray(batch) && args.channel !== undefined)
      (body as { messages: unknown[] }).messages = batch.map((m: unknown) => (typeof m === 'object' && m !== null && !Array.isArray(m) && !Object.hasOwn(m, 'channel') ? { channel: args.channel, ...m } : m));
    while (inFlight > 0 && inFlight + messages > MAX_IN_FLIGHT_MESSAGES && ws.readyState === WebSocket.OPEN) await new Promise<void>((r) => (wake = r));
    if (ws.readyState !== WebSocket.OPEN) break;
    ws.send(JSON.stringify({ ...defaults, ...(body as Record<string, unknown>), id: lineNo }));
    messagesOf.set(lineNo, messages);
    inFlight += messages;
    sent++;
  }
  while (answered < sent && ws.readyState === WebSocket.OPEN) await new Promise<void>((r) => (wake = r));
  const lost = sent - answered;
  ws.close();
  await closed;
  if (lost > 0) io.stderr.write(`switchboard publish: the connection closed with ${lost} line(s) unanswered: they may or may not have been published; resend them with their idempotency keys\n`);
  return refused > 0 || lost > 0 ? 1 : 0;
}
