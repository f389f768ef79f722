import { createLogger, loadConfig, type ConfigOverrides } from '@switchboard/core';
import { startNode } from '../all-in-one.js';
import { runUntilSignal } from '../lifecycle.js';

/**
 * `switchboard start` (the all-in-one: embedded backends, or Redis when `REDIS_URL` is set) and
 * `switchboard edge` (an edge of a cluster: `REDIS_URL` required).
 */
export async function startCommand(role: 'start' | 'edge', overrides: ConfigOverrides): Promise<number> {
  const config = loadConfig(process.env, overrides);
  const logger = createLogger({ name: 'switchboard', level: config.logLevel, base: { node: config.nodeId, role } });
  if (role === 'edge' && !config.redisUrl) {
    logger.error('switchboard edge needs REDIS_URL (edges share channels through Redis); use `switchboard start` for one process');
    return 2;
  }
  const node = await startNode(config, logger);
  logger.info(
    { port: node.port, mode: config.mode, bus: node.backend },
    `switchboard ${role} listening on http://${config.host}:${node.port} (WebSocket: ws://localhost:${node.port}/ws)`,
  );
  if (config.mode === 'dev' && role === 'start')
    logger.info('dev mode: `npx switchboard token --sub alice` prints a token this server accepts');
  return runUntilSignal(logger, config.shutdownTimeoutMs, () => node.stop());
}
