/**
 * The `switchboard` command: parses arguments and dispatches to a command. Each command wires its
 * pieces together and owns its shutdown.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@switchboard/core';
import { CHANNELS_USAGE, channelsCommand } from './commands/channels.js';
import { devClusterCommand } from './commands/dev-cluster.js';
import { publishCommand } from './commands/publish.js';
import { tokenCommand, userAddCommand } from './commands/admin.js';
import { startCommand } from './commands/start.js';

const USAGE = `Usage: switchboard <command> [options]

Commands:
  start [--port N]           all-in-one server on port 8000 (PORT overrides); embedded backends,
                             or Redis when REDIS_URL is set
                             (the session API on 8100 too; SESSION_PORT overrides)
  edge [--port N]            an edge of a cluster (REDIS_URL required; REDIS_CLUSTER=1 for a Cluster)
  session                    the session/auth service on 8100 (REDIS_URL required; M replicas allowed)
  dev-cluster [--edges 2] [--base-port 8000] [--session-port 8100]
                             redis-server from PATH + one session service (8100) + edges on 8000, 8001, …
  token --sub ID [--roles a,b] [--ttl 1h] [--tenant T] [--url SESSION_URL]
                             print a JWT minted by the session service (dev admin token by default)
  user add NAME --password P [--roles a,b] [--tenant T] [--url SESSION_URL]
                             create a user in the session service
  publish CHANNEL --data JSON [--attr k=v ...] [--dialect valtronics] [--tenant T]
          [--url http://localhost:8000] [--api-key KEY]
                             publish a message through the HTTP API to a dialect's channel in a tenant
${CHANNELS_USAGE}
  help                       this text

Configuration comes from environment variables: see docs/configuration.md.
`;

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
      case 'edge':
      case 'session': {
        const { values } = parseArgs({ args: rest, options: { port: { type: 'string' } }, strict: true });
        return await startCommand(command, values.port !== undefined ? { port: values.port } : {});
      }
      case 'dev-cluster': {
        const { values } = parseArgs({
          args: rest,
          options: {
            edges: { type: 'string', default: '2' },
            'base-port': { type: 'string', default: '8000' },
            'session-port': { type: 'string', default: '8100' },
          },
          strict: true,
        });
        const edges = Number(values.edges);
        const basePort = Number(values['base-port']);
        if (!Number.isInteger(edges) || edges < 1 || edges > 16) throw new UsageError('--edges must be 1..16');
        if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65535 - edges) throw new UsageError('--base-port must be a port');
        const sessionPort = Number(values['session-port']);
        if (!Number.isInteger(sessionPort) || sessionPort < 1 || sessionPort > 65535) throw new UsageError('--session-port must be a port');
        return await devClusterCommand({ edges, basePort, sessionPort });
      }
      case 'token': {
        const { values } = parseArgs({
          args: rest,
          options: {
            sub: { type: 'string' },
            roles: { type: 'string' },
            ttl: { type: 'string', default: '1h' },
            tenant: { type: 'string' },
            url: { type: 'string' },
            'admin-token': { type: 'string' },
          },
          strict: true,
        });
        if (!values.sub) throw new UsageError('token needs --sub ID');
        return await tokenCommand(
          {
            sub: values.sub,
            roles: splitList(values.roles),
            ttl: values.ttl,
            tenant: values.tenant,
            url: values.url,
            adminToken: values['admin-token'],
          },
          process.stdout,
        );
      }
      case 'user': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: {
            password: { type: 'string' },
            roles: { type: 'string' },
            tenant: { type: 'string' },
            url: { type: 'string' },
            'admin-token': { type: 'string' },
          },
          allowPositionals: true,
          strict: true,
        });
        if (positionals[0] !== 'add' || positionals.length !== 2) throw new UsageError('usage: user add NAME --password P');
        if (values.password === undefined) throw new UsageError('user add needs --password P');
        return await userAddCommand(
          {
            name: positionals[1]!,
            password: values.password,
            roles: splitList(values.roles),
            tenant: values.tenant,
            url: values.url,
            adminToken: values['admin-token'],
          },
          process.stdout,
        );
      }
      case 'publish': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: {
            data: { type: 'string' },
            attr: { type: 'string', multiple: true },
            dialect: { type: 'string' },
            tenant: { type: 'string' },
            url: { type: 'string', default: 'http://localhost:8000' },
            'api-key': { type: 'string' },
          },
          allowPositionals: true,
          strict: true,
        });
        if (positionals.length !== 1) throw new UsageError('publish needs exactly one CHANNEL');
        if (values.data === undefined) throw new UsageError('publish needs --data JSON');
        return await publishCommand(
          {
            channel: positionals[0]!,
            dialect: values.dialect,
            tenant: values.tenant,
            data: values.data,
            attrs: values.attr ?? [],
            url: values.url,
            apiKey: values['api-key'],
          },
          process.stdout,
        );
      }
      case 'channels':
        return await channelsCommand(rest, process.stdout);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || (err instanceof Error && err.name === 'TypeError' && 'code' in err)) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(`\n${USAGE}`);
      return 2;
    }
    if (err instanceof Error) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

class UsageError extends Error {}

function splitList(v: string | undefined): string[] {
  return v ? v.split(',').map((r) => r.trim()).filter(Boolean) : [];
}
