/**
 * `switchboard listen CHANNEL [--filter k=v …]`: subscribes to a `valtronics` channel through the client
 * SDK (`@switchboard/client`: reconnects, resumes and recovers by offset, so nothing is lost or doubled
 * while it runs) and prints each update on its own line, with its offset. Connection changes and
 * recovery gaps go to stderr, so stdout stays one update per line. The token is minted through the
 * session service with the session admin token (again before it expires) unless `--token` gives one.
 */
import { loadOptions } from '@switchboard/core';
import { SwitchboardClient, type Channel } from '@switchboard/client';
import WebSocket from 'ws';
import { CallError, describeRefusal, postJson } from '../http-call.js';
import type { CliIo } from '../main.js';
import { UsageError } from '../spec.js';

/** Arguments of `switchboard listen`. */
export interface ListenArgs {
  readonly channel: string;
  /** `key=value` pairs; a value with commas is a list. */
  readonly filters: readonly string[];
  /** An edge: `http(s)://host:port` (its `/ws`) or a `ws(s)://` URL as is. */
  readonly url: string;
  /** Print each update as it arrived (JSON), not the short form. */
  readonly json: boolean;
  /** Stop after this many updates (0: run until interrupted). */
  readonly count: number;
  /** A token to use as is (no minting, no refresh). */
  readonly token: string | undefined;
  /** The `sub` of minted tokens. */
  readonly sub: string;
  readonly sessionUrl: string | undefined;
  readonly adminToken: string | undefined;
}

/** The channels a client can subscribe to. */
const CHANNELS: readonly Channel[] = ['telemetry', 'alerts', 'devices', 'system'];
/** Filters whose value is one string, never a list. */
const SCALAR_FILTERS = new Set(['frequency']);
const NUMBER_RE = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/** Parses `--filter k=v` pairs: `device_id=1,2` is a list of numbers, `frequency=5s` a string. */
export function parseFilterArgs(
  pairs: readonly string[],
): Record<string, string | number | (string | number)[]> {
  const filters: Record<string, string | number | (string | number)[]> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1)
      throw new UsageError(`--filter "${pair}" is not key=value`, 'listen');
    const key = pair.slice(0, eq);
    if (key === '__proto__' || key === 'constructor' || key === 'prototype')
      throw new UsageError(`--filter "${key}" is not a filter`, 'listen');
    const raw = pair.slice(eq + 1);
    if (SCALAR_FILTERS.has(key)) {
      filters[key] = raw;
      continue;
    }
    const values = raw.split(',').map((v) => (NUMBER_RE.test(v) ? Number(v) : v));
    const previous = filters[key];
    const merged =
      previous === undefined ? values : [...(Array.isArray(previous) ? previous : [previous]), ...values];
    filters[key] = merged.length === 1 ? merged[0]! : merged;
  }
  return filters;
}

/** `http://host:8000` → `ws://host:8000/ws`; a `ws(s)://` URL is used as is. */
export function listenUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return u.href;
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.href;
}

const SESSION_HINT =
  'Start one with `npm start` or `npx switchboard dev-cluster` (the session service listens on 8100), point --session-url or SWITCHBOARD_SESSION_URL at yours, or pass a token with --token.';

/** A function that mints a one-hour token through the session service each time it is called. */
function minter(args: ListenArgs, io: Pick<CliIo, 'env'>): () => Promise<string> {
  const o = loadOptions(['sessionUrl', 'adminToken'], io.env, {
    sessionUrl: args.sessionUrl,
    adminToken: args.adminToken,
  });
  const adminToken = o.adminToken;
  if (!adminToken)
    throw new UsageError(
      `no admin token in ${o.mode} mode: pass --admin-token or set SWITCHBOARD_ADMIN_TOKEN (to mint a token), or pass one with --token`,
      'listen',
    );
  return async () => {
    const a = await postJson(
      o.sessionUrl,
      '/v1/tokens',
      adminToken,
      { sub: args.sub, ttl: '1h' },
      'session service',
      SESSION_HINT,
    );
    if (a.status !== 200 || typeof a.json.token !== 'string')
      throw new CallError(`the session service at ${o.sessionUrl} refused a token: ${describeRefusal(a)}`);
    return a.json.token;
  };
}

/** One update in the short form: `#offset time channel device key=value…`. */
function shortLine(u: Record<string, unknown>): string {
  const { offset, epoch: _epoch, type: _type, channel, ...rest } = u;
  return `#${String(offset)} ${new Date().toISOString()} ${String(channel)} ${JSON.stringify(rest)}`;
}

/** Subscribes and prints updates until interrupted (or `--count` of them); resolves with the exit code. */
export async function listenCommand(args: ListenArgs, io: CliIo, signal?: AbortSignal): Promise<number> {
  if (!CHANNELS.includes(args.channel as Channel))
    throw new UsageError(
      `unknown channel "${args.channel}"; the channels are ${CHANNELS.join(', ')}`,
      'listen',
    );
  const channel = args.channel as Channel;
  const filters = parseFilterArgs(args.filters);
  const url = listenUrl(args.url);
  const token = args.token ?? minter(args, io);
  // A first token now: a wrong admin token or an absent session service is said at once, not retried.
  const first = typeof token === 'string' ? token : await token();
  let fresh: string | null = first;
  const tokenSource =
    typeof token === 'string'
      ? token
      : () => {
          const t = fresh;
          fresh = null;
          return t ?? token();
        };

  return new Promise<number>((resolve) => {
    const client = new SwitchboardClient({ url, token: tokenSource, WebSocket, autoConnect: false });
    let received = 0;
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      client.close();
      signal?.removeEventListener('abort', onAbort);
      resolve(code);
    };
    const onAbort = () => finish(0);
    signal?.addEventListener('abort', onAbort);
    const err = (line: string) => io.stderr.write(`switchboard listen: ${line}\n`);

    client.on('state', (s) => {
      if (s.state === 'connected') err(`connected to ${s.url}${s.resumed ? ' (session resumed)' : ''}`);
      else if (s.state === 'disconnected') {
        if (s.delayMs === null || s.delayMs === undefined) {
          err(`disconnected for good: ${s.reason ?? `close code ${s.code ?? '?'}`}`);
          finish(1);
        } else
          err(
            `disconnected (${s.reason ?? `close code ${s.code ?? '?'}`}); retrying in ${(s.delayMs / 1000).toFixed(1)} s`,
          );
      }
    });
    client.on('error', (e) => err(`${e.code}: ${e.message}`));
    const sub = client.subscribe(channel, filters);
    sub.on('subscribed', () =>
      err(`subscribed to ${channel}${Object.keys(filters).length > 0 ? ` ${JSON.stringify(filters)}` : ''}`),
    );
    sub.on('recovered', (r) => {
      if (!r.recovered)
        err(
          `updates may have been missed while disconnected${r.epochChanged ? " (the channel's history was reset)" : ''}`,
        );
    });
    sub.on('error', (e) => {
      if (e.code === 'rate_limited' || e.code === 'unavailable' || e.code === 'internal_error') return;
      err(`subscription refused: ${e.code}: ${e.message}`);
      finish(1);
    });
    sub.on('update', (u) => {
      if (done) return;
      io.stdout.write(
        `${args.json ? JSON.stringify(u) : shortLine(u as unknown as Record<string, unknown>)}\n`,
      );
      received++;
      if (args.count > 0 && received >= args.count) finish(0);
    });
    client.connect();
  });
}
