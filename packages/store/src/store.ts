/**
 * The ObjectStore seam (DESIGN §2): versioned JSON objects, scoped by tenant, whose every write commits
 * atomically with its change event, a bus message on the (tenant, type) channel. Subscribers read the
 * events through the ordinary Bus, so they get offsets, epochs, gap repair and recovery like any
 * publish. See docs/store.md.
 */
import type { StreamPosition } from '@switchboard/core';

/**
 * How a dialect describes one object type, once, when it builds the store.
 *
 * Every top-level field of an object belongs to exactly one part; each part has its own counter in
 * the version vector `v`, in `parts` order. A field listed under no part goes to `defaultPart`; when
 * the type has no `defaultPart`, such a field is refused (`invalid_object`) and nothing is written.
 */
export interface ObjectTypeSpec {
  /** Part names in `v` order (at least one; letters, digits, `_`). */
  readonly parts: readonly string[];
  /** For each part, the top-level fields that belong to it. */
  readonly fields?: Readonly<Record<string, readonly string[]>>;
  /** The part of fields listed nowhere in `fields`; absent: such fields are refused. */
  readonly defaultPart?: string;
  /**
   * Top-level fields indexed for {@link ObjectStore.query} and carried in every change event's attrs
   * (letters, digits, `_`, `-`). Their values must be scalars (string, number, boolean, null) whose
   * JSON text is at most {@link StoreLimits.maxIndexedBytes}.
   */
  readonly indexed?: readonly string[];
}

/** Bounds on what the store accepts: checked before Redis, and on the merged object inside the script. */
export interface StoreLimits {
  /** Largest object, as the byte length of its JSON text (id and `v` included). */
  readonly maxObjectBytes: number;
  /** Deepest nesting of the object, the object itself being level 1. */
  readonly maxDepth: number;
  /** Largest `limit` of a query. */
  readonly maxQueryLimit: number;
  /** Most candidate objects one query call examines; beyond it the answer says where to go on. */
  readonly maxQueryScan: number;
  /** Longest JSON text of an indexed field's value. */
  readonly maxIndexedBytes: number;
}

/** The defaults of {@link StoreLimits}. */
export const DEFAULT_STORE_LIMITS: StoreLimits = {
  maxObjectBytes: 64 * 1024,
  maxDepth: 16,
  maxQueryLimit: 1000,
  maxQueryScan: 10_000,
  maxIndexedBytes: 256,
};

/** What every implementation is built from. */
export interface ObjectStoreOptions {
  /** Object types by name (e.g. `asset`, or a Good Uncle topic). */
  readonly types: Readonly<Record<string, ObjectTypeSpec>>;
  /**
   * The bus channel of a (tenant, type), e.g. `(t, type) => \`fleetfreedom:${t}:${type}\``. It must
   * differ per tenant (checked at construction), and must pass `channelNameError`, or the call throws.
   * The channel scopes the objects too: two (tenant, type) pairs with one channel would share objects.
   */
  readonly channel: (tenant: string, type: string) => string;
  readonly limits?: Partial<StoreLimits>;
}

/** A stored object: its JSON fields plus `id` and the version vector `v` (one counter per part). */
export interface StoredObject {
  readonly id: number;
  readonly v: readonly number[];
  readonly [field: string]: unknown;
}

/** Why a call was refused; expected outcomes, not exceptions. */
export type StoreErrorCode =
  | 'not_found'
  | 'version_conflict'
  | 'unknown_type'
  | 'invalid_object'
  | 'forbidden_key'
  | 'too_deep'
  | 'too_large'
  | 'invalid_query'
  | 'ids_exhausted';

/** A refused call: nothing was written and nothing was published. */
export type StoreRefusal =
  | {
      readonly ok: false;
      readonly code: 'version_conflict';
      readonly message: string;
      /** The object as stored now, so the caller can see its `v`. */
      readonly current: StoredObject;
    }
  | { readonly ok: false; readonly code: Exclude<StoreErrorCode, 'version_conflict'>; readonly message: string };

/** A committed create or merge. */
export interface WriteCommitted {
  readonly ok: true;
  /** The object after the write. */
  readonly object: StoredObject;
  /** The JSON text of {@link object}: exactly the change event's `data`. */
  readonly data: string;
  /** Parts whose counters this write bumped, in `v` order (every part for a create). */
  readonly changedParts: readonly string[];
  /** Where the change event went in the channel. */
  readonly position: StreamPosition;
}

/** A committed remove. */
export interface RemoveCommitted {
  readonly ok: true;
  /** The object as it was when it was removed. */
  readonly object: StoredObject;
  readonly data: string;
  readonly position: StreamPosition;
}

/** Answer of {@link ObjectStore.get}. */
export type GetResult = { readonly ok: true; readonly object: StoredObject } | StoreRefusal;
/** Answer of {@link ObjectStore.create} and {@link ObjectStore.merge}. */
export type WriteResult = WriteCommitted | StoreRefusal;
/** Answer of {@link ObjectStore.remove}. */
export type RemoveResult = RemoveCommitted | StoreRefusal;

/** A value a query field may equal: scalars only (compared by JSON text, so `1` never equals `"1"`). */
export type QueryValue = string | number | boolean | null;

/** A bounded query: equality on top-level fields, ascending id order, at most `limit` objects. */
export interface Query {
  /** Field → value that must be equal; `{}` or absent: every object. `id` and `v` are not fields. */
  readonly where?: Readonly<Record<string, QueryValue>>;
  /** At most this many objects (default and maximum {@link StoreLimits.maxQueryLimit}). */
  readonly limit?: number;
  /** Only objects with an id above this one (a previous answer's `nextAfterId`). */
  readonly afterId?: number;
}

/** Answer of {@link ObjectStore.query}. */
export type QueryResult =
  | {
      readonly ok: true;
      readonly objects: readonly StoredObject[];
      /**
       * Null when the scan reached the end; otherwise pass it as `afterId` to go on (the limit was
       * reached, or {@link StoreLimits.maxQueryScan} candidates were examined).
       */
      readonly nextAfterId: number | null;
    }
  | StoreRefusal;

/** Options of {@link ObjectStore.merge}. */
export interface MergeOptions {
  /**
   * The `v` the caller last saw (one counter per part). Compared only at the parts the merge touches:
   * any difference there refuses the merge with `version_conflict`. Absent: no check.
   */
  readonly expectV?: readonly number[];
  /** Top-level fields to delete (their parts count as touched). */
  readonly unset?: readonly string[];
}

/** Options of {@link ObjectStore.remove}. */
export interface RemoveOptions {
  /** The whole `v` the caller last saw; any difference refuses the remove. Absent: no check. */
  readonly expectV?: readonly number[];
}

/**
 * Versioned objects per (tenant, type) whose every write publishes its change event atomically.
 *
 * Change event (a bus message on `channel(tenant, type)`): `data` is the object's JSON text after the
 * write (for a remove: as it was); `attrs` are `op` (`create`|`merge`|`remove`), `id` (number),
 * `part.<part>: true` for each part the write changed (every part for create and remove),
 * `f.<field>` = JSON text of each indexed field after the write, `was.<field>` = its JSON text before
 * (merge and remove; absent when the object did not have the field).
 */
export interface ObjectStore {
  /** The object, or `not_found` (also for an id of another tenant). */
  get(tenant: string, type: string, id: number): Promise<GetResult>;
  /** Creates an object with a new id (allocated per tenant and type, never reused) and `v` all 1. */
  create(tenant: string, type: string, fields: Readonly<Record<string, unknown>>): Promise<WriteResult>;
  /**
   * Sets the patch's top-level fields (values replace, `null` is stored as null) and deletes `unset`
   * ones, bumping the counter of every part touched, if the parts' `v` matches `expectV`.
   */
  merge(
    tenant: string,
    type: string,
    id: number,
    patch: Readonly<Record<string, unknown>>,
    options?: MergeOptions,
  ): Promise<WriteResult>;
  /** Removes the object (its id is not reused). */
  remove(tenant: string, type: string, id: number, options?: RemoveOptions): Promise<RemoveResult>;
  /** Objects whose fields equal `where`, ascending by id, bounded by limit and scan. */
  query(tenant: string, type: string, query?: Query): Promise<QueryResult>;
  /** The bus channel of a tenant's objects of a type (validated). */
  channel(tenant: string, type: string): string;
  /** Whether the backend is reachable (for `/readyz`). */
  ready(): boolean;
  /** Releases connections. */
  close(): Promise<void>;
}
