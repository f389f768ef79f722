/**
 * The `valtronics` dialect (seed 002): `/ws` and its channel-scoped endpoints on the main port; with
 * `VALTRONICS_PORT`, the same routes at `/` on a port of its own.
 */
import { checkValtronicsAttrs, isValtronicsChannel } from '@switchboard/protocol';
import { defineDialect } from '../../dialect.js';
import { valtronicsConfig } from './config.js';
import { DIALECT, VALTRONICS_ROUTES, ValtronicsHandler, type ValtronicsState } from './handler.js';

/** The `valtronics` dialect definition. */
export const valtronics = defineDialect<ValtronicsState>({
  name: DIALECT,
  prefix: '/ws',
  routes: VALTRONICS_ROUTES,
  config: valtronicsConfig,
  // An unknown channel is the publish API's to refuse (unknown_channel): nothing to say about its attrs.
  checkPublishAttrs: (name, attrs) => (isValtronicsChannel(name) ? checkValtronicsAttrs(name, attrs) : { errors: [], warnings: [] }),
  create: (ctx) => new ValtronicsHandler(ctx),
});
