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
