/**
 * `oisp` across real processes: two `switchboard edge` processes, a session service and a redis-server.
 * A device registered on edge A gets an actuation published through edge B (the publish API and the
 * documented `switchboard publish` command line), exactly the seed's frame; registering the same device
 * on edge B closes the connection on A with 1000; an actuation published during a 2 s disconnect arrives
 * after the device registers again (on the other edge), once, with nothing delivered earlier replayed;
 * and after its edge is killed, a device registering elsewhere still gets what was published meanwhile.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_API_KEY } from '@switchboard/core';
import { TestClient, oispSeed, startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const DOC = join(import.meta.dirname, '..', '..', '..', 'docs', 'dialects', 'oisp.md');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ACCOUNT = oispSeed.ACCOUNT_ID;
const SUBSCRIBED = '{"code":200,"content":"Subscribed to ws server"}';
const SEED_ACTUATION = JSON.stringify(JSON.parse(oispSeed.ACTUATION_FRAME));

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** An RS256 device token made with node:crypto (the private key never leaves the test). */
function deviceToken(key: KeyObject, deviceId: string, accountId: string): string {
  const head = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: deviceId, accountId, exp: Math.floor(Date.now() / 1000) + 3600 }))}`;
  return `${head}.${b64url(sign('RSA-SHA256', Buffer.from(head), key))}`;
}

function edgeEnv(redisUrl: string, nodeId: string, sessionUrl: string, publicKeyFile: string): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    NODE_ID: nodeId,
    SWITCHBOARD_SESSION_URL: sessionUrl,
    SWITCHBOARD_SHARDS: '16',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_DRAIN_MS: '100',
    OISP_DEVICE_PUBLIC_KEY_FILE: publicKeyFile,
    OISP_ACTUATION_TTL_SEC: '30',
  };
}

const content = (deviceId: string, n: number) => ({ ...oispSeed.ACTUATION_CONTENT, deviceId, gatewayId: deviceId, params: [{ name: 'LED', value: String(n) }] });
const frameOf = (c: Record<string, unknown>) => JSON.stringify({ code: 1024, content: { type: 'command', transport: 'ws', content: c } });

/** The `switchboard publish` line of docs/dialects/oisp.md, placeholders filled, as arguments. */
function documentedPublishArgs(deviceId: string, accountId: string): string[] {
  const line = readFileSync(DOC, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('npx switchboard publish '));
  if (!line) throw new Error('docs/dialects/oisp.md has no `npx switchboard publish` line');
  const filled = line.replaceAll('<deviceId>', deviceId).replaceAll('<accountId>', accountId);
  // The line quotes its JSON with single quotes and nothing else: split on them.
  const parts = filled.replace(/^npx switchboard publish /, '').split("'");
  const args: string[] = [];
  parts.forEach((p, i) => (i % 2 === 1 ? args.push(p) : args.push(...p.split(' ').filter(Boolean))));
  return args;
}

function cliPublish(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'publish', ...args], { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('oisp on two edge processes over Redis', () => {
  let redis: RedisServer;
  let session: SwitchboardProcess;
  let a: SwitchboardProcess;
  let b: SwitchboardProcess;
  let key: KeyObject;

  beforeAll(async () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    key = pair.privateKey;
    const publicKeyFile = join(mkdtempSync(join(tmpdir(), 'oisp-cluster-')), 'public.pem');
    writeFileSync(publicKeyFile, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    redis = await startRedis();
    session = await startSwitchboard(BIN, 'session', { REDIS_URL: redis.url }, 20_000, 'SESSION_PORT');
    [a, b] = await Promise.all([
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, 'edge-a', session.httpUrl, publicKeyFile)),
      startSwitchboard(BIN, 'edge', edgeEnv(redis.url, 'edge-b', session.httpUrl, publicKeyFile)),
    ]);
  }, 90_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop('SIGKILL')]);
    await session?.stop();
    await redis?.stop();
  });

  async function register(edge: SwitchboardProcess, deviceId: string): Promise<TestClient> {
    const c = await TestClient.connect(`${edge.wsUrl}/oisp`, { protocols: 'echo-protocol' });
    c.send(oispSeed.registration(deviceId, deviceToken(key, deviceId, ACCOUNT)));
    expect((await c.nextFrame(() => true, 10_000)).text).toBe(SUBSCRIBED);
    return c;
  }

  async function publish(edge: SwitchboardProcess, deviceId: string, data: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${edge.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
      body: JSON.stringify({ dialect: 'oisp', tenant: ACCOUNT, channel: deviceId, data }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }

  it('a device on edge A gets actuations published through edge B: the publish API and the documented command line', async () => {
    const device = await register(a, oispSeed.DEVICE_ID);
    await publish(b, oispSeed.DEVICE_ID, oispSeed.ACTUATION_CONTENT);
    expect((await device.nextFrame(() => true, 10_000)).text).toBe(SEED_ACTUATION);
    const printed = await cliPublish([...documentedPublishArgs(oispSeed.DEVICE_ID, ACCOUNT), '--url', b.httpUrl]);
    expect(printed.code, printed.out).toBe(0);
    expect((await device.nextFrame(() => true, 10_000)).text).toBe(SEED_ACTUATION);
    await sleep(200);
    expect(device.frames).toEqual([]);
    await device.close();
  }, 60_000);

  it('registering the device again on edge B closes its connection on edge A with 1000', async () => {
    const onA = await register(a, 'moving-1');
    const onB = await register(b, 'moving-1');
    expect((await onA.closed).code).toBe(1000);
    await publish(a, 'moving-1', content('moving-1', 1));
    expect((await onB.nextFrame(() => true, 10_000)).text).toBe(frameOf(content('moving-1', 1)));
    await sleep(200);
    expect(onB.frames).toEqual([]);
    await onB.close();
  }, 30_000);

  it('an actuation published during a 2 s disconnect arrives after the device registers again, once', async () => {
    const id = 'flaky-1';
    const device = await register(a, id);
    await publish(b, id, content(id, 1));
    expect((await device.nextFrame(() => true, 10_000)).text).toBe(frameOf(content(id, 1)));
    await device.close();
    const gone = Date.now();
    await sleep(300);
    await publish(b, id, content(id, 2));
    await publish(a, id, content(id, 3));
    await sleep(Math.max(0, 2000 - (Date.now() - gone)));
    const back = await register(b, id);
    expect((await back.nextFrame(() => true, 10_000)).text).toBe(frameOf(content(id, 2)));
    expect((await back.nextFrame(() => true, 10_000)).text).toBe(frameOf(content(id, 3)));
    await publish(a, id, content(id, 4));
    expect((await back.nextFrame(() => true, 10_000)).text).toBe(frameOf(content(id, 4)));
    await sleep(200);
    expect(back.frames).toEqual([]);
    await back.close();
  }, 30_000);

  it('after its edge is killed, the device registering on the other edge gets what was published meanwhile', async () => {
    const id = 'orphan-1';
    const device = await register(b, id);
    await b.stop('SIGKILL');
    await device.closed;
    await publish(a, id, content(id, 1));
    const back = await register(a, id);
    expect((await back.nextFrame(() => true, 10_000)).text).toBe(frameOf(content(id, 1)));
    await back.close();
  }, 30_000);
});
