export * from './ports.js';
export * from './ws-client.js';
export * as valtronicsSeed from './seeds-valtronics.js';
export * as fmeSeed from './seeds-fme.js';
export * from './sink.js';
export * from './redis.js';
export * from './processes.js';
export * from './children.js';
