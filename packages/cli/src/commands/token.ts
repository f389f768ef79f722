import { loadConfig, parseDurationMs } from '@switchboard/core';
import { signHmacToken } from '@switchboard/session';

/** Arguments of `switchboard token`. */
export interface TokenArgs {
  readonly sub: string;
  readonly roles: readonly string[];
  readonly ttl: string;
  readonly tenant: string | undefined;
}

/**
 * `switchboard token --sub ID [--roles a,b] [--ttl 1h] [--tenant T]`: prints a JWT the server accepts,
 * signed with the configured secret (the dev secret by default, which production mode refuses).
 */
export async function tokenCommand(args: TokenArgs, out: NodeJS.WritableStream): Promise<number> {
  const config = loadConfig(process.env);
  const ttlMs = parseDurationMs(args.ttl);
  if (ttlMs === null || ttlMs < 1000) throw new Error(`--ttl: "${args.ttl}" is not a duration such as 30m, 1h, 7d`);
  const token = await signHmacToken(
    { secret: config.jwtSecret, issuer: config.jwtIssuer, audience: config.jwtAudience },
    {
      sub: args.sub,
      roles: args.roles,
      ttlSec: Math.floor(ttlMs / 1000),
      ...(args.tenant !== undefined ? { tenant: args.tenant } : {}),
    },
  );
  out.write(token + '\n');
  return 0;
}
