/**
 * `@switchboard/session/service`: the session/auth service — logic, repos, passwords, signing keys, the
 * Rpc handler and the HTTP API. Only the processes that run the service import it.
 */
export * from './index.js';
export * from './admission.js';
export * from './passwords.js';
export * from './keys.js';
export * from './repo.js';
export * from './repo-memory.js';
export * from './repo-redis.js';
export * from './metrics.js';
export * from './service.js';
export * from './rpc-handler.js';
export * from './http.js';
export * from './setup.js';
