/**
 * Shared by the `oisp` tests: a device key pair made in the test (the private key never leaves memory;
 * the public key goes to a temporary PEM file for `OISP_DEVICE_PUBLIC_KEY_FILE`), device tokens, and a
 * device that registers with the seed's frame.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { TestClient, oispSeed } from '@switchboard/testkit';

/** An RSA key pair; `publicKeyFile` holds the public half as PEM. */
export interface DeviceKeys {
  readonly privateKey: KeyObject;
  readonly publicKeyFile: string;
}

/** Makes a key pair and writes its public key to a temporary file. */
export function deviceKeys(): DeviceKeys {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'oisp-keys-'));
  const publicKeyFile = join(dir, 'public.pem');
  writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateKey, publicKeyFile };
}

/** A device token: RS256, `sub` = the device, optional `accountId`, expiring in `ttlSec`. */
export function deviceToken(keys: DeviceKeys, sub: string, o: { accountId?: string; ttlSec?: number } = {}): Promise<string> {
  return new SignJWT(o.accountId !== undefined ? { accountId: o.accountId } : {})
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (o.ttlSec ?? 3600))
    .sign(keys.privateKey);
}

/** Connects to `url` with `echo-protocol`. */
export function connectOisp(url: string): Promise<TestClient> {
  return TestClient.connect(url, { protocols: oispSeed.SUBPROTOCOL });
}

/** Connects and registers `deviceId` with the seed's frame; resolves after the 200 answer. */
export async function registerDevice(url: string, keys: DeviceKeys, deviceId: string, accountId?: string): Promise<TestClient> {
  const c = await connectOisp(url);
  c.send(oispSeed.registration(deviceId, await deviceToken(keys, deviceId, accountId !== undefined ? { accountId } : {})));
  const f = await c.nextFrame(() => true, 5000);
  if (f.text !== '{"code":200,"content":"Subscribed to ws server"}') throw new Error(`registration of ${deviceId} answered ${f.text}`);
  return c;
}

/** The seed's actuation frame as the device must receive it: compact JSON, same key order. */
export const SEED_ACTUATION = JSON.stringify(JSON.parse(oispSeed.ACTUATION_FRAME));

/** The actuation frame for `content`. */
export const actuationFrame = (content: Record<string, unknown>) => JSON.stringify({ code: 1024, content: { type: 'command', transport: 'ws', content } });
