export * from './store.js';
export { ATTR, MAX_ID } from './model.js';
export * from './events.js';
export * from './store-memory.js';
export * from './store-redis.js';
