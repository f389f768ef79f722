/**
 * The `gooduncle` dialect (seed 004): `/gooduncle` on the main port; with `GOODUNCLE_PORT`, `/` on a port
 * of its own. The server sends "`" to every connection every 300 ms and closes one that sent nothing for
 * 3000 ms (`GOODUNCLE_SILENCE_TIMEOUT_MS`).
 */
import { defineDialect } from '../../dialect.js';
import { goodUncleConfig } from './config.js';
import { DIALECT, GoodUncleHandler } from './handler.js';
import type { GoodUncleState } from './live-query.js';

/** The seed's keep-alive: a single "`" every ~300 ms. */
export const GOODUNCLE_KEEPALIVE = { frame: '`', intervalMs: 300 } as const;

/** The `gooduncle` dialect definition. */
export const gooduncle = defineDialect<GoodUncleState>({
  name: DIALECT,
  prefix: '/gooduncle',
  routes: [{ path: '/' }],
  config: goodUncleConfig,
  keepalive: GOODUNCLE_KEEPALIVE,
  create: (ctx) => new GoodUncleHandler(ctx),
});
