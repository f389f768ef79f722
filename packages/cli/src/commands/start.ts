import { createLogger, loadConfig, type ConfigOverrides } from '@switchboard/core';
import { startAllInOne } from '../all-in-one.js';
import { runUntilSignal } from '../lifecycle.js';

/** `switchboard start [--port N]`: the all-in-one server with embedded backends. */
export async function startCommand(overrides: ConfigOverrides): Promise<number> {
  const config = loadConfig(process.env, overrides);
  const logger = createLogger({ name: 'switchboard', level: config.logLevel, base: { node: config.nodeId } });
  if (config.redisUrl) {
    logger.error('REDIS_URL is set, but this build runs the all-in-one with embedded backends only');
    return 2;
  }
  const node = await startAllInOne(config, logger);
  logger.info(
    { port: node.port, mode: config.mode, backends: 'memory' },
    `switchboard listening on http://${config.host}:${node.port} (WebSocket: ws://localhost:${node.port}/ws)`,
  );
  if (config.mode === 'dev') logger.info('dev mode: `npx switchboard token --sub alice` prints a token this server accepts');
  return runUntilSignal(logger, config.shutdownTimeoutMs, () => node.stop());
}
