/**
 * API keys of the publish API. An entry of `SWITCHBOARD_API_KEYS` is `KEY` (every tenant and channel),
 * `TENANT[+TENANT…]=KEY` (only those tenants) or `TENANTS/PATTERN[+PATTERN…]=KEY` (only channels whose
 * `<dialect>:<channel>` matches a pattern; `*` as TENANTS for every tenant). Keys are kept as SHA-256 digests and compared in
 * constant time, every key every time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CHANNEL_PATTERN_RE, channelPattern, isValidTenant } from '@switchboard/core';

/** What a key may publish to: tenants (null: every tenant) and channels (null: every channel). */
export interface KeyScope {
  readonly tenants: ReadonlySet<string> | null;
  /** Patterns of `<dialect>:<channel>` (`*` matches anything). */
  readonly channels: readonly RegExp[] | null;
}

interface KeyEntry {
  readonly digest: Buffer;
  readonly scope: KeyScope;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

const FORMAT = 'an API key entry is KEY, TENANT[+TENANT…]=KEY or TENANTS/PATTERN[+PATTERN…]=KEY (TENANTS may be *), with tenant names of letters, digits, "_", ".", "@", "-"';

/** Parses one `SWITCHBOARD_API_KEYS` entry; throws on a malformed scope. */
export function parseApiKey(entry: string): { key: string; scope: KeyScope } {
  const eq = entry.indexOf('=');
  if (eq < 0) return { key: entry, scope: { tenants: null, channels: null } };
  const head = entry.slice(0, eq);
  const key = entry.slice(eq + 1);
  const slash = head.indexOf('/');
  const tenantPart = slash < 0 ? head : head.slice(0, slash);
  const tenants = tenantPart === '*' ? null : tenantPart.split('+');
  const patterns = slash < 0 ? null : head.slice(slash + 1).split('+');
  if (key.length === 0 || (tenants !== null && tenants.some((t) => !isValidTenant(t))) || (patterns !== null && patterns.some((p) => !CHANNEL_PATTERN_RE.test(p))))
    throw new Error(FORMAT);
  return { key, scope: { tenants: tenants === null ? null : new Set(tenants), channels: patterns === null ? null : patterns.map(channelPattern) } };
}

/** The configured API keys. */
export class ApiKeys {
  private readonly entries: KeyEntry[];

  constructor(entries: readonly string[]) {
    this.entries = entries.map((e) => {
      const { key, scope } = parseApiKey(e);
      return { digest: digest(key), scope };
    });
  }

  /** The scope of the key in an `Authorization: Bearer <key>` header, or null when none matches. */
  authorize(header: string): KeyScope | null {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return null;
    const d = digest(m[1]!);
    let found: KeyScope | null = null;
    // No early exit: every key is compared, each in constant time.
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && found === null) found = e.scope;
    return found;
  }
}
