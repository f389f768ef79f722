/** Reconnect timing: exponential backoff with full jitter, and what each close code asks for. */

/**
 * The delay before reconnect attempt `attempt` (0 for the first): a uniformly random value between 0
 * and `min(maxMs, initialMs * 2^attempt)` ("full jitter"), so a crowd of clients dropped at once
 * spreads its reconnects instead of stampeding the next edge.
 */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/** What the client does after the server closed the connection with a code. */
export type CloseAction = 'reconnect' | 'reconnect_now' | 'auth_failed' | 'stop';

/**
 * The documented close codes (docs/close-codes.md): 1012 (the node drains) asks for an immediate
 * reconnect elsewhere; 4001/4003 are authentication failures and 4012 a revoked session, not worth
 * retrying with the same token; 4013 (the session was resumed elsewhere) stops;
 * every other code (4008 slow consumer, 4010 insufficient state, 4009 admission, 4029, 1011, 1006
 * dropped) reconnects with backoff and recovers by offset.
 */
export function closeAction(code: number): CloseAction {
  if (code === 1012) return 'reconnect_now';
  // 4012 (revoked) must not reconnect with the same credentials (a token function may give new ones);
  // 4013 (the session moved to another socket) must not reconnect at all, or two clients sharing a
  // session would take it from each other forever.
  if (code === 4001 || code === 4003 || code === 4012) return 'auth_failed';
  if (code === 4013) return 'stop';
  return 'reconnect';
}
