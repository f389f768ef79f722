/**
 * Rendering Fleet Freedom server frames: `<cmd>Response {reqId, errorCode, message, …}`,
 * `<type><Part>Merged {…}` and `<type>Deleted {"id","company"}`. Objects go out as the client caches
 * them: `id`, `company`, `v` (one counter per part, in part order), then their fields.
 */
import { FF_TYPES, type FfSubscriptionType, type FfType, type FfTypeSpec } from './model.js';
import type { FfReqId } from './parse.js';

/** A stored object as the dialect reads it from the store: `id`, `v` and its fields. */
export interface FfStoredObject {
  readonly id: number;
  readonly v: readonly number[];
  readonly [field: string]: unknown;
}

/**
 * `<cmd>Response {…}`: `reqId` first when the request had one, then `errorCode` and `message`, then the
 * command's own fields.
 */
export function renderFfResponse(cmd: string, reqId: FfReqId, errorCode: number, message: string, extra?: Readonly<Record<string, unknown>>): string {
  const body: Record<string, unknown> = {};
  if (reqId !== null) body.reqId = reqId;
  body.errorCode = errorCode;
  body.message = message;
  if (extra) for (const k of Object.keys(extra)) if (extra[k] !== undefined) body[k] = extra[k];
  return `${cmd}Response ${JSON.stringify(body)}`;
}

/** The public id of an object: a company's is the company id, whatever the store numbered it. */
function publicId(type: FfType, obj: FfStoredObject, company: number): number {
  return type === 'company' ? company : obj.id;
}

/** A whole object as `get`/`merge` answer it: `id`, `company`, `v`, then every field. */
export function ffPublicObject(type: FfType, obj: FfStoredObject, company: number): Record<string, unknown> {
  const out: Record<string, unknown> = { id: publicId(type, obj, company), company, v: obj.v };
  for (const k of Object.keys(obj)) if (k !== 'id' && k !== 'v' && k !== 'company') out[k] = obj[k];
  return out;
}

/** One part of an object (a `<type><Part>Merged` body): `id`, `company`, the whole `v`, the part's fields. */
export function ffPartObject(st: FfSubscriptionType, obj: FfStoredObject, company: number): Record<string, unknown> {
  const out: Record<string, unknown> = { id: publicId(st.type, obj, company), company, v: obj.v };
  const spec: FfTypeSpec = FF_TYPES[st.type];
  for (const f of spec.fields[st.part] ?? []) if (Object.prototype.hasOwnProperty.call(obj, f)) out[f] = obj[f];
  return out;
}

/** `<type><Part>Merged {…}` for a subscriber of that part. */
export function renderFfMerged(st: FfSubscriptionType, obj: FfStoredObject, company: number): string {
  return `${st.name}Merged ${JSON.stringify(ffPartObject(st, obj, company))}`;
}

/** `<type>Deleted {"id":…,"company":…}`. */
export function renderFfDeleted(type: FfType, id: number, company: number): string {
  return `${type}Deleted {"id":${id},"company":${company}}`;
}
