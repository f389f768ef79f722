/**
 * The Fleet Freedom object model (seed 000): the object types, their parts in `v` order and which
 * top-level fields belong to which part (docs/dialects/fleetfreedom.md). The seed fixes the part order
 * ("general … always the first number in the v array, and the advanced is always the second. Companies
 * follow the order: general, billing, directory, labels and tags, then policies"); the field lists are
 * this server's decision, modelled on Fleet Freedom's JSON reference. A field listed nowhere is refused.
 */

/** An object type: its parts in `v` order, the fields of each part, the fields the store indexes. */
export interface FfTypeSpec {
  readonly parts: readonly string[];
  readonly fields: Readonly<Record<string, readonly string[]>>;
  readonly indexed?: readonly string[];
}

/** Every Fleet Freedom object type by its name in commands (`getAsset` → `asset`). */
export const FF_TYPES = {
  asset: {
    parts: ['general', 'advanced'],
    fields: {
      general: ['name', 'kind', 'notes', 'labels', 'icon', 'color', 'pictures', 'contact', 'place'],
      advanced: ['tags', 'attributes', 'devices', 'odometer', 'engineHours', 'position', 'options'],
    },
  },
  provider: {
    parts: ['general', 'advanced'],
    fields: {
      general: ['name', 'kind', 'notes', 'labels', 'password', 'asset'],
      advanced: ['parameters', 'configuration', 'attributes', 'firmware', 'data'],
    },
  },
  user: {
    parts: ['general', 'advanced'],
    fields: {
      general: ['login', 'nickname', 'notes', 'labels', 'email', 'phone', 'language', 'timezone', 'contact'],
      advanced: ['permissions', 'groups', 'options', 'passwordExpired'],
    },
    // The session's user is matched to its profile by `login` (connectionResponse/loginResponse `user`).
    indexed: ['login'],
  },
  company: {
    parts: ['general', 'billing', 'directory', 'labels', 'policies'],
    fields: {
      general: ['name', 'notes', 'parent', 'icon', 'contact', 'timezone', 'language'],
      billing: ['plan', 'billingAddress', 'billingContact', 'billingNotes'],
      directory: ['contacts', 'groups'],
      labels: ['labels', 'tags'],
      policies: ['sessionPolicy', 'passwordPolicy', 'options'],
    },
  },
} as const satisfies Record<string, FfTypeSpec>;

/** An object type name. */
export type FfType = keyof typeof FF_TYPES;

/** The object types, in the order the docs list them. */
export const FF_TYPE_NAMES = Object.keys(FF_TYPES) as FfType[];

/** Whether `s` names an object type. */
export function isFfType(s: string): s is FfType {
  return Object.prototype.hasOwnProperty.call(FF_TYPES, s);
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** A subscription type (`assetGeneral`, `companyPolicies`, …): one part of one object type. */
export interface FfSubscriptionType {
  readonly name: string;
  readonly type: FfType;
  readonly part: string;
  /** The part's index in `v`. */
  readonly index: number;
}

/** Every subscription type by name: `<type><Part>`, e.g. `assetGeneral`, `companyBilling`. */
export const FF_SUBSCRIPTION_TYPES: ReadonlyMap<string, FfSubscriptionType> = new Map(
  FF_TYPE_NAMES.flatMap((type) =>
    FF_TYPES[type].parts.map((part, index) => {
      const name = `${type}${cap(part)}`;
      return [name, { name, type, part, index }] as const;
    }),
  ),
);

/** `asset` → `Asset`, as command names spell it. */
export function ffTypeWord(type: FfType): string {
  return cap(type);
}

/** The part (index in `v`) a field belongs to, or -1. */
export function ffPartOf(type: FfType, field: string): number {
  const spec: FfTypeSpec = FF_TYPES[type];
  for (let i = 0; i < spec.parts.length; i++) if ((spec.fields[spec.parts[i]!] ?? []).includes(field)) return i;
  return -1;
}
