/** One connection asking to be admitted. */
export interface AdmissionRequest {
  readonly userId: string;
  /** Unique per connection across the cluster (`<nodeId>:<n>`). */
  readonly connId: string;
  readonly nodeId: string;
  readonly ip: string;
}

/** The limit that refused a connection: label of the rejection metric. */
export type AdmissionRule = 'user_concurrent' | 'total_concurrent' | 'user_rate' | 'ip_rate';

/** Answer of {@link Admission.admit}. */
export type AdmissionResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly rule: AdmissionRule;
      readonly code: 'connection_limit' | 'rate_limited';
      readonly message: string;
    };

/** Limits enforced at admission (DESIGN §6). */
export interface AdmissionLimits {
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsTotal: number;
  /** 0 disables. */
  readonly newConnectionsPerUserPerMin: number;
  /** 0 disables. */
  readonly newConnectionsPerIpPerMin: number;
}

/** Cluster-wide connection admission: atomic check-and-count, released on close. */
export interface Admission {
  admit(req: AdmissionRequest): Promise<AdmissionResult>;
  release(connId: string): Promise<void>;
  /** Connections currently admitted (all users). */
  count(): Promise<number>;
}

/** Builds the refusal for a rule, with a message that names the limit. */
export function refusal(rule: AdmissionRule, limits: AdmissionLimits): AdmissionResult {
  switch (rule) {
    case 'user_concurrent':
      return { ok: false, rule, code: 'connection_limit', message: `at most ${limits.maxConnectionsPerUser} concurrent connections per user` };
    case 'total_concurrent':
      return { ok: false, rule, code: 'connection_limit', message: `the server holds its maximum of ${limits.maxConnectionsTotal} connections` };
    case 'user_rate':
      return { ok: false, rule, code: 'rate_limited', message: `at most ${limits.newConnectionsPerUserPerMin} new connections per minute per user` };
    case 'ip_rate':
      return { ok: false, rule, code: 'rate_limited', message: `at most ${limits.newConnectionsPerIpPerMin} new connections per minute per address` };
  }
}

// ------------------------------------------------------------------------------------------------
// Per-user subscription caps across the cluster: each admitted connection's subscription count, summed
// per user, checked atomically with the admission state (released with the connection).

/** One change of an admitted connection's subscription count. */
export interface SubscriptionDelta {
  /** The admitted connection (`<nodeId>:<n>`); its user is the one it was admitted for. */
  readonly connId: string;
  /** Subscriptions added (> 0) or dropped (< 0); never 0. */
  readonly delta: number;
  /** Count a positive delta even past the cap (subscriptions a resumed session restores). */
  readonly force?: boolean;
}

/**
 * Answer to one {@link SubscriptionDelta}: `ok` (applied), `over_cap` (a positive delta refused: the user's
 * total across the cluster would pass the cap), `not_admitted` (a positive delta for a connection that is
 * not admitted any more, e.g. released or reaped: nothing counted). A negative delta is always `ok`.
 */
export type SubscriptionVerdict = 'ok' | 'over_cap' | 'not_admitted';

/** Largest subscription delta one item may carry (a guard, far above any per-connection limit). */
export const MAX_SUBSCRIPTION_DELTA = 1_000_000;

/** Cluster-wide per-user subscription counts, kept per admitted connection. */
export interface SubscriptionCounts {
  /**
   * Applies `deltas` in order, atomically as a whole: a positive delta is refused when the user's total
   * would pass `maxPerUser` (unless forced); a negative one is always applied (never below zero for its
   * connection). Releasing a connection (release, releaseNode, reapDeadNodes) drops its count.
   */
  reserveSubscriptions(deltas: readonly SubscriptionDelta[], maxPerUser: number): Promise<SubscriptionVerdict[]>;
  /** The subscriptions a user's admitted connections hold together, across the cluster. */
  subscriptionsOf(userId: string): Promise<number>;
}
