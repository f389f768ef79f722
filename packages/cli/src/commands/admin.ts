/** `switchboard token` and `switchboard user add`: calls to the session service's admin API. */
import { loadConfig, parseDurationMs } from '@switchboard/core';

/** Where and as whom the CLI reaches the session service. */
export interface AdminTarget {
  readonly url: string | undefined;
  readonly adminToken: string | undefined;
}

function target(t: AdminTarget): { url: string; token: string } {
  const config = loadConfig(process.env);
  const token = t.adminToken ?? config.adminToken;
  if (!token) throw new Error('no admin token: set SWITCHBOARD_ADMIN_TOKEN (the built-in dev one works only in dev mode)');
  return { url: t.url ?? config.sessionUrl, token };
}

async function post(t: AdminTarget, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const { url, token } = target(t);
  let res: Response;
  try {
    res = await fetch(new URL(path, url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
  } catch {
    throw new Error(`no session service at ${url} (start one with \`npm start\` or \`switchboard dev-cluster\`, or pass --url)`);
  }
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Arguments of `switchboard token`. */
export interface TokenArgs extends AdminTarget {
  readonly sub: string;
  readonly roles: readonly string[];
  readonly ttl: string;
  readonly tenant: string | undefined;
}

/** Prints a token minted by the session service with its own key. */
export async function tokenCommand(args: TokenArgs, out: NodeJS.WritableStream): Promise<number> {
  const ttlMs = parseDurationMs(args.ttl);
  if (ttlMs === null || ttlMs < 1000) throw new Error(`--ttl: "${args.ttl}" is not a duration such as 30m, 1h, 7d`);
  const r = await post(args, '/v1/tokens', { sub: args.sub, roles: args.roles, ttl: args.ttl, ...(args.tenant !== undefined ? { tenant: args.tenant } : {}) });
  if (r.status !== 200) throw new Error(`session service refused: ${typeof r.json.message === 'string' ? r.json.message : `HTTP ${r.status}`}`);
  out.write(`${String(r.json.token)}\n`);
  return 0;
}

/** Arguments of `switchboard user add`. */
export interface UserAddArgs extends AdminTarget {
  readonly name: string;
  readonly password: string;
  readonly roles: readonly string[];
  readonly tenant: string | undefined;
}

/** Creates a user in the session service. */
export async function userAddCommand(args: UserAddArgs, out: NodeJS.WritableStream): Promise<number> {
  const r = await post(args, '/v1/users', { name: args.name, password: args.password, roles: args.roles, ...(args.tenant !== undefined ? { tenant: args.tenant } : {}) });
  if (r.status !== 201) throw new Error(`session service refused: ${typeof r.json.message === 'string' ? r.json.message : `HTTP ${r.status}`}`);
  out.write(`${JSON.stringify(r.json)}\n`);
  return 0;
}
