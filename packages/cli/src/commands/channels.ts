/**
 * `switchboard channels [--url EDGE] [--tenant T] [--dialect D] [--limit N] [--json]`: the cluster-wide
 * channel view as any edge answers it (`GET /admin/nodes` and `/admin/channels`): connections per edge by
 * dialect, channels with their subscribers and edges. Edges hold no secrets, so the CLI asks the session
 * service for a short-lived token with the `admin` role first (with the session admin token, as
 * `switchboard token` does), unless `--token` gives one.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '@switchboard/core';

/** Options of `switchboard channels` (parsed here, so the dispatcher only names the command). */
const OPTIONS = {
  url: { type: 'string', default: 'http://localhost:8000' },
  tenant: { type: 'string' },
  dialect: { type: 'string' },
  limit: { type: 'string', default: '100' },
  json: { type: 'boolean', default: false },
  token: { type: 'string' },
  'session-url': { type: 'string' },
  'admin-token': { type: 'string' },
} as const;

/** The usage line of the command. */
export const CHANNELS_USAGE = `  channels [--url http://localhost:8000] [--tenant T] [--dialect D] [--limit 100] [--json]
           [--token JWT | --session-url URL --admin-token TOKEN]
                             the cluster-wide channel view: connections per edge by dialect, channels
                             with their subscribers and edges (GET /admin/* on any edge)`;

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

/** Mints a short-lived admin token through the session service. */
async function mintAdminToken(sessionUrl: string | undefined, adminToken: string | undefined): Promise<string> {
  const config = loadConfig(process.env);
  const url = sessionUrl ?? config.sessionUrl;
  const bearer = adminToken ?? config.adminToken;
  if (!bearer) throw new Error('no admin token: set SWITCHBOARD_ADMIN_TOKEN or pass --admin-token (or give an admin JWT with --token)');
  let res: Response;
  try {
    res = await fetch(new URL('/v1/tokens', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ sub: 'switchboard-cli', roles: ['admin'], ttl: '5m' }),
    });
  } catch {
    throw new Error(`no session service at ${url} to mint an admin token (pass --session-url, or --token JWT)`);
  }
  const body = (await res.json()) as { token?: unknown; message?: unknown };
  if (res.status !== 200 || typeof body.token !== 'string')
    throw new Error(`session service refused an admin token: ${typeof body.message === 'string' ? body.message : `HTTP ${res.status}`}`);
  return body.token;
}

async function getJson(base: string, path: string, token: string): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { headers: { authorization: `Bearer ${token}` } });
  } catch {
    throw new Error(`no edge at ${base} (start one with \`npm start\` or \`switchboard dev-cluster\`, or pass --url)`);
  }
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: ${typeof body.message === 'string' ? body.message : `HTTP ${res.status}`}`);
  return body;
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

/** Runs `switchboard channels` with its own arguments; resolves with the exit code. */
export async function channelsCommand(argv: readonly string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true });
  if (!/^\d+$/.test(values.limit)) throw new Error('--limit must be a number');
  const token = values.token ?? (await mintAdminToken(values['session-url'], values['admin-token']));
  const query = new URLSearchParams();
  if (values.tenant !== undefined) query.set('tenant', values.tenant);
  if (values.dialect !== undefined) query.set('dialect', values.dialect);
  const scope = query.toString();
  query.set('limit', values.limit);
  const nodes = await getJson(values.url, `/admin/nodes${scope ? `?${scope}` : ''}`, token);
  const channels = await getJson(values.url, `/admin/channels?${query.toString()}`, token);
  if (values.json) {
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
  if (items.length > 0)
    out.write(table([['CHANNEL', 'SUBSCRIBERS', 'NODES'], ...items.map((c) => [c.channel, String(c.subscribers), pairs(c.nodes)])]));
  const shown = channels.truncated === true ? ` (busiest ${items.length} shown)` : '';
  out.write(`${String(channels.channels)} channels, ${String(channels.subscriptions)} subscriptions${shown}\n`);
  return 0;
}
