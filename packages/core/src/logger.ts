import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Component name, e.g. `edge`, `session`. */
  readonly name: string;
  /** Fields on every line, e.g. `{ node: 'edge-1' }`. */
  readonly base?: Record<string, unknown>;
  /** Where lines go; stdout by default. */
  readonly destination?: DestinationStream;
}

/** Creates the root pino logger of a process; components take `logger.child({ component })`. */
export function createLogger(options: LoggerOptions): Logger {
  const opts = {
    name: options.name,
    level: options.level ?? 'info',
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Secrets may sit in headers or config objects that end up in a log call: never print them.
    redact: ['token', 'password', 'jwtSecret', 'apiKeys', '*.token', '*.password', 'headers.authorization'],
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
