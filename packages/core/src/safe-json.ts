import type { ErrorCode } from './codes.js';

/**
 * Keys that must never reach an object merge or a property lookup chain: `__proto__`, `constructor`,
 * `prototype` (compared inline in {@link walk}, which runs for every key of every published message).
 */
function isForbiddenKey(key: string): boolean {
  return key === '__proto__' || key === 'constructor' || key === 'prototype';
}

/** Outcome of a guarded parse: the value, or a registered error code and a message. */
export type GuardResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/**
 * Checks an already-parsed JSON value: nesting at most `maxDepth` levels of objects/arrays and no
 * forbidden key anywhere. Stops descending at the limit, so hostile input cannot exhaust the stack.
 * Returns null when the value is acceptable, or the error otherwise.
 */
export function checkJsonValue(
  value: unknown,
  maxDepth: number,
): { code: ErrorCode; message: string } | null {
  return walk(value, 0, maxDepth);
}

function walk(value: unknown, depth: number, maxDepth: number): { code: ErrorCode; message: string } | null {
  if (value === null || typeof value !== 'object') return null;
  if (depth >= maxDepth) return { code: 'too_deep', message: `payload nests deeper than ${maxDepth} levels` };
  // Indexed loops, and no call for a scalar member: this walk runs over every published payload.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === null || typeof item !== 'object') continue;
      const err = walk(item, depth + 1, maxDepth);
      if (err) return err;
    }
    return null;
  }
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (isForbiddenKey(key)) return { code: 'forbidden_key', message: `key "${key}" is not allowed` };
    const member = (value as Record<string, unknown>)[key];
    if (member === null || typeof member !== 'object') continue;
    const err = walk(member, depth + 1, maxDepth);
    if (err) return err;
  }
  return null;
}

/**
 * Parses untrusted JSON text: invalid JSON, nesting deeper than `maxDepth` and forbidden keys
 * (`__proto__`, `constructor`, `prototype`) are refused with their registered codes.
 */
export function parseJsonGuarded(text: string, maxDepth: number): GuardResult<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_json', message: 'message is not valid JSON' };
  }
  const err = checkJsonValue(value, maxDepth);
  return err ? { ok: false, ...err } : { ok: true, value };
}

/** True for a plain JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
