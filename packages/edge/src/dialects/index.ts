/**
 * The dialect registry: every dialect an edge serves. The server mounts what is listed here and knows no
 * dialect by name; adding a dialect is adding its folder and one line below (docs/adding-a-dialect.md).
 */
import type { DialectDefinition } from '../dialect.js';
import { fleetfreedom } from './fleetfreedom/index.js';
import { fme } from './fme/index.js';
import { gooduncle } from './gooduncle/index.js';
import { oisp } from './oisp/index.js';
import { valtronics } from './valtronics/index.js';

/** Every dialect, in mount order. */
export const DIALECTS: readonly DialectDefinition[] = [valtronics, fleetfreedom, fme, gooduncle, oisp];

/** The config sections of every dialect, for `loadConfig` and the generated docs. */
export const DIALECT_CONFIG_SECTIONS = DIALECTS.map((d) => d.config);
