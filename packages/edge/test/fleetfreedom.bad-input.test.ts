/**
 * Hostile and malformed input on the `fleetfreedom` dialect: each case gets the dialect's own
 * `<cmd>Response` with its numeric `errorCode` (and the client's `reqId` where one could be read), the
 * connection keeps working, nothing is written, the node never crashes, and a bystander subscriber of
 * the same company loses no `Merged` frame meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES, FLEETFREEDOM_WIRE_CODES as W } from '@switchboard/core';
import { collectFf, nextFf, parseFfFrame, sendFf, type TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

const E = Object.fromEntries(Object.entries(W.codes).map(([k, v]) => [k, v.code])) as Record<keyof typeof W.codes, number>;

let node: TestNode;
let bystander: TestClient;
let writer: TestClient;
let assetId = 0;
let v = [1, 1];
let writes = 0;

async function login(user: string, password: string, n: TestNode = node): Promise<TestClient> {
  const c = await n.connect('/fleetfreedom');
  await nextFf(c, 'connectionResponse');
  sendFf(c, 'login', { reqId: 0, username: user, password });
  const res = await nextFf(c, 'loginResponse');
  if (res.errorCode !== 0) throw new Error(JSON.stringify(res));
  return c;
}

/** One more write the bystander must see. */
async function tick(): Promise<void> {
  writes++;
  sendFf(writer, 'mergeAsset', { reqId: `t${writes}`, asset: { id: assetId, v, odometer: writes } });
  const res = await nextFf(writer, 'mergeAssetResponse', (b) => b.reqId === `t${writes}`);
  expect(res.errorCode).toBe(0);
  v = (res.asset as { v: number[] }).v;
}

let probe = 0;
/** The connection still answers in order. */
async function stillWorks(c: TestClient): Promise<void> {
  const reqId = `alive-${++probe}`;
  sendFf(c, 'getAsset', { reqId, asset: { id: assetId } });
  expect(await nextFf(c, 'getAssetResponse', (b) => b.reqId === reqId)).toMatchObject({ errorCode: 0 });
}

beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0, maxConnectionsPerUser: 1000 }, { env: { FLEETFREEDOM_MAX_MESSAGE_BYTES: '4096' } });
  await node.session.createUser({ name: 'alice', password: 'alice-pass', tenant: '42' });
  await node.session.createUser({ name: 'bob', password: 'bob-pass-1', tenant: '42' });
  await node.session.createUser({ name: 'mallory', password: 'mallory-pass', tenant: '43' });
  await node.session.createUser({ name: 'notenant', password: 'notenant-pass' });
  writer = await login('alice', 'alice-pass');
  sendFf(writer, 'mergeAsset', { reqId: 'c', asset: { name: 'shared', tags: [] } });
  assetId = ((await nextFf(writer, 'mergeAssetResponse')).asset as { id: number }).id;
  bystander = await login('bob', 'bob-pass-1');
  sendFf(bystander, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetAdvanced'] });
  await nextFf(bystander, 'subscribeResponse');
});

afterAll(async () => {
  // Nothing the bystander subscribed to was lost while the others misbehaved.
  const got: Record<string, unknown>[] = [];
  for (let i = 0; i < writes; i++) got.push(await nextFf(bystander, 'assetAdvancedMerged', () => true, 5000));
  expect(got.map((m) => m.odometer)).toEqual(Array.from({ length: writes }, (_, i) => i + 1));
  await node.close();
});

describe('fleetfreedom bad input: the dialect\'s error, the connection keeps working', () => {
  const cases: [string, string, string, number, unknown][] = [
    ['invalid JSON', 'getAsset {"reqId": 1, "asset": ', 'getAsset', E.malformed, null],
    ['plain text', 'hello there', 'hello', E.malformed, null],
    ['no command name', '{"reqId":7,"asset":{"id":1}}', 'error', E.malformed, 7],
    ['a command name that is not one', 'get-asset! {"reqId":7}', 'error', E.malformed, 7],
    ['JSON array body', 'getAsset [1,2]', 'getAsset', E.malformed, null],
    ['unknown command', 'launchRocket {"reqId":8}', 'launchRocket', E.unknownCommand, 8],
    ['unknown object type', 'getTruck {"reqId":8,"truck":{"id":1}}', 'getTruck', E.unknownCommand, 8],
    ['unknown subscription type', 'subscribe {"reqId":9,"company":{"id":42},"subscriptionTypes":["rocketGeneral"]}', 'subscribe', E.unknownCommand, 9],
    ['missing object', 'getAsset {"reqId":10}', 'getAsset', E.malformed, 10],
    ['id of the wrong type', 'getAsset {"reqId":11,"asset":{"id":"1"}}', 'getAsset', E.malformed, 11],
    ['v of the wrong type', 'mergeAsset {"reqId":12,"asset":{"id":1,"v":"1,1","name":"x"}}', 'mergeAsset', E.malformed, 12],
    ['a field of no part', 'mergeAsset {"reqId":13,"asset":{"wheels":4}}', 'mergeAsset', E.malformed, 13],
    ['reqId of the wrong type', 'getAsset {"reqId":{"a":1},"asset":{"id":1}}', 'getAsset', E.malformed, null],
    ['subscriptionTypes missing', 'subscribe {"reqId":14,"company":{"id":42}}', 'subscribe', E.malformed, 14],
    ['__proto__ key', 'mergeAsset {"reqId":15,"asset":{"name":"x","__proto__":{"polluted":true}}}', 'mergeAsset', E.malformed, null],
    ['constructor key', 'mergeAsset {"reqId":16,"asset":{"notes":{"constructor":{"prototype":{"x":1}}}}}', 'mergeAsset', E.malformed, null],
    ['deep nesting', `mergeAsset {"reqId":17,"asset":{"notes":${'{"a":'.repeat(30)}1${'}'.repeat(30)}}}`, 'mergeAsset', E.malformed, null],
    ['an empty merge', `mergeAsset {"reqId":18,"asset":{"id":1,"v":[1,1]}}`, 'mergeAsset', E.malformed, 18],
  ];
  for (const [what, frame, cmd, errorCode, reqId] of cases) {
    it(`${what} → ${cmd}Response errorCode ${errorCode}`, async () => {
      const c = await login('alice', 'alice-pass');
      c.send(frame);
      const f = await c.nextFrame((fr) => fr.text.startsWith(`${cmd}Response `));
      const body = parseFfFrame(f.text)!.body;
      expect(body.errorCode).toBe(errorCode);
      expect(typeof body.message).toBe('string');
      if (reqId === null) expect(body).not.toHaveProperty('reqId');
      else expect(body.reqId).toBe(reqId);
      await tick();
      await stillWorks(c);
      await c.close();
    });
  }

  it('binary frames are refused in the dialect\'s form', async () => {
    const c = await login('alice', 'alice-pass');
    c.send(Buffer.from([1, 2, 3]));
    expect(await nextFf(c, 'errorResponse')).toMatchObject({ errorCode: E.malformed });
    await stillWorks(c);
  });

  it('nothing polluted: a __proto__ merge wrote nothing, and no object gained an inherited key', async () => {
    sendFf(writer, 'getAsset', { reqId: 'p', asset: { id: assetId } });
    const asset = (await nextFf(writer, 'getAssetResponse')).asset as Record<string, unknown>;
    for (const k of Object.keys(asset)) expect(['id', 'company', 'v', 'name', 'tags', 'odometer']).toContain(k);
    expect(asset.name).toBe('shared');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('oversized frames: tooLarge, with the command and reqId of the refused frame', async () => {
    const c = await login('alice', 'alice-pass');
    sendFf(c, 'mergeAsset', { reqId: 99, asset: { id: assetId, v, notes: 'x'.repeat(5000) } });
    expect(await nextFf(c, 'mergeAssetResponse')).toMatchObject({ reqId: 99, errorCode: E.tooLarge });
    await tick();
    await stillWorks(c);
  });

  it('before login: notLoggedIn, and nothing is read or written', async () => {
    const c = await node.connect('/fleetfreedom');
    await nextFf(c, 'connectionResponse');
    for (const [cmd, body] of [
      ['getAsset', { reqId: 1, asset: { id: assetId } }],
      ['mergeAsset', { reqId: 2, asset: { id: assetId, v, name: 'hijacked' } }],
      ['subscribe', { reqId: 3, company: { id: 42 }, subscriptionTypes: ['assetGeneral'] }],
    ] as const) {
      sendFf(c, cmd, body);
      expect(await nextFf(c, `${cmd}Response`)).toMatchObject({ reqId: body.reqId, errorCode: E.notLoggedIn });
    }
    sendFf(writer, 'getAsset', { reqId: 'n', asset: { id: assetId } });
    expect((await nextFf(writer, 'getAssetResponse')).asset).toMatchObject({ name: 'shared' });
  });

  it('wrong password: loginFailed; unknown user the same; a user of no company: forbidden', async () => {
    const c = await node.connect('/fleetfreedom');
    await nextFf(c, 'connectionResponse');
    sendFf(c, 'login', { reqId: 1, username: 'alice', password: 'wrong-password' });
    const bad = await nextFf(c, 'loginResponse');
    expect(bad).toMatchObject({ reqId: 1, errorCode: E.loginFailed });
    expect(bad).not.toHaveProperty('user');
    sendFf(c, 'login', { reqId: 2, username: 'nobody', password: 'wrong-password' });
    expect(await nextFf(c, 'loginResponse')).toMatchObject({ reqId: 2, errorCode: E.loginFailed, message: bad.message });
    sendFf(c, 'login', { reqId: 3, username: 'notenant', password: 'notenant-pass' });
    expect(await nextFf(c, 'loginResponse')).toMatchObject({ reqId: 3, errorCode: E.forbidden });
    sendFf(c, 'getAsset', { reqId: 4, asset: { id: assetId } });
    expect(await nextFf(c, 'getAssetResponse')).toMatchObject({ errorCode: E.notLoggedIn });
  });

  it('backends cannot publish into its channels: only store events travel there', async () => {
    const res = await node.publishHttp({ dialect: 'fleetfreedom', tenant: '42', channel: 'asset', attrs: { op: 'remove', id: assetId }, data: { id: assetId, v: [1, 1] } });
    expect(res).toMatchObject({ status: 404, body: { error: 'unknown_channel' } });
  });

  it('logging in twice on one connection is refused', async () => {
    const c = await login('alice', 'alice-pass');
    sendFf(c, 'login', { reqId: 5, username: 'bob', password: 'bob-pass-1' });
    expect(await nextFf(c, 'loginResponse')).toMatchObject({ reqId: 5, errorCode: E.forbidden });
    await stillWorks(c);
  });
});

describe('fleetfreedom: versions and companies', () => {
  it('a stale v is a version conflict: nothing changes, the answer carries the stored object', async () => {
    const c = await login('alice', 'alice-pass');
    const stale = [v[0]! - 1, v[1]!];
    sendFf(c, 'mergeAsset', { reqId: 1, asset: { id: assetId, v: stale, name: 'stale write' } });
    const res = await nextFf(c, 'mergeAssetResponse');
    expect(res).toMatchObject({ reqId: 1, errorCode: E.versionConflict, asset: { id: assetId, v, name: 'shared' } });
    // No v at all conflicts too (the seed: a merge carries the correct v).
    sendFf(c, 'mergeAsset', { reqId: 2, asset: { id: assetId, name: 'no v' } });
    expect(await nextFf(c, 'mergeAssetResponse')).toMatchObject({ reqId: 2, errorCode: E.versionConflict, asset: { v } });
    // A stale v at a part the merge does not touch does not matter.
    sendFf(c, 'mergeAsset', { reqId: 3, asset: { id: assetId, v: [v[0]!, 0], name: 'shared' } });
    const ok = await nextFf(c, 'mergeAssetResponse');
    expect(ok).toMatchObject({ errorCode: 0, asset: { v: [v[0]! + 1, v[1]!] } });
    v = (ok.asset as { v: number[] }).v;
    // A remove with a stale whole v is refused as well.
    sendFf(c, 'removeAsset', { reqId: 4, asset: { id: assetId, v: [1, 1] } });
    expect(await nextFf(c, 'removeAssetResponse')).toMatchObject({ errorCode: E.versionConflict });
    sendFf(c, 'getAsset', { reqId: 5, asset: { id: assetId } });
    expect(await nextFf(c, 'getAssetResponse')).toMatchObject({ errorCode: 0, asset: { v, name: 'shared' } });
    // No Merged frame went out for the refused writes (the bystander's frames stay buffered for afterAll).
    await new Promise((r) => setTimeout(r, 100));
    expect(bystander.frames.filter((f) => f.text.startsWith('assetAdvancedMerged ')).length).toBe(writes);
  });

  it('another company is unreachable: its ids are not found, its company forbidden, and it hears nothing', async () => {
    const m = await login('mallory', 'mallory-pass');
    sendFf(m, 'subscribe', { reqId: 1, company: { id: 43 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] });
    expect(await nextFf(m, 'subscribeResponse')).toMatchObject({ errorCode: 0 });
    sendFf(m, 'getAsset', { reqId: 2, asset: { id: assetId } });
    expect(await nextFf(m, 'getAssetResponse')).toMatchObject({ reqId: 2, errorCode: E.notFound });
    sendFf(m, 'mergeAsset', { reqId: 3, asset: { id: assetId, v, name: 'taken over' } });
    expect(await nextFf(m, 'mergeAssetResponse')).toMatchObject({ reqId: 3, errorCode: E.notFound });
    sendFf(m, 'removeAsset', { reqId: 4, asset: { id: assetId } });
    expect(await nextFf(m, 'removeAssetResponse')).toMatchObject({ reqId: 4, errorCode: E.notFound });
    sendFf(m, 'getAsset', { reqId: 5, asset: { id: assetId, company: 42 } });
    expect(await nextFf(m, 'getAssetResponse')).toMatchObject({ reqId: 5, errorCode: E.forbidden });
    sendFf(m, 'getCompany', { reqId: 6, company: { id: 42 } });
    expect(await nextFf(m, 'getCompanyResponse')).toMatchObject({ reqId: 6, errorCode: E.forbidden });
    sendFf(m, 'mergeCompany', { reqId: 7, company: { id: 42, v: [0, 0, 0, 0, 0], name: 'mine now' } });
    expect(await nextFf(m, 'mergeCompanyResponse')).toMatchObject({ reqId: 7, errorCode: E.forbidden });
    sendFf(m, 'subscribe', { reqId: 8, company: { id: 42 }, subscriptionTypes: ['assetGeneral'] });
    expect(await nextFf(m, 'subscribeResponse')).toMatchObject({ reqId: 8, errorCode: E.forbidden });
    sendFf(m, 'removeCompany', { reqId: 9, company: { id: 43 } });
    expect(await nextFf(m, 'removeCompanyResponse')).toMatchObject({ reqId: 9, errorCode: E.forbidden });
    await tick();
    expect(await collectFf(m, /Merged$|Deleted$/, 200)).toEqual([]);
    sendFf(writer, 'getAsset', { reqId: 'm', asset: { id: assetId } });
    expect((await nextFf(writer, 'getAssetResponse')).asset).toMatchObject({ name: 'shared' });
  });

  it('too many subscription types on one connection: limitReached, nothing subscribed', async () => {
    const n = await startTestNode({ maxSubscriptionsPerConnection: 2 });
    await n.session.createUser({ name: 'subs', password: 'subs-pass', tenant: '42' });
    const c = await login('subs', 'subs-pass', n);
    sendFf(c, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced', 'userGeneral'] });
    expect(await nextFf(c, 'subscribeResponse')).toMatchObject({ reqId: 1, errorCode: E.limitReached });
    sendFf(c, 'subscribe', { reqId: 2, company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] });
    expect(await nextFf(c, 'subscribeResponse')).toMatchObject({ reqId: 2, errorCode: 0 });
    sendFf(c, 'unsubscribe', { reqId: 3, company: { id: 42 }, subscriptionTypes: ['assetAdvanced', 'providerGeneral'] });
    expect(await nextFf(c, 'unsubscribeResponse')).toEqual({ reqId: 3, errorCode: 0, message: 'Unsubscribed', company: { id: 42 }, subscriptionTypes: ['assetGeneral'] });
    await n.close();
  });
});

describe('fleetfreedom floods', () => {
  it('more messages per second than the limit get rateLimited with their reqId, counted by rule', async () => {
    const c = await login('alice', 'alice-pass');
    for (let i = 0; i < 150; i++) sendFf(c, 'getAsset', { reqId: i, asset: { id: assetId } });
    const answers = await collectFf(c, 'getAssetResponse', 600);
    expect(answers).toHaveLength(150);
    const limited = answers.filter((a) => a.body.errorCode === E.rateLimited);
    expect(limited.length).toBeGreaterThanOrEqual(40);
    // Answers keep request order, and every refusal names the request it refuses.
    expect(answers.map((a) => a.body.reqId)).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(await node.metric('switchboard_rate_limit_rejections_total', { dialect: 'fleetfreedom', rule: 'messages_per_sec' })).toBeGreaterThanOrEqual(40);
    await tick();
    await new Promise((r) => setTimeout(r, 1100));
    await stillWorks(c);
  });

  it('sustained flooding closes with 4029; the node goes on', async () => {
    const n = await startTestNode({ rateLimitCloseAfter: 20 });
    await n.session.createUser({ name: 'abuser', password: 'abuser-pass', tenant: '42' });
    const c = await login('abuser', 'abuser-pass', n);
    for (let i = 0; i < 300; i++) sendFf(c, 'getCompany', { reqId: i, company: { id: 42 } });
    expect((await c.closed).code).toBe(CLOSE_CODES.rate_limit_abuse.code);
    const again = await login('abuser', 'abuser-pass', n);
    sendFf(again, 'getCompany', { reqId: 'x', company: { id: 42 } });
    expect(await nextFf(again, 'getCompanyResponse')).toMatchObject({ errorCode: 0 });
    await n.close();
  });

  it('no login within the deadline closes with 4001', async () => {
    const n = await startTestNode({}, { env: { FLEETFREEDOM_AUTH_TIMEOUT_MS: '300' } });
    const c = await n.connect('/fleetfreedom');
    const res = await nextFf(c, 'connectionResponse');
    expect(Date.parse(res.expiry as string) - Date.parse(res.serverTime as string)).toBeLessThan(400);
    expect((await c.closed).code).toBe(CLOSE_CODES.auth_timeout.code);
    await n.close();
  });

  it('lockout after repeated failures, as in the session service', async () => {
    const n = await startTestNode({ maxLoginFailures: 3, lockoutSec: 60 });
    await n.session.createUser({ name: 'victim', password: 'victim-pass', tenant: '42' });
    const c = await n.connect('/fleetfreedom');
    await nextFf(c, 'connectionResponse');
    for (let i = 0; i < 3; i++) {
      sendFf(c, 'login', { reqId: i, username: 'victim', password: 'guess' });
      expect(await nextFf(c, 'loginResponse')).toMatchObject({ errorCode: E.loginFailed });
    }
    sendFf(c, 'login', { reqId: 9, username: 'victim', password: 'victim-pass' });
    const locked = await nextFf(c, 'loginResponse');
    expect(locked).toMatchObject({ reqId: 9, errorCode: E.lockedOut });
    expect(locked.retryAfterSec).toBeGreaterThan(50);
    await n.close();
  });
});
