import { SwitchboardError } from './codes.js';

/**
 * Errors by which a backend client (ioredis, the session client) says the backend did not answer or
 * cannot be reached: a command timeout, a closed or not-yet-connected socket, retries used up, a
 * cluster without a usable slot map, or a Redis that is loading, read-only after a failover, or down.
 * The backend being away is not a bug of the request: it is answered `unavailable` (retry later) rather
 * than `internal_error`.
 */
const UNAVAILABLE_MESSAGE =
  /Command timed out|Connection is closed|isn't writeable|not connected|closed before|max retries per request|Failed to refresh slots cache|Cluster isn't ready|None of startup nodes is available|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/i;

/** Whether `err` says a backend is away (see {@link UNAVAILABLE_MESSAGE}), or is an `unavailable` error itself. */
export function isBackendUnavailable(err: unknown): boolean {
  if (err instanceof SwitchboardError) return err.code === 'unavailable';
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  return UNAVAILABLE_MESSAGE.test(err.message);
}
