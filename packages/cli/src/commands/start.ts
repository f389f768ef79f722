import { ConfigError, createLogger, loadConfig, type ConfigOverrides } from '@switchboard/core';
import { DIALECT_CONFIG_SECTIONS } from '@switchboard/edge';
import { startAllInOne, startEdge, startSession, type Running } from '../compose.js';
import { runUntilSignal } from '../lifecycle.js';
import type { CliIo } from '../main.js';
import { EXIT_WITH_STDIN_ENV } from './dev-cluster.js';

/** The long-running processes: `start` (all-in-one), `edge`, `session`. */
export type ProcessRole = 'start' | 'edge' | 'session';

/** Runs one of the long-running processes until SIGTERM/SIGINT. */
export async function startCommand(role: ProcessRole, overrides: ConfigOverrides, io: Pick<CliIo, 'env'>): Promise<number> {
  // Edges validate every dialect's options at start-up; the session service reads none of them.
  const config = loadConfig(io.env, overrides, role === 'start' ? 'all' : role, role === 'session' ? [] : DIALECT_CONFIG_SECTIONS);
  if (role !== 'start' && !config.redisUrl)
    throw new ConfigError([
      `REDIS_URL: \`switchboard ${role}\` needs it (edges and session replicas share state through Redis); \`switchboard start\` runs everything in one process without it`,
    ]);
  const logger = createLogger({ name: 'switchboard', level: config.logLevel, base: { node: config.nodeId, role } });
  let running: Running;
  if (role === 'edge') running = await startEdge(config, logger);
  else if (role === 'session') running = await startSession(config, logger);
  else running = await startAllInOne(config, logger);
  const { http, session } = running.ports;
  const where = [
    http !== undefined
      ? config.tlsCertFile
        ? `WebSocket/HTTPS on https://${config.host}:${http} (wss://localhost:${http}/ws)`
        : `WebSocket/HTTP on http://${config.host}:${http} (ws://localhost:${http}/ws)`
      : null,
    session !== undefined ? `session API on http://${config.host}:${session}` : null,
  ]
    .filter(Boolean)
    .join(', ');
  logger.info({ ports: running.ports, mode: config.mode, backend: running.backend }, `switchboard ${role}: ${where}`);
  if (config.mode === 'dev' && role === 'start')
    logger.info('dev mode: `npx switchboard token --sub alice` prints a token this server accepts');
  if (io.env[EXIT_WITH_STDIN_ENV] === '1') {
    // Started by a supervisor (dev-cluster) that holds our stdin: its end means the supervisor is gone,
    // and a process nobody supervises any more stops as if it had been sent SIGTERM.
    process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
    process.stdin.on('error', (err) => logger.warn({ err }, 'stdin of the supervised process failed'));
    process.stdin.resume();
  }
  const onHup = () => {
    running.reload?.().catch((err: unknown) => logger.error({ err }, 'reload failed; the running configuration stays'));
  };
  process.on('SIGHUP', onHup);
  try {
    return await runUntilSignal(logger, config.shutdownTimeoutMs, () => running.stop());
  } finally {
    process.off('SIGHUP', onHup);
  }
}
