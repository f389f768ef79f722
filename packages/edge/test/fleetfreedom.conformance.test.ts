/**
 * Conformance of the `fleetfreedom` dialect with its seed (000): the seed's own frames replayed over real
 * WebSockets against a real uWS edge (memory backends): `connectionResponse` first, `login`, `getCompany`
 * (pretty-printed and as the JavaScript sample sends it), `subscribe` and the `Merged`/`Deleted` frames,
 * ghostId resume with subscriptions restored and missed changes replayed, and the dedicated port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, collectFf, fleetfreedomSeed, nextFf, parseFfFrame, sendFf } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

const { CLIENT_FRAMES, SERVER_FRAMES } = fleetfreedomSeed;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let node: TestNode;
let ownUrl: string;
beforeAll(async () => {
  node = await startTestNode(
    { newConnectionsPerUserPerMin: 0, checkpointMs: 100 },
    { env: { FLEETFREEDOM_PORT: '0', FLEETFREEDOM_SESSION_POLICY: '{"idleMinutes":30}' } },
  );
  ownUrl = `ws://127.0.0.1:${node.edge.port('fleetfreedom')}`;
  await node.session.createUser({ name: 'email@address.com', password: 'password', tenant: '42', roles: ['dispatcher'] });
  await node.session.createUser({ name: 'writer@acme', password: 'writer-pass', tenant: '42' });
  await node.session.createUser({ name: 'other@globex', password: 'other-pass', tenant: '43' });
});
afterAll(async () => {
  await node.close();
});

/** Connects, checks `connectionResponse` came first, and returns it. */
async function connect(path = '/fleetfreedom', base?: string): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const c = base ? await TestClient.connect(base + path) : await node.connect(path);
  const first = await c.nextFrame();
  expect(first.text.startsWith('connectionResponse ')).toBe(true);
  return { c, res: parseFfFrame(first.text)!.body };
}

async function login(user = 'email@address.com', password = 'password', path = '/fleetfreedom'): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const { c } = await connect(path);
  sendFf(c, 'login', { reqId: 'L', username: user, password, userAgent: 'test' });
  const res = await nextFf(c, 'loginResponse');
  expect(res.errorCode).toBe(0);
  return { c, res };
}

describe('fleetfreedom conformance (seed 000)', () => {
  it('connectionResponse comes first, with the fields that are always returned and none of the logged-in ones', async () => {
    const { res } = await connect();
    for (const f of SERVER_FRAMES.connectionResponseFields) expect(res).toHaveProperty(f);
    for (const f of SERVER_FRAMES.connectionResponseLoggedInFields) expect(res).not.toHaveProperty(f);
    expect(res.errorCode).toBe(0);
    expect(res.serverTime).toMatch(ISO);
    expect(res.expiry).toMatch(ISO);
    expect(res.ghostId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // An anonymous ghostId lives until the login deadline.
    expect(Date.parse(res.expiry as string) - Date.parse(res.serverTime as string)).toBeGreaterThan(110_000);
  });

  it('login (the seed frame) answers everything connectionResponse has, with a new ghostId', async () => {
    const { c, res: conn } = await connect();
    c.send(CLIENT_FRAMES.login);
    const res = await nextFf(c, 'loginResponse');
    expect(res).toMatchObject({ reqId: 1, errorCode: 0, message: 'Logged in' });
    for (const f of [...SERVER_FRAMES.connectionResponseFields, ...SERVER_FRAMES.connectionResponseLoggedInFields]) expect(res).toHaveProperty(f);
    expect(res.ghostId).not.toBe(conn.ghostId);
    expect(res.user).toEqual({ login: 'email@address.com', company: 42, roles: ['dispatcher'] });
    expect(res.sessionPolicy).toEqual({ ttlSec: 3600, sliding: true, idleMinutes: 30 });
    expect(res.passwordPolicy).toEqual({ minLength: 8, maxLength: 1024 });
    expect(Date.parse(res.expiry as string)).toBeGreaterThan(Date.now() + 3500_000);
  });

  it('getCompany, pretty-printed and as the JavaScript sample sends it: the seed\'s response', async () => {
    const { c } = await login();
    c.send(CLIENT_FRAMES.getCompany);
    const a = await nextFf(c, 'getCompanyResponse');
    expect(a).toMatchObject(SERVER_FRAMES.getCompanyResponse);
    expect(Object.keys(a)).toEqual(['reqId', 'errorCode', 'message', 'company']);
    // Before its first write a company is empty, at v all 0.
    expect(a.company).toEqual({ id: 42, company: 42, v: [0, 0, 0, 0, 0] });
    c.send(CLIENT_FRAMES.getCompanyJs);
    expect(await nextFf(c, 'getCompanyResponse')).toEqual(a);
  });

  it('subscribe (the seed frame): subscribeResponse, then Merged frames per part and Deleted from another user', async () => {
    const { c } = await login();
    c.send(CLIENT_FRAMES.subscribe);
    expect(await nextFf(c, 'subscribeResponse')).toEqual({
      reqId: 2,
      errorCode: 0,
      message: 'Subscribed',
      company: { id: 42 },
      subscriptionTypes: ['assetGeneral', 'assetAdvanced'],
    });
    const { c: w } = await login('writer@acme', 'writer-pass');
    sendFf(w, 'mergeAsset', { reqId: 1, asset: { name: 'Truck 13', kind: 'vehicle', tags: ['on-duty'] } });
    const created = await nextFf(w, 'mergeAssetResponse');
    expect(created).toMatchObject({ reqId: 1, errorCode: 0, message: 'Asset created', asset: { company: 42, v: [1, 1], name: 'Truck 13', tags: ['on-duty'] } });
    const id = (created.asset as { id: number }).id;
    expect(await nextFf(c, 'assetGeneralMerged')).toEqual({ id, company: 42, v: [1, 1], name: 'Truck 13', kind: 'vehicle' });
    expect(await nextFf(c, 'assetAdvancedMerged')).toEqual({ id, company: 42, v: [1, 1], tags: ['on-duty'] });

    // A merge of the general part only: assetGeneralMerged with the new v, nothing for advanced.
    sendFf(w, 'mergeAsset', { reqId: 2, asset: { id, v: [1, 1], name: 'Truck 14' } });
    expect(await nextFf(w, 'mergeAssetResponse')).toMatchObject({ errorCode: 0, message: 'Asset merged', asset: { v: [2, 1], name: 'Truck 14', tags: ['on-duty'] } });
    expect(await nextFf(c, 'assetGeneralMerged')).toEqual({ id, company: 42, v: [2, 1], name: 'Truck 14', kind: 'vehicle' });

    sendFf(w, 'removeAsset', { reqId: 3, asset: { id } });
    expect(await nextFf(w, 'removeAssetResponse')).toEqual({ reqId: 3, errorCode: 0, message: 'Asset removed', asset: { id, company: 42 } });
    const deleted = await c.nextFrame((f) => f.text.startsWith('assetDeleted '));
    // The seed's format: `assetDeleted { "id": number, "company": number }`, once although two parts are subscribed.
    expect(JSON.parse(deleted.text.slice('assetDeleted '.length))).toEqual({ id, company: 42 });
    expect(await collectFf(c, /Merged$|Deleted$/, 200)).toEqual([]);
  });

  it('frames sent before connectionResponse wait for it: a ghostId client may send at once', async () => {
    const { res } = await login();
    const c = await node.connect(`/fleetfreedom/${res.ghostId as string}`);
    c.send(CLIENT_FRAMES.getCompanyJs);
    const first = await c.nextFrame();
    expect(first.text.startsWith('connectionResponse ')).toBe(true);
    expect(await nextFf(c, 'getCompanyResponse')).toMatchObject({ reqId: 1, errorCode: 0 });
  });

  it('a ghostId reconnect of a session with no subscriptions is still its session, resumed', async () => {
    const { c, res } = await login();
    const ghostId = res.ghostId as string;
    await c.close();
    const { c: back, res: conn } = await connect(`/fleetfreedom/${ghostId}`);
    expect(conn).toMatchObject({ errorCode: 0, message: 'Session resumed', ghostId, user: { login: 'email@address.com' } });
    expect(conn).not.toHaveProperty('subscriptions');
    await back.close();
  });

  it('a ghostId reconnect is logged in without login, gets its subscriptions back and what it missed, in order', async () => {
    const { c, res } = await login();
    const ghostId = res.ghostId as string;
    sendFf(c, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'companyLabels'] });
    await nextFf(c, 'subscribeResponse');
    const { c: w } = await login('writer@acme', 'writer-pass');
    sendFf(w, 'mergeAsset', { reqId: 1, asset: { name: 'before' } });
    const id = ((await nextFf(w, 'mergeAssetResponse')).asset as { id: number }).id;
    await nextFf(c, 'assetGeneralMerged', (b) => b.id === id);
    await sleep(350); // two checkpoints: the session records what the client has surely received
    await c.close();
    for (let i = 1; i <= 5; i++) {
      sendFf(w, 'mergeAsset', { reqId: i, asset: { id, v: [i, 1], name: `missed ${i}` } });
      expect(await nextFf(w, 'mergeAssetResponse')).toMatchObject({ errorCode: 0 });
    }
    sendFf(w, 'mergeCompany', { reqId: 9, company: { id: 42, v: [0, 0, 0, 0, 0], labels: ['north'] } });
    expect(await nextFf(w, 'mergeCompanyResponse')).toMatchObject({ errorCode: 0, company: { id: 42, v: [1, 1, 1, 1, 1], labels: ['north'] } });

    const { c: back, res: conn } = await connect(`/${ghostId}`, ownUrl);
    expect(conn).toMatchObject({ errorCode: 0, message: 'Session resumed', ghostId, user: { login: 'email@address.com', company: 42 } });
    expect(conn).toHaveProperty('sessionPolicy');
    expect(conn).toHaveProperty('passwordPolicy');
    expect(conn.subscriptions).toEqual({ company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'companyLabels'] });
    // At least once, in order: what it had already received may come again (checkpoints lag), nothing is skipped.
    const missed: Record<string, unknown>[] = [];
    while (missed.at(-1)?.name !== 'missed 5') missed.push(await nextFf(back, 'assetGeneralMerged', (b) => b.id === id));
    const names = missed.map((m) => m.name);
    expect(names.slice(names.indexOf('missed 1'))).toEqual([1, 2, 3, 4, 5].map((i) => `missed ${i}`));
    expect(names.slice(0, names.indexOf('missed 1')).every((n) => n === 'before')).toBe(true);
    expect(missed.slice(-5).map((m) => m.v)).toEqual([1, 2, 3, 4, 5].map((i) => [i + 1, 1]));
    expect(await nextFf(back, 'companyLabelsMerged')).toEqual({ id: 42, company: 42, v: [1, 1, 1, 1, 1], labels: ['north'] });
    // And live from here, without login.
    sendFf(w, 'mergeAsset', { reqId: 7, asset: { id, v: [6, 1], name: 'live' } });
    expect(await nextFf(back, 'assetGeneralMerged', (b) => b.name === 'live')).toMatchObject({ v: [7, 1] });
    sendFf(back, 'getAsset', { reqId: 'g', asset: { id } });
    expect(await nextFf(back, 'getAssetResponse')).toMatchObject({ reqId: 'g', errorCode: 0, asset: { id, v: [7, 1], name: 'live' } });
  });

  it('an unknown ghostId gets a fresh anonymous one; a malformed one is never looked up', async () => {
    const { res } = await connect('/fleetfreedom/AAAAAAAAAAAAAAAAAAAAAA');
    expect(res).toMatchObject({ errorCode: 0, message: 'Unknown or expired ghostId: log in' });
    expect(res.ghostId).not.toBe('AAAAAAAAAAAAAAAAAAAAAA');
    expect(res).not.toHaveProperty('user');
    const before = await node.metric('switchboard_session_resume_lookups_total');
    const { res: odd } = await connect('/fleetfreedom/%24%7Bx%7D');
    expect(odd).toMatchObject({ errorCode: 0, message: 'Unknown or expired ghostId: log in' });
    expect(await node.metric('switchboard_session_resume_lookups_total')).toBe(before);
  });

  it('serves / and /<ghostId> on its own port, and no other dialect there', async () => {
    const { res } = await connect('/', ownUrl);
    expect(res.errorCode).toBe(0);
    // One path segment is a ghostId there (`/ws` is just an unknown one); nothing else is served.
    await expect(TestClient.connect(`${ownUrl}/ws/telemetry`)).rejects.toThrow(/404/);
    await expect(TestClient.connect(`${ownUrl}/fleetfreedom/x/y`)).rejects.toThrow(/404/);
  });

  it('two first writes of a company at once: one creates it, the other conflicts, subscribers see one company', async () => {
    await node.session.createUser({ name: 'racer@initech', password: 'racer-pass', tenant: '77' });
    const { c: watcher } = await login('racer@initech', 'racer-pass');
    sendFf(watcher, 'subscribe', { reqId: 1, company: { id: 77 }, subscriptionTypes: ['companyGeneral'] });
    await nextFf(watcher, 'subscribeResponse');
    const [x, y] = await Promise.all([login('racer@initech', 'racer-pass'), login('racer@initech', 'racer-pass')]);
    sendFf(x.c, 'mergeCompany', { reqId: 'x', company: { id: 77, v: [0, 0, 0, 0, 0], name: 'X' } });
    sendFf(y.c, 'mergeCompany', { reqId: 'y', company: { id: 77, v: [0, 0, 0, 0, 0], name: 'Y' } });
    const answers = await Promise.all([nextFf(x.c, 'mergeCompanyResponse'), nextFf(y.c, 'mergeCompanyResponse')]);
    const won = answers.filter((r) => r.errorCode === 0);
    const lost = answers.filter((r) => r.errorCode === 9);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = won[0]!.company as { name: string };
    expect(won[0]!.company).toMatchObject({ id: 77, company: 77, v: [1, 1, 1, 1, 1] });
    expect(lost[0]!.company).toMatchObject({ id: 77, v: [1, 1, 1, 1, 1], name: winner.name });
    expect(await nextFf(watcher, 'companyGeneralMerged')).toEqual({ id: 77, company: 77, v: [1, 1, 1, 1, 1], name: winner.name });
    expect(await collectFf(watcher, /Merged$|Deleted$/, 200)).toEqual([]);
    sendFf(watcher, 'getCompany', { reqId: 2, company: { id: 77 } });
    expect((await nextFf(watcher, 'getCompanyResponse')).company).toEqual(won[0]!.company);
  });

  it('the user profile with the session user\'s login, and the company\'s own policies, answer login', async () => {
    const { c } = await login('writer@acme', 'writer-pass');
    sendFf(c, 'mergeUser', { reqId: 1, user: { login: 'email@address.com', nickname: 'Dispatch', permissions: ['assets'] } });
    const profile = await nextFf(c, 'mergeUserResponse');
    expect(profile).toMatchObject({ errorCode: 0, user: { login: 'email@address.com' } });
    sendFf(c, 'getCompany', { reqId: 2, company: { id: 42 } });
    const company = (await nextFf(c, 'getCompanyResponse')).company as { v: number[] };
    sendFf(c, 'mergeCompany', { reqId: 3, company: { id: 42, v: company.v, passwordPolicy: { minLength: 12 }, sessionPolicy: { idleMinutes: 5 } } });
    expect(await nextFf(c, 'mergeCompanyResponse')).toMatchObject({ errorCode: 0 });
    const { res } = await login();
    expect(res.user).toEqual({ ...(profile.user as object), roles: ['dispatcher'] });
    expect(res.passwordPolicy).toEqual({ minLength: 12, maxLength: 1024 });
    expect(res.sessionPolicy).toEqual({ ttlSec: 3600, sliding: true, idleMinutes: 5 });
  });
});
