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
  // Synchronous writes to stdout (what console.log does on a pipe). pino's default asynchronous stream
  // flushes its buffer at exit with a loop that retries every error: once stdout's reader is gone (a
  // supervisor killed, a closed terminal) every write fails with EPIPE, and a process told to stop on
  // SIGTERM spins there forever instead of exiting. A synchronous stream meets EPIPE at once and stops
  // logging (pino turns writes into no-ops), and has nothing to flush at exit.
  return pino(opts, options.destination ?? pino.destination({ dest: 1, sync: true }));
}
