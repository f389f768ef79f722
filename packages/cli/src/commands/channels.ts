/**
 * `switchboard channels`: the cluster-wide channel view as any edge answers it (`GET /admin/nodes` and
 * `/admin/channels`): connections per edge by dialect, channels with their subscribers and edges. Edges
 * hold no secrets, so the CLI first asks the session service for a five-minute token with the `admin`
 * role (with the session admin token, as `switchboard token` does), unless `--token` gives one.
 */
import { loadOptions } from '@switchboard/core';
import { CallError, describeRefusal, networkReason, postJson } from '../http-call.js';
import type { CliIo } from '../main.js';
import { UsageError } from '../spec.js';

/** Arguments of `switchboard channels`. */
export interface ChannelsArgs {
  /** An edge. */
  readonly url: string;
  readonly tenant: string | undefined;
  readonly dialect: string | undefined;
  readonly limit: number;
  readonly json: boolean;
  /** An admin JWT to use as is (no minting). */
  readonly token: string | undefined;
  /** Where to mint one, and with what (flags; unset: the environment, then dev defaults). */
  readonly sessionUrl: string | undefined;
  readonly adminToken: string | undefined;
}

interface NodeRow {
  node: string;
  connections: number;
  by_dialect: Record<string, number>;
  channels: number;
  subscriptions: number;
}

interface ChannelRow {
  channel: string;
  subscribers: number;
  nodes: Record<string, number>;
}

const SESSION_HINT =
  'Start one with `npm start` or `npx switchboard dev-cluster` (the session service listens on 8100), point --session-url or SWITCHBOARD_SESSION_URL at yours, or pass an admin JWT with --token.';

/** Mints a short-lived admin token through the session service. */
async function mintAdminToken(args: ChannelsArgs, io: Pick<CliIo, 'env'>): Promise<string> {
  const o = loadOptions(['sessionUrl', 'adminToken'], io.env, { sessionUrl: args.sessionUrl, adminToken: args.adminToken });
  if (!o.adminToken)
    throw new UsageError(`no admin token in ${o.mode} mode: pass --admin-token or set SWITCHBOARD_ADMIN_TOKEN (to mint an admin JWT), or pass one with --token`);
  const a = await postJson(o.sessionUrl, '/v1/tokens', o.adminToken, { sub: 'switchboard-cli', roles: ['admin'], ttl: '5m' }, 'session service', SESSION_HINT);
  if (a.status !== 200 || typeof a.json.token !== 'string') throw new CallError(`the session service at ${o.sessionUrl} refused an admin token: ${describeRefusal(a)}`);
  return a.json.token;
}

async function getJson(base: string, path: string, token: string): Promise<Record<string, unknown>> {
  const url = new URL(path, base);
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CallError(`no edge at ${base} (GET ${url.href}: ${networkReason(err)}).\nStart one with \`npm start\` or \`npx switchboard dev-cluster\`, or pass --url.`);
  }
  let json: Record<string, unknown> = {};
  try {
    json = (await res.json()) as Record<string, unknown>;
  } catch {
    // Not JSON: reported with the status below.
  }
  if (!res.ok) throw new CallError(`${url.href}: ${describeRefusal({ status: res.status, json })}`);
  return json;
}

const pairs = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '-';

/** Left-aligned columns. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** Prints the cluster-wide channel view. */
export async function channelsCommand(args: ChannelsArgs, io: CliIo): Promise<number> {
  const token = args.token ?? (await mintAdminToken(args, io));
  const query = new URLSearchParams();
  if (args.tenant !== undefined) query.set('tenant', args.tenant);
  if (args.dialect !== undefined) query.set('dialect', args.dialect);
  const scope = query.toString();
  query.set('limit', String(args.limit));
  const nodes = await getJson(args.url, `/admin/nodes${scope ? `?${scope}` : ''}`, token);
  const channels = await getJson(args.url, `/admin/channels?${query.toString()}`, token);
  const out = io.stdout;
  if (args.json) {
    out.write(`${JSON.stringify({ nodes, channels }, null, 2)}\n`);
    return 0;
  }
  const nodeRows = nodes.nodes as NodeRow[];
  const totals = nodes.totals as { connections: number; by_dialect: Record<string, number>; channels: number; subscriptions: number };
  const missing = nodes.missing as string[];
  out.write(`${nodeRows.length} edge${nodeRows.length === 1 ? '' : 's'} answered${missing.length > 0 ? `; missing (did not answer in time): ${missing.join(', ')}` : ''}\n\n`);
  out.write(
    table([
      ['NODE', 'CONNECTIONS', 'BY DIALECT', 'CHANNELS', 'SUBSCRIPTIONS'],
      ...nodeRows.map((n) => [n.node, String(n.connections), pairs(n.by_dialect), String(n.channels), String(n.subscriptions)]),
      ['total', String(totals.connections), pairs(totals.by_dialect), String(totals.channels), String(totals.subscriptions)],
    ]),
  );
  const items = channels.items as ChannelRow[];
  out.write('\n');
  if (items.length > 0) out.write(table([['CHANNEL', 'SUBSCRIBERS', 'NODES'], ...items.map((c) => [c.channel, String(c.subscribers), pairs(c.nodes)])]));
  const shown = channels.truncated === true ? ` (busiest ${items.length} shown)` : '';
  out.write(`${String(channels.channels)} channels, ${String(channels.subscriptions)} subscriptions${shown}\n`);
  return 0;
}
