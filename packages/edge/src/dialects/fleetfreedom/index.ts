/**
 * The `fleetfreedom` dialect (seed 000): `/fleetfreedom` and `/fleetfreedom/<ghostId>` on the main port;
 * with `FLEETFREEDOM_PORT`, `/` and `/<ghostId>` on a port of its own (the seed's 443 and 40000).
 */
import { defineDialect } from '../../dialect.js';
import { fleetfreedomConfig } from './config.js';
import { DIALECT, FleetFreedomHandler, type FfState } from './handler.js';

/** The `fleetfreedom` dialect definition. */
export const fleetfreedom = defineDialect<FfState>({
  name: DIALECT,
  prefix: '/fleetfreedom',
  routes: [{ path: '/' }, { path: '/:ghostId' }],
  config: fleetfreedomConfig,
  create: (ctx) => new FleetFreedomHandler(ctx),
});
