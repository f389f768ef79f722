export * from './ports.js';
export * from './ws-client.js';
export * as valtronicsSeed from './seeds-valtronics.js';
export * as goodUncleSeed from './seeds-gooduncle.js';
export * from './sink.js';
export * from './redis.js';
export * from './processes.js';
export * from './children.js';
