import { Packr, Unpackr } from 'msgpackr';
import type { Attrs } from '@switchboard/core';
import { msgpackWithinLimits } from './msgpack-guard.js';

// Records would make encoding depend on earlier messages: every payload must decode on its own.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** What travels in Redis for one message besides its channel/offset/epoch: time, attrs, JSON data. */
export interface Payload {
  readonly ts: number;
  readonly attrs: Attrs;
  readonly data: string;
}

/** Encodes a payload once, at publish. */
export function encodePayload(p: Payload): Buffer {
  return packr.pack([p.ts, p.attrs, p.data]);
}

/** Our payloads nest two levels ([ts, {attrs}, data]); anything deeper was not written by us. */
const MAX_PAYLOAD_DEPTH = 3;

/** Decodes a payload read from Redis; null when it is not one of ours (checked before decoding). */
export function decodePayload(buf: Uint8Array): Payload | null {
  if (!msgpackWithinLimits(buf, MAX_PAYLOAD_DEPTH)) return null;
  let v: unknown;
  try {
    v = unpackr.unpack(buf);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [ts, attrs, data] = v as unknown[];
  if (typeof ts !== 'number' || !Number.isFinite(ts) || typeof data !== 'string' || typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) return null;
  // Attrs are what filters compare: flat scalars, as publishers write them. Anything else is not ours.
  for (const v of Object.values(attrs)) if (typeof v !== 'string' && typeof v !== 'boolean' && (typeof v !== 'number' || !Number.isFinite(v))) return null;
  return { ts, attrs: attrs as Attrs, data };
}
