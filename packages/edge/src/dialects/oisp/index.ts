/**
 * The `oisp` dialect (seed 003, OISP IoT WebSocket server): `/oisp` on the main port; with `OISP_PORT`,
 * `/` on a port of its own. Clients must ask for the `echo-protocol` subprotocol.
 */
import { defineDialect } from '../../dialect.js';
import { oispConfig } from './config.js';
import { DIALECT, OispHandler, type OispState } from './handler.js';

/** The `oisp` dialect definition. */
export const oisp = defineDialect<OispState>({
  name: DIALECT,
  prefix: '/oisp',
  routes: [{ path: '/' }],
  subprotocols: { accept: ['echo-protocol'], required: true },
  config: oispConfig,
  // Actuations carry no attributes: the device gets the content only.
  checkPublishAttrs: (_name, attrs) => ({ errors: Object.keys(attrs).map((a) => `attr "${a}": oisp actuations carry no attributes; put it in "data"`), warnings: [] }),
  create: (ctx) => new OispHandler(ctx),
});
