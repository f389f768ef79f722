/**
 * Channel authorization: which channels a connection may subscribe to, decided by a policy of channel
 * patterns per role. A channel is named `<dialect>:<name>` (its name as the dialect's clients know it,
 * within the connection's tenant: tenants are separated by the bus namespace, not by the policy).
 */

/** Denial reasons of `switchboard_authz_denials_total` (a bounded set). */
export type AuthzReason = 'role' | 'device' | 'tenant' | 'channel';

/** A channel pattern: `*` matches any run of characters (`:` included), everything else itself. */
export function channelPattern(glob: string): RegExp {
  const body = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}

/** What a channel pattern may hold: letters, digits and `_ . : @ / * -`. */
export const CHANNEL_PATTERN_RE = /^[A-Za-z0-9_.:@/*~-]{1,128}$/;

/** A policy: role → channel patterns; the role `*` applies to every authenticated identity. */
export type ChannelPolicyRules = Readonly<Record<string, readonly string[]>>;

/** A compiled channel policy. With no rules at all it is not enforced (every channel is allowed). */
export class ChannelPolicy {
  private readonly byRole = new Map<string, RegExp[]>();

  constructor(rules: ChannelPolicyRules) {
    for (const [role, patterns] of Object.entries(rules)) this.byRole.set(role, patterns.map(channelPattern));
  }

  /** Whether a policy is configured at all. */
  get enforced(): boolean {
    return this.byRole.size > 0;
  }

  /** Whether an identity with `roles` may subscribe to `<dialect>:<name>`. */
  allows(roles: readonly string[], dialect: string, name: string): boolean {
    if (!this.enforced) return true;
    const channel = `${dialect}:${name}`;
    const any = this.byRole.get('*');
    if (any && any.some((re) => re.test(channel))) return true;
    for (const role of roles) {
      const res = this.byRole.get(role);
      if (res && res.some((re) => re.test(channel))) return true;
    }
    return false;
  }
}
