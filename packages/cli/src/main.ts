/**
 * The `switchboard` command: parses arguments and dispatches to a command. Each command wires its
 * pieces together and owns its shutdown.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@switchboard/core';
import { devClusterCommand } from './commands/dev-cluster.js';
import { publishCommand } from './commands/publish.js';
import { startCommand } from './commands/start.js';
import { tokenCommand } from './commands/token.js';

const USAGE = `Usage: switchboard <command> [options]

Commands:
  start [--port N]           all-in-one server on port 8000 (PORT overrides); embedded backends,
                             or Redis when REDIS_URL is set
  edge [--port N]            an edge of a cluster (REDIS_URL required; REDIS_CLUSTER=1 for a Cluster)
  dev-cluster [--edges 2] [--base-port 8000]
                             redis-server from PATH on a free port + edges on 8000, 8001, …
  token --sub ID [--roles a,b] [--ttl 1h] [--tenant T]
                             print a JWT the server accepts (dev secret by default)
  publish CHANNEL --data JSON [--attr k=v ...] [--url http://localhost:8000] [--api-key KEY]
                             publish a message through the HTTP API
  help                       this text

Configuration comes from environment variables: see docs/configuration.md.
`;

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
      case 'edge': {
        const { values } = parseArgs({ args: rest, options: { port: { type: 'string' } }, strict: true });
        return await startCommand(command, values.port !== undefined ? { port: values.port } : {});
      }
      case 'dev-cluster': {
        const { values } = parseArgs({
          args: rest,
          options: { edges: { type: 'string', default: '2' }, 'base-port': { type: 'string', default: '8000' } },
          strict: true,
        });
        const edges = Number(values.edges);
        const basePort = Number(values['base-port']);
        if (!Number.isInteger(edges) || edges < 1 || edges > 16) throw new UsageError('--edges must be 1..16');
        if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65535 - edges) throw new UsageError('--base-port must be a port');
        return await devClusterCommand({ edges, basePort });
      }
      case 'token': {
        const { values } = parseArgs({
          args: rest,
          options: {
            sub: { type: 'string' },
            roles: { type: 'string' },
            ttl: { type: 'string', default: '1h' },
            tenant: { type: 'string' },
          },
          strict: true,
        });
        if (!values.sub) throw new UsageError('token needs --sub ID');
        return await tokenCommand(
          {
            sub: values.sub,
            roles: values.roles ? values.roles.split(',').map((r) => r.trim()).filter(Boolean) : [],
            ttl: values.ttl,
            tenant: values.tenant,
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
            url: { type: 'string', default: 'http://localhost:8000' },
            'api-key': { type: 'string' },
          },
          allowPositionals: true,
          strict: true,
        });
        if (positionals.length !== 1) throw new UsageError('publish needs exactly one CHANNEL');
        if (values.data === undefined) throw new UsageError('publish needs --data JSON');
        return await publishCommand(
          { channel: positionals[0]!, data: values.data, attrs: values.attr ?? [], url: values.url, apiKey: values['api-key'] },
          process.stdout,
        );
      }
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
