/**
 * Hostile and malformed input on the `oisp` dialect: each case gets the documented answer
 * (docs/dialects/oisp.md) — the upgrade refused, `{"code":401,...}` and close 1007 or 1008, 413/429 with
 * the connection kept — the node never crashes, and a registered bystander device loses no actuation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, UnsecuredJWT } from 'jose';
import { TestClient, oispSeed } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';
import { actuationFrame, connectOisp, deviceKeys, deviceToken, registerDevice, type DeviceKeys } from './oisp.helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SERVICE = { username: 'actuator', password: 'correct horse battery' };
const WRONG_FORMAT = '{"code":401,"content":"Wrong message format"}';
const INVALID_TOKEN = '{"code":401,"content":"Invalid device token"}';

let node: TestNode;
let keys: DeviceKeys;
let url: string;
let bystander: TestClient;
let sent = 0;

beforeAll(async () => {
  keys = deviceKeys();
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000, rateLimitCloseAfter: 50 },
    {
      env: {
        OISP_DEVICE_PUBLIC_KEY_FILE: keys.publicKeyFile,
        OISP_MESSAGES_PER_SEC: '20',
        OISP_MESSAGES_BURST: '20',
        OISP_MAX_MESSAGE_BYTES: '4096',
        OISP_AUTH_TIMEOUT_MS: '1500',
        OISP_SERVICE_USERNAME: SERVICE.username,
        OISP_SERVICE_PASSWORD: SERVICE.password,
      },
    },
  );
  url = `${node.wsUrl}/oisp`;
  bystander = await registerDevice(url, keys, 'bystander');
});
afterAll(async () => {
  // Nothing above cost the bystander an actuation: one more still arrives, after every earlier one.
  const n = ++sent;
  await node.publishHttp({ dialect: 'oisp', channel: 'bystander', data: { deviceId: 'bystander', n } });
  const got: string[] = [];
  for (let i = 1; i <= n; i++) got.push((await bystander.nextFrame()).text);
  expect(got).toEqual(Array.from({ length: n }, (_, i) => actuationFrame({ deviceId: 'bystander', n: i + 1 })));
  await node.close();
});

/** An actuation to the bystander while a case runs. */
async function feed(): Promise<void> {
  const res = await node.publishHttp({ dialect: 'oisp', channel: 'bystander', data: { deviceId: 'bystander', n: ++sent } });
  expect(res.status).toBe(200);
}

/** Sends `frame` on a fresh connection; resolves with the answer and the close code. */
async function answerAndClose(frame: string | Buffer, register?: string): Promise<{ text: string; code: number }> {
  const c = register !== undefined ? await registerDevice(url, keys, register) : await connectOisp(url);
  c.send(frame);
  const f = await c.nextFrame();
  const { code } = await c.closed;
  return { text: f.text, code };
}

describe('oisp: refused before the upgrade', () => {
  it('no subprotocol, or another one, is refused with 400 before the upgrade', async () => {
    await expect(TestClient.connect(url)).rejects.toThrow(/400/);
    await expect(TestClient.connect(url, { protocols: 'chat' })).rejects.toThrow(/400/);
    await expect(TestClient.connect(url, { protocols: ['chat', 'superchat'] })).rejects.toThrow(/400/);
    // Offered among others, echo-protocol is chosen.
    const c = await TestClient.connect(url, { protocols: ['chat', 'echo-protocol'] });
    expect(c.ws.protocol).toBe('echo-protocol');
    await c.close();
    await feed();
  });
});

describe('oisp: device tokens', () => {
  const reg = (deviceId: string, token: string) => oispSeed.registration(deviceId, token);

  it('a token of another device: 401 "Invalid device token", close 1008', async () => {
    expect(await answerAndClose(reg('dev-a', await deviceToken(keys, 'dev-b')))).toEqual({ text: INVALID_TOKEN, code: 1008 });
    await feed();
  });

  it('alg none, HS256 (also "signed" with the public key as secret), another key, expired, garbage: 401, close 1008', async () => {
    const now = Math.floor(Date.now() / 1000);
    const none = new UnsecuredJWT({}).setSubject('dev-a').setExpirationTime(now + 60).encode();
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('dev-a').setExpirationTime(now + 60).sign(new TextEncoder().encode('x'.repeat(32)));
    const confused = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('dev-a')
      .setExpirationTime(now + 60)
      .sign(readFileSync(keys.publicKeyFile));
    const otherKey = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('dev-a')
      .setExpirationTime(now + 60)
      .sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    const expired = await deviceToken(keys, 'dev-a', { ttlSec: -60 });
    for (const token of [none, hs, confused, otherKey, expired, 'not-a-jwt', 'a.b.c']) {
      expect(await answerAndClose(reg('dev-a', token)), token.slice(0, 40)).toEqual({ text: INVALID_TOKEN, code: 1008 });
    }
    await feed();
  });

  it('a registered connection registering another device: 401, close 1008', async () => {
    expect(await answerAndClose(reg('dev-z', await deviceToken(keys, 'dev-z')), 'dev-y')).toEqual({ text: INVALID_TOKEN, code: 1008 });
  });

  it('the same device again on its connection with a fresh token: 200 again, still registered', async () => {
    const c = await registerDevice(url, keys, 'dev-again');
    c.send(reg('dev-again', await deviceToken(keys, 'dev-again')));
    expect((await c.nextFrame()).text).toBe('{"code":200,"content":"Subscribed to ws server"}');
    await node.publishHttp({ dialect: 'oisp', channel: 'dev-again', data: { deviceId: 'dev-again' } });
    expect((await c.nextFrame()).text).toBe(actuationFrame({ deviceId: 'dev-again' }));
    await c.close();
  });
});

describe('oisp: malformed frames', () => {
  const cases: [string, string | Buffer][] = [
    ['unparsable JSON', '{"type":"device",'],
    ['not an object', '["device"]'],
    ['no type', '{"deviceId":"d"}'],
    ['unknown type', '{"type":"subscribe","channel":"x"}'],
    ['device without a token', '{"type":"device","deviceId":"d"}'],
    ['device id of the wrong type', '{"type":"device","deviceId":{"a":1},"deviceToken":"t"}'],
    ['__proto__ key', '{"type":"device","deviceId":"d","deviceToken":"t","__proto__":{"admin":true}}'],
    ['constructor key', '{"type":"ping","constructor":{"prototype":{}}}'],
    ['deep nesting', `{"type":"ping","x":${'['.repeat(100)}${']'.repeat(100)}}`],
    ['a binary frame', Buffer.from([1, 2, 3])],
  ];
  it.each(cases)('%s: 401 "Wrong message format", close 1007', async (_name, frame) => {
    expect(await answerAndClose(frame)).toEqual({ text: WRONG_FORMAT, code: 1007 });
  });

  it('the same from a registered device: 401 "Wrong message format", close 1007', async () => {
    expect(await answerAndClose('nonsense', 'dev-garbage')).toEqual({ text: WRONG_FORMAT, code: 1007 });
    await feed();
  });
});

describe('oisp: before registration, limits, floods', () => {
  it('a ping before registration: 401 "Device not registered", and the connection may still register', async () => {
    const c = await connectOisp(url);
    c.send({ type: 'ping' });
    expect((await c.nextFrame()).text).toBe('{"code":401,"content":"Device not registered"}');
    c.send(oispSeed.registration('late-reg', await deviceToken(keys, 'late-reg')));
    expect((await c.nextFrame()).text).toBe('{"code":200,"content":"Subscribed to ws server"}');
    await c.close();
  });

  it('no registration within OISP_AUTH_TIMEOUT_MS: closed with 4001', async () => {
    const c = await connectOisp(url);
    expect((await c.closed).code).toBe(4001);
  });

  it('an actuation with wrong credentials: 401 "Invalid credentials", close 1008; nothing published', async () => {
    const r = await answerAndClose(JSON.stringify({ type: 'actuation', credentials: { ...SERVICE, password: 'wrong password!' }, body: { deviceId: 'bystander' } }));
    expect(r).toEqual({ text: '{"code":401,"content":"Invalid credentials"}', code: 1008 });
  });

  it('a frame over OISP_MAX_MESSAGE_BYTES: 413, the device stays registered', async () => {
    const c = await registerDevice(url, keys, 'big');
    c.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(5000) }));
    const f = await c.nextFrame();
    expect((f.json as { code: number }).code).toBe(413);
    c.send({ type: 'ping' });
    expect((await c.nextFrame()).text).toBe('{"code":200,"content":"pong"}');
    await c.close();
  });

  it('a flood: 429 answers, then closed with 4029; the bystander loses nothing', async () => {
    const c = await registerDevice(url, keys, 'flooder');
    const feeding = (async () => {
      for (let i = 0; i < 10; i++) await feed();
    })();
    for (let i = 0; i < 400 && c.open; i++) c.send({ type: 'ping' });
    const { code } = await c.closed;
    expect(code).toBe(4029);
    expect(c.frames.some((f) => (f.json as { code?: number } | undefined)?.code === 429)).toBe(true);
    await feeding;
  });

  it('registrations with no public key configured are answered 500', async () => {
    const bare = await startTestNode({ newConnectionsPerUserPerMin: 0 });
    try {
      const c = await connectOisp(`${bare.wsUrl}/oisp`);
      c.send(oispSeed.registration('d', await deviceToken(keys, 'd')));
      expect((await c.nextFrame()).text).toBe('{"code":500,"content":"Internal server error"}');
      await c.close();
    } finally {
      await bare.close();
    }
  });

  it('publishes the API refuses: another device in data, no object, attrs', async () => {
    const bad = [
      { dialect: 'oisp', channel: 'bystander', data: { deviceId: 'someone-else' } },
      { dialect: 'oisp', channel: 'bystander', data: 'LED on' },
      { dialect: 'oisp', channel: '', data: {} },
    ];
    for (const body of bad) expect((await node.publishHttp(body)).status).toBe(400);
    await sleep(50);
  });
});
