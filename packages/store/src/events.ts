/**
 * Reading change events on the subscriber side: what a dialect's edge code needs to render a bus
 * envelope of a store channel (`<type>Merged`, a live query's enter/change/leave).
 */
import { isPlainObject, type Envelope, type StreamPosition } from '@switchboard/core';
import { ATTR } from './model.js';
import type { ObjectTypeSpec, QueryValue, StoredObject } from './store.js';

/** A decoded change event. */
export interface ChangeEvent {
  readonly op: 'create' | 'merge' | 'remove';
  readonly id: number;
  /** The object after the write (for a remove: as it was). */
  readonly object: StoredObject;
  /** Parts the write changed, in `v` order (every part for create and remove). */
  readonly changedParts: readonly string[];
  /** Indexed field → JSON text of its value after the write (absent: the object has no such field). */
  readonly after: Readonly<Record<string, string>>;
  /** Indexed field → JSON text of its value before the write (create: empty). */
  readonly before: Readonly<Record<string, string>>;
  readonly position: StreamPosition;
}

const OPS = new Set(['create', 'merge', 'remove']);

/** Decodes an envelope of a store channel; null when it is not a change event of that type. */
export function readChangeEvent(env: Envelope, spec: ObjectTypeSpec): ChangeEvent | null {
  const op = env.attrs[ATTR.op];
  const id = env.attrs[ATTR.id];
  if (typeof op !== 'string' || !OPS.has(op) || typeof id !== 'number') return null;
  let object: unknown;
  try {
    object = JSON.parse(env.data);
  } catch {
    return null;
  }
  if (!isPlainObject(object) || object.id !== id || !Array.isArray(object.v)) return null;
  const after: Record<string, string> = {};
  const before: Record<string, string> = {};
  for (const f of spec.indexed ?? []) {
    const a = env.attrs[ATTR.after(f)];
    const b = env.attrs[ATTR.before(f)];
    if (typeof a === 'string') after[f] = a;
    if (typeof b === 'string') before[f] = b;
  }
  return {
    op: op as ChangeEvent['op'],
    id,
    object: object as unknown as StoredObject,
    changedParts: spec.parts.filter((p) => env.attrs[ATTR.part(p)] === true),
    after,
    before,
    position: { epoch: env.epoch, offset: env.offset },
  };
}

/** Whether field values (JSON texts, as in {@link ChangeEvent.after}) equal every value of `where`. */
export function whereMatches(values: Readonly<Record<string, string>>, where: Readonly<Record<string, QueryValue>>): boolean {
  for (const [field, value] of Object.entries(where)) {
    if (!Object.prototype.hasOwnProperty.call(values, field) || values[field] !== JSON.stringify(value)) return false;
  }
  return true;
}

/**
 * Whether the event's object was in a live query's result set before the write and is after it:
 * enter (false→true), change (true→true), leave (true→false). Null when `where` names a field that is
 * not indexed: the event does not carry its previous value, so the subscriber must track ids itself.
 */
export function liveQueryMembership(
  event: ChangeEvent,
  where: Readonly<Record<string, QueryValue>>,
  spec: ObjectTypeSpec,
): { readonly before: boolean; readonly after: boolean } | null {
  const indexed = new Set(spec.indexed ?? []);
  if (!Object.keys(where).every((f) => indexed.has(f))) return null;
  return {
    before: event.op !== 'create' && whereMatches(event.before, where),
    after: event.op !== 'remove' && whereMatches(event.after, where),
  };
}
