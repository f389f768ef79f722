/**
 * `@switchboard/session`: what an edge needs of the session service — token verification, the
 * `SessionApi` it calls and its Rpc client. The service itself (repos, passwords, keys, HTTP API) is the
 * `@switchboard/session/service` entry, which edges never import.
 */
export * from './tokens.js';
export * from './api.js';
export * from './rpc-client.js';
export type { AdmissionRequest, AdmissionResult, AdmissionRule, SubscriptionDelta, SubscriptionVerdict } from './admission.js';
