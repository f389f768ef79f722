/**
 * API keys of the publish API. An entry of `SWITCHBOARD_API_KEYS` is `KEY` (every tenant) or
 * `TENANT[+TENANT…]=KEY` (only those tenants). Keys are kept as SHA-256 digests and compared in
 * constant time, every key every time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isValidTenant } from '@switchboard/core';

/** What a key may publish to: null for every tenant. */
export interface KeyScope {
  readonly tenants: ReadonlySet<string> | null;
}

interface KeyEntry {
  readonly digest: Buffer;
  readonly scope: KeyScope;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Parses one `SWITCHBOARD_API_KEYS` entry; throws on a malformed scope. */
export function parseApiKey(entry: string): { key: string; scope: KeyScope } {
  const eq = entry.indexOf('=');
  if (eq < 0) return { key: entry, scope: { tenants: null } };
  const tenants = entry.slice(0, eq).split('+');
  const key = entry.slice(eq + 1);
  if (key.length === 0 || tenants.some((t) => !isValidTenant(t)))
    throw new Error('an API key entry is KEY or TENANT[+TENANT…]=KEY with tenant names of letters, digits, "_", ".", "@", "-"');
  return { key, scope: { tenants: new Set(tenants) } };
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
