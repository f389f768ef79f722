import { randomBytes } from 'node:crypto';

/** A fresh epoch: short, URL-safe, random, so that a reset channel never reuses an old epoch. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}
