/**
 * The `oisp` dialect against the seed (003), over real sockets: `/oisp` on the main port and `/` on
 * OISP_PORT with the `echo-protocol` subprotocol answered; the seed's registration frame answered 200
 * "Subscribed to ws server"; actuations published through `POST /api/publish` and through the original's
 * WebSocket form reach the device as exactly the seed's frame; ping answered; one connection per device
 * (the older one closed with 1000); actuations published while a device was offline delivered when it
 * registers again within the TTL, once each and in order, and not after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oispSeed } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';
import { SEED_ACTUATION, actuationFrame, connectOisp, deviceKeys, deviceToken, registerDevice, type DeviceKeys } from './oisp.helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SERVICE = { username: 'actuator', password: 'correct horse battery' };
const ACCOUNT = oispSeed.ACCOUNT_ID;

let node: TestNode;
let keys: DeviceKeys;
let ownUrl: string;
let mainUrl: string;

beforeAll(async () => {
  keys = deviceKeys();
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0 },
    {
      env: {
        OISP_PORT: '0',
        OISP_DEVICE_PUBLIC_KEY_FILE: keys.publicKeyFile,
        OISP_ACTUATION_TTL_SEC: '3',
        OISP_SERVICE_USERNAME: SERVICE.username,
        OISP_SERVICE_PASSWORD: SERVICE.password,
      },
    },
  );
  ownUrl = `ws://127.0.0.1:${node.edge.port('oisp')}`;
  mainUrl = `${node.wsUrl}/oisp`;
});
afterAll(async () => {
  await node.close();
});

/** Publishes one actuation for `deviceId` through the publish API. */
async function publish(deviceId: string, content: Record<string, unknown>, tenant = ACCOUNT): Promise<void> {
  const res = await node.publishHttp({ dialect: 'oisp', tenant, channel: deviceId, data: content });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

const content = (deviceId: string, n: number) => ({ ...oispSeed.ACTUATION_CONTENT, deviceId, gatewayId: deviceId, params: [{ name: 'LED', value: String(n) }] });

describe('oisp: the seed over real sockets', () => {
  it('serves /oisp on the main port and / on OISP_PORT, answering with echo-protocol', async () => {
    for (const url of [mainUrl, `${ownUrl}/`]) {
      const c = await connectOisp(url);
      expect(c.ws.protocol).toBe('echo-protocol');
      await c.close();
    }
  });

  it('the seed registration frame is answered exactly {"code":200,"content":"Subscribed to ws server"}', async () => {
    for (const url of [mainUrl, ownUrl]) {
      const c = await connectOisp(url);
      c.send(oispSeed.registration('reg-1', await deviceToken(keys, 'reg-1', { accountId: ACCOUNT })));
      expect((await c.nextFrame()).text).toBe('{"code":200,"content":"Subscribed to ws server"}');
      await c.close();
    }
  });

  it('POST /api/publish with the seed content: the device receives exactly the seed frame, nothing else', async () => {
    const device = await registerDevice(ownUrl, keys, oispSeed.DEVICE_ID, ACCOUNT);
    await publish(oispSeed.DEVICE_ID, oispSeed.ACTUATION_CONTENT);
    expect((await device.nextFrame()).text).toBe(SEED_ACTUATION);
    await sleep(100);
    expect(device.frames).toEqual([]);
    await device.close();
  });

  it('the WebSocket actuation form with the service account reaches the device; the sender is told', async () => {
    const device = await registerDevice(mainUrl, keys, 'ws-form-1', ACCOUNT);
    const backend = await connectOisp(mainUrl);
    const body = content('ws-form-1', 1);
    backend.send({ type: 'actuation', credentials: SERVICE, body });
    expect((await backend.nextFrame()).text).toBe('{"code":200,"content":"Actuation sent"}');
    expect((await device.nextFrame()).text).toBe(actuationFrame(body));
    // A body without accountId goes to the default tenant: not to this device.
    backend.send({ type: 'actuation', credentials: SERVICE, body: { deviceId: 'ws-form-1', command: 'x' } });
    await backend.nextFrame();
    await sleep(100);
    expect(device.frames).toEqual([]);
    await Promise.all([device.close(), backend.close()]);
  });

  it('ping is answered {"code":200,"content":"pong"}', async () => {
    const device = await registerDevice(mainUrl, keys, 'pinger', ACCOUNT);
    device.send({ type: 'ping' });
    expect((await device.nextFrame()).text).toBe('{"code":200,"content":"pong"}');
    await device.close();
  });

  it('a token without accountId puts the device in the default tenant; tenants never cross', async () => {
    const plain = await registerDevice(mainUrl, keys, 'tenantless');
    const other = await registerDevice(mainUrl, keys, 'tenantless', 'acct-b');
    await publish('tenantless', { deviceId: 'tenantless', command: 'default' }, 'default');
    await publish('tenantless', { deviceId: 'tenantless', command: 'b' }, 'acct-b');
    expect((await plain.nextFrame()).text).toBe(actuationFrame({ deviceId: 'tenantless', command: 'default' }));
    expect((await other.nextFrame()).text).toBe(actuationFrame({ deviceId: 'tenantless', command: 'b' }));
    await sleep(100);
    expect(plain.frames).toEqual([]);
    expect(other.frames).toEqual([]);
    await Promise.all([plain.close(), other.close()]);
  });

  it('registering again closes the older connection with 1000; the newer gets the actuations', async () => {
    const first = await registerDevice(mainUrl, keys, 'twice', ACCOUNT);
    const second = await registerDevice(ownUrl, keys, 'twice', ACCOUNT);
    expect((await first.closed).code).toBe(1000);
    await publish('twice', content('twice', 1));
    expect((await second.nextFrame()).text).toBe(actuationFrame(content('twice', 1)));
    await second.close();
  });

  it('actuations published while the device is offline arrive when it registers again, once each, in order', async () => {
    const id = 'offline-1';
    const device = await registerDevice(mainUrl, keys, id, ACCOUNT);
    await publish(id, content(id, 0));
    expect((await device.nextFrame()).text).toBe(actuationFrame(content(id, 0)));
    await device.close();
    await sleep(100);
    for (let i = 1; i <= 5; i++) await publish(id, content(id, i));
    const again = await registerDevice(ownUrl, keys, id, ACCOUNT);
    for (let i = 1; i <= 5; i++) expect((await again.nextFrame()).text).toBe(actuationFrame(content(id, i)));
    await publish(id, content(id, 6));
    expect((await again.nextFrame()).text).toBe(actuationFrame(content(id, 6)));
    await sleep(100);
    expect(again.frames).toEqual([]);
    await again.close();
  });

  it('a device new to the cluster gets what was published for it within the TTL', async () => {
    await publish('newcomer', content('newcomer', 1));
    const device = await registerDevice(mainUrl, keys, 'newcomer', ACCOUNT);
    expect((await device.nextFrame()).text).toBe(actuationFrame(content('newcomer', 1)));
    await device.close();
  });

  it('an actuation older than OISP_ACTUATION_TTL_SEC (3 s) when the device comes back is not delivered', async () => {
    const id = 'late-1';
    const device = await registerDevice(mainUrl, keys, id, ACCOUNT);
    await device.close();
    await sleep(100);
    await publish(id, content(id, 1));
    await sleep(3200);
    await publish(id, content(id, 2));
    const again = await registerDevice(mainUrl, keys, id, ACCOUNT);
    expect((await again.nextFrame()).text).toBe(actuationFrame(content(id, 2)));
    await sleep(100);
    expect(again.frames).toEqual([]);
    await again.close();
  });
});
