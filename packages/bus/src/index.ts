export * from './bus.js';
export * from './bus-memory.js';
export * from './epoch.js';
export * from './bus-redis-streams.js';
export * from './redis.js';
export * from './codec.js';
export { msgpackWithinLimits } from './msgpack-guard.js';
