/**
 * The `fme` dialect (seed 001, FME Server WebSocket): `/fme` on the main port; with `FME_PORT`, `/` and
 * `/websocket` on a port of its own (FME's clients use port 7078, path `/websocket`).
 */
import { defineDialect } from '../../dialect.js';
import { fmeConfig } from './config.js';
import { DIALECT, FmeHandler, type FmeState } from './handler.js';

/** The `fme` dialect definition. */
export const fme = defineDialect<FmeState>({
  name: DIALECT,
  prefix: '/fme',
  routes: [{ path: '/' }, { path: '/websocket', on: 'own' }],
  config: fmeConfig,
  create: (ctx) => new FmeHandler(ctx),
});
