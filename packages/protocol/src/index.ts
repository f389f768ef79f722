export * from './valtronics/index.js';
export * from './fleetfreedom/index.js';
export * from './fme/index.js';
export * from './gooduncle/index.js';
export * from './oisp/index.js';
