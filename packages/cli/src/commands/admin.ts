/** `switchboard token` and `switchboard user add`: calls to the session service's admin API. */
import { loadOptions } from '@switchboard/core';
import { CallError, describeRefusal, postJson, type Answer } from '../http-call.js';
import type { CliIo } from '../main.js';
import { UsageError } from '../spec.js';

/** Where and as whom the CLI reaches the session service (flags; unset: the environment, then dev defaults). */
export interface AdminTarget {
  readonly url: string | undefined;
  readonly adminToken: string | undefined;
}

const START_HINT =
  'Start one with `npm start` or `npx switchboard dev-cluster` (the session service listens on 8100), or point --url or SWITCHBOARD_SESSION_URL at yours.';

/** Reads only what these commands use: the session URL and the admin token (production refuses the dev one). */
function target(t: AdminTarget, io: Pick<CliIo, 'env'>): { url: string; token: string } {
  const o = loadOptions(['sessionUrl', 'adminToken'], io.env, { sessionUrl: t.url, adminToken: t.adminToken });
  if (!o.adminToken)
    throw new UsageError(`no admin token in ${o.mode} mode: pass --admin-token or set SWITCHBOARD_ADMIN_TOKEN to the session service's (only dev mode has a built-in one)`);
  return { url: o.sessionUrl, token: o.adminToken };
}

async function call(t: AdminTarget, io: Pick<CliIo, 'env'>, path: string, body: unknown, ok: number): Promise<Answer> {
  const { url, token } = target(t, io);
  const a = await postJson(url, path, token, body, 'session service', START_HINT);
  if (a.status === ok) return a;
  if (a.status === 401)
    throw new CallError(
      `the session service at ${url} refused the call (${describeRefusal(a)}).\nPass its admin token with --admin-token or SWITCHBOARD_ADMIN_TOKEN (dev mode: the built-in one; a production service never accepts it).`,
    );
  if (a.status === 404 && a.json.error === 'not_found')
    throw new CallError(`${url} has no ${path} (${describeRefusal(a)}): is it the session service (port 8100), not an edge? Check --url / SWITCHBOARD_SESSION_URL.`);
  throw new CallError(`the session service at ${url} refused: ${describeRefusal(a)}`);
}

/** Arguments of `switchboard token`. */
export interface TokenArgs extends AdminTarget {
  readonly sub: string;
  readonly roles: readonly string[];
  readonly ttl: string;
  readonly tenant: string | undefined;
}

/** Prints a token minted by the session service with its own key. */
export async function tokenCommand(args: TokenArgs, io: CliIo): Promise<number> {
  const r = await call(args, io, '/v1/tokens', { sub: args.sub, roles: args.roles, ttl: args.ttl, ...(args.tenant !== undefined ? { tenant: args.tenant } : {}) }, 200);
  io.stdout.write(`${String(r.json.token)}\n`);
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
export async function userAddCommand(args: UserAddArgs, io: CliIo): Promise<number> {
  const r = await call(args, io, '/v1/users', { name: args.name, password: args.password, roles: args.roles, ...(args.tenant !== undefined ? { tenant: args.tenant } : {}) }, 201);
  io.stdout.write(`${JSON.stringify(r.json)}\n`);
  return 0;
}
