/**
 * The `switchboard` command: finds the command, parses its arguments with its spec (commands/specs.ts),
 * and runs it. Each command wires its pieces together and owns its shutdown. Mistakes on the command line
 * exit 2 with a pointer to the command's `--help`; failures of the command itself exit 1.
 */
import { ConfigError } from '@switchboard/core';
import { channelsCommand } from './commands/channels.js';
import { devClusterCommand } from './commands/dev-cluster.js';
import { listenCommand } from './commands/listen.js';
import { publishCommand } from './commands/publish.js';
import { tokenCommand, userAddCommand } from './commands/admin.js';
import { startCommand } from './commands/start.js';
import { CHANNELS, COMMANDS, DEV_CLUSTER, EDGE, LISTEN, PUBLISH, SESSION, START, TOKEN, USER_ADD } from './commands/specs.js';
import { closest, flagProblems, parseCommand, renderHelp, UsageError, type CommandSpec, type Parsed } from './spec.js';

/** Where a run of the CLI reads and writes: the process's own by default, captured in tests. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The overview printed by `switchboard help` (and with no command). */
export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: switchboard <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  this text; \`switchboard help <command>\` for one command`,
    '',
    'Every command takes --help: its options, their defaults and environment variables, and an example.',
    'Configuration comes from environment variables: see docs/configuration.md.',
    '',
  ].join('\n');
}

const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function run(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let [command, ...rest] = argv;
  if (command === 'user') {
    // `user` has one sub-command; `switchboard user --help` shows it.
    if (rest[0] === 'add') {
      command = 'user add';
      rest = rest.slice(1);
    } else if (rest.length === 0 || rest[0] === '--help' || rest[0] === '-h') {
      io.stdout.write(renderHelp(USER_ADD));
      return rest.length === 0 ? 2 : 0;
    } else return usageError(io, new UsageError(`unknown sub-command "user ${rest[0]}"; the one there is: user add`, 'user add'));
  }
  const spec = command !== undefined ? BY_NAME.get(command) : undefined;
  let values: Readonly<Record<string, unknown>> = {};
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      const topic = command === 'help' ? rest.join(' ') : '';
      const one = BY_NAME.get(topic);
      if (topic && !one) throw new UsageError(`no command "${topic}"${suggest(topic)}`);
      io.stdout.write(one ? renderHelp(one) : overview());
      return command === undefined ? 2 : 0;
    }
    if (!spec) throw new UsageError(`unknown command "${command}"${suggest(command)}`);
    const parsed = parseCommand(spec, rest, io.env);
    if (parsed.help) {
      io.stdout.write(renderHelp(spec));
      return 0;
    }
    values = parsed.values;
    return await dispatch(spec, parsed, io);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err, spec?.name);
    if (err instanceof ConfigError) {
      const problems = spec ? flagProblems(err.problems, spec, values) : err.problems;
      io.stderr.write(`switchboard${spec ? ` ${spec.name}` : ''}: invalid configuration:\n  - ${problems.join('\n  - ')}\n`);
      return 2;
    }
    if (err instanceof Error) {
      io.stderr.write(`switchboard${spec ? ` ${spec.name}` : ''}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function dispatch(spec: CommandSpec, parsed: Extract<Parsed, { help: false }>, io: CliIo): Promise<number> {
  const v = parsed.values;
  const str = (name: string) => v[name] as string | undefined;
  switch (spec) {
    case START:
      return startCommand('start', { port: v.port, sessionPort: v['session-port'] }, io);
    case EDGE:
      return startCommand('edge', { port: v.port }, io);
    case SESSION:
      return startCommand('session', { sessionPort: v.port }, io);
    case DEV_CLUSTER:
      return devClusterCommand(
        {
          edges: v.edges as number,
          basePort: v['base-port'] as number,
          sessionPort: v['session-port'] as number,
          dataDir: str('data-dir'),
          fresh: v.fresh === true,
          restart: v['no-restart'] !== true,
        },
        io,
      );
    case TOKEN:
      return tokenCommand(
        { sub: str('sub')!, roles: (v.roles as string[] | undefined) ?? [], ttl: str('ttl')!, tenant: str('tenant'), url: str('url'), adminToken: str('admin-token') },
        io,
      );
    case USER_ADD:
      return userAddCommand(
        {
          name: parsed.positionals[0]!,
          password: str('password')!,
          roles: (v.roles as string[] | undefined) ?? [],
          tenant: str('tenant'),
          url: str('url'),
          adminToken: str('admin-token'),
        },
        io,
      );
    case PUBLISH:
      return publishCommand(
        {
          channel: parsed.positionals[0],
          ...(v.stdin === true ? { stdin: process.stdin } : {}),
          ...(str('idempotency-key') !== undefined ? { idempotencyKey: str('idempotency-key')! } : {}),
          dialect: str('dialect')!,
          tenant: str('tenant'),
          data: str('data'),
          attrs: v.attr as string[],
          url: str('url')!,
          apiKey: str('api-key'),
        },
        io,
      );
    case CHANNELS:
      return channelsCommand(
        {
          url: str('url')!,
          tenant: str('tenant'),
          dialect: str('dialect'),
          limit: v.limit as number,
          json: v.json === true,
          token: str('token'),
          sessionUrl: str('session-url'),
          adminToken: str('admin-token'),
        },
        io,
      );
    case LISTEN: {
      // Ctrl-C or SIGTERM ends it cleanly (exit 0).
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      return listenCommand(
        {
          channel: parsed.positionals[0]!,
          filters: v.filter as string[],
          url: str('url')!,
          json: v.json === true,
          count: (v.count as number | undefined) ?? 0,
          token: str('token'),
          sub: str('sub')!,
          sessionUrl: str('session-url'),
          adminToken: str('admin-token'),
        },
        io,
        stop.signal,
      ).finally(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      });
    }
    default:
      throw new Error(`no handler for command "${spec.name}"`);
  }
}

function usageError(io: CliIo, err: UsageError, fallback?: string): number {
  const command = err.command ?? fallback;
  io.stderr.write(`switchboard${command ? ` ${command}` : ''}: ${err.message}\n`);
  io.stderr.write(command ? `Run \`switchboard ${command} --help\` for its options.\n` : 'Run `switchboard help` for the commands.\n');
  return 2;
}

function suggest(typed: string): string {
  const near = closest(typed, [...COMMANDS.map((c) => c.name), 'user']);
  return near ? ` (did you mean \`${near}\`?)` : '';
}
