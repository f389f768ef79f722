/**
 * `@switchboard/client`: the Switchboard client SDK for browsers and Node ≥ 20. Speaks the native
 * `valtronics` dialect; reconnects with backoff and jitter, resumes its session on any edge, recovers
 * every subscription by offset and drops duplicates, so the application sees each update once.
 */
export { SwitchboardClient, type ClientEvents } from './client.js';
export { Subscription, type SubscriptionEvents } from './subscription.js';
export { backoffDelayMs, closeAction, type CloseAction } from './backoff.js';
export type * from './types.js';
