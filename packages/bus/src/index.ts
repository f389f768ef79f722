export * from './bus.js';
export * from './bus-memory.js';
export * from './epoch.js';
