/**
 * Fleet Freedom as real processes: two `switchboard edge` processes, one `switchboard session` and a
 * real Redis. A merge on edge A reaches a subscriber on edge B as `assetGeneralMerged` with the new `v`;
 * a stale `v` is refused and changes nothing; a remove gives `assetDeleted {"id","company"}`; another
 * company hears nothing; and a client that reconnects to the other edge with its ghostId is logged in
 * without `login`, gets its subscriptions back and receives what it missed.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import { TestClient, collectFf, freePort, nextFf, parseFfFrame, sendFf, startRedis, startSwitchboard, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
let session: SwitchboardProcess;
let a: SwitchboardProcess;
let b: SwitchboardProcess;
let ffPortB = 0;

function edgeEnv(nodeId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    NODE_ID: nodeId,
    SWITCHBOARD_SESSION_URL: session.httpUrl,
    SWITCHBOARD_SHARDS: '16',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_HISTORY_SIZE: '1000',
    SWITCHBOARD_SESSION_CHECKPOINT_MS: '200',
    SWITCHBOARD_DRAIN_MS: '100',
    ...extra,
  };
}

async function createUser(name: string, password: string, tenant: string): Promise<void> {
  const res = await fetch(`${session.httpUrl}/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
    body: JSON.stringify({ name, password, tenant }),
  });
  if (!res.ok) throw new Error(`user ${name}: ${res.status} ${await res.text()}`);
}

async function connect(url: string): Promise<{ c: TestClient; res: Record<string, unknown> }> {
  const c = await TestClient.connect(url);
  const first = await c.nextFrame(() => true, 5000);
  const p = parseFfFrame(first.text);
  if (p?.name !== 'connectionResponse') throw new Error(`first frame: ${first.text}`);
  return { c, res: p.body };
}

async function login(edge: SwitchboardProcess, user: string, password: string): Promise<{ c: TestClient; ghostId: string }> {
  const { c } = await connect(`${edge.wsUrl}/fleetfreedom`);
  sendFf(c, 'login', { reqId: 1, username: user, password, userAgent: 'cluster test' });
  const res = await nextFf(c, 'loginResponse', () => true, 10_000);
  if (res.errorCode !== 0) throw new Error(JSON.stringify(res));
  return { c, ghostId: res.ghostId as string };
}

async function request(c: TestClient, cmd: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  sendFf(c, cmd, body);
  return nextFf(c, `${cmd}Response`, (r) => r.reqId === body.reqId, 10_000);
}

beforeAll(async () => {
  redis = await startRedis();
  session = await startSwitchboard(BIN, 'session', { REDIS_URL: redis.url }, 20_000, 'SESSION_PORT');
  ffPortB = await freePort();
  [a, b] = await Promise.all([
    startSwitchboard(BIN, 'edge', edgeEnv('edge-a')),
    startSwitchboard(BIN, 'edge', edgeEnv('edge-b', { FLEETFREEDOM_PORT: String(ffPortB) })),
  ]);
  await createUser('dispatch@acme', 'dispatch-pass', '42');
  await createUser('driver@acme', 'driver-pass', '42');
  await createUser('spy@globex', 'spy-pass-1', '43');
}, 90_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await session?.stop();
  await redis?.stop();
});

describe('fleetfreedom across two edges, a session service and Redis', () => {
  it('merge on A → assetGeneralMerged with the new v on B; stale v refused; remove → assetDeleted; another company hears nothing', async () => {
    const { c: watcher } = await login(b, 'dispatch@acme', 'dispatch-pass');
    expect(await request(watcher, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] })).toMatchObject({ errorCode: 0 });
    const { c: spy } = await login(b, 'spy@globex', 'spy-pass-1');
    expect(await request(spy, 'subscribe', { reqId: 1, company: { id: 43 }, subscriptionTypes: ['assetGeneral', 'assetAdvanced'] })).toMatchObject({ errorCode: 0 });
    const { c: writer } = await login(a, 'driver@acme', 'driver-pass');

    const created = await request(writer, 'mergeAsset', { reqId: 1, asset: { name: 'Truck 13', tags: ['on-duty'] } });
    expect(created).toMatchObject({ errorCode: 0, asset: { company: 42, v: [1, 1] } });
    const id = (created.asset as { id: number }).id;
    expect(await nextFf(watcher, 'assetGeneralMerged', (m) => m.id === id, 5000)).toEqual({ id, company: 42, v: [1, 1], name: 'Truck 13' });
    expect(await nextFf(watcher, 'assetAdvancedMerged', (m) => m.id === id, 5000)).toEqual({ id, company: 42, v: [1, 1], tags: ['on-duty'] });

    expect(await request(writer, 'mergeAsset', { reqId: 2, asset: { id, v: [1, 1], name: 'Truck 14' } })).toMatchObject({ errorCode: 0, asset: { v: [2, 1] } });
    expect(await nextFf(watcher, 'assetGeneralMerged', (m) => m.id === id, 5000)).toEqual({ id, company: 42, v: [2, 1], name: 'Truck 14' });

    // Stale v: refused with the stored object; nothing changes and nothing is sent.
    const stale = await request(writer, 'mergeAsset', { reqId: 3, asset: { id, v: [1, 1], name: 'stale' } });
    expect(stale).toMatchObject({ errorCode: 9, asset: { v: [2, 1], name: 'Truck 14' } });
    expect(await request(watcher, 'getAsset', { reqId: 2, asset: { id } })).toMatchObject({ errorCode: 0, asset: { v: [2, 1], name: 'Truck 14', tags: ['on-duty'] } });
    expect(await collectFf(watcher, /Merged$/, 300)).toEqual([]);

    expect(await request(writer, 'removeAsset', { reqId: 4, asset: { id } })).toMatchObject({ errorCode: 0 });
    expect(await nextFf(watcher, 'assetDeleted', () => true, 5000)).toEqual({ id, company: 42 });
    expect(await collectFf(watcher, /Deleted$/, 300)).toEqual([]);

    // The other company: nothing, and it cannot reach company 42's objects either.
    expect(await collectFf(spy, /Merged$|Deleted$/, 200)).toEqual([]);
    expect(await request(spy, 'getAsset', { reqId: 2, asset: { id: 1 } })).toMatchObject({ errorCode: 8 });
    await Promise.all([watcher.close(), spy.close(), writer.close()]);
  }, 60_000);

  it('a ghostId reconnect to the other edge is logged in without login and receives the changes it missed, in order', async () => {
    const { c: roamer, ghostId } = await login(b, 'dispatch@acme', 'dispatch-pass');
    expect(await request(roamer, 'subscribe', { reqId: 1, company: { id: 42 }, subscriptionTypes: ['assetGeneral'] })).toMatchObject({ errorCode: 0 });
    const { c: writer } = await login(a, 'driver@acme', 'driver-pass');
    const created = await request(writer, 'mergeAsset', { reqId: 1, asset: { name: 'seen' } });
    const id = (created.asset as { id: number }).id;
    await nextFf(roamer, 'assetGeneralMerged', (m) => m.id === id, 5000);
    await sleep(700); // checkpoints record what the client has surely received
    await roamer.close();

    let v = [1, 1];
    for (let i = 1; i <= 20; i++) {
      const r = await request(writer, 'mergeAsset', { reqId: 10 + i, asset: { id, v, name: `missed ${i}` } });
      expect(r.errorCode).toBe(0);
      v = (r.asset as { v: number[] }).v;
    }
    const other = await request(writer, 'mergeAsset', { reqId: 40, asset: { name: 'created while away' } });
    const otherId = (other.asset as { id: number }).id;
    expect(await request(writer, 'removeAsset', { reqId: 41, asset: { id: otherId } })).toMatchObject({ errorCode: 0 });

    // Back on the other edge.
    const { c: back, res } = await connect(`ws://127.0.0.1:${a.port}/fleetfreedom/${ghostId}`);
    expect(res).toMatchObject({ errorCode: 0, message: 'Session resumed', ghostId, user: { login: 'dispatch@acme', company: 42 } });
    expect(res).toHaveProperty('sessionPolicy');
    expect(res.subscriptions).toEqual({ company: { id: 42 }, subscriptionTypes: ['assetGeneral'] });
    const got: Record<string, unknown>[] = [];
    while (got.at(-1)?.name !== 'created while away') got.push(await nextFf(back, 'assetGeneralMerged', () => true, 5000));
    const names = got.map((m) => m.name);
    // At least once, in order: anything before "missed 1" is what it had already seen.
    const first = names.indexOf('missed 1');
    expect(names.slice(first)).toEqual([...Array.from({ length: 20 }, (_, i) => `missed ${i + 1}`), 'created while away']);
    expect(names.slice(0, first).every((n) => n === 'seen')).toBe(true);
    expect(got.at(-2)).toMatchObject({ id, v });
    expect(await nextFf(back, 'assetDeleted', () => true, 5000)).toEqual({ id: otherId, company: 42 });

    // Live from here, and requests work without a login.
    expect(await request(writer, 'mergeAsset', { reqId: 50, asset: { id, v, name: 'live' } })).toMatchObject({ errorCode: 0 });
    expect(await nextFf(back, 'assetGeneralMerged', (m) => m.name === 'live', 5000)).toMatchObject({ id });
    expect(await request(back, 'getAsset', { reqId: 'g', asset: { id } })).toMatchObject({ errorCode: 0, asset: { name: 'live' } });
    await Promise.all([back.close(), writer.close()]);
  }, 60_000);

  it('first writes of a company racing on two edges: one creates it, the other conflicts, subscribers see one company', async () => {
    // Five companies: on a real Redis the two creates usually interleave (the loser's object, numbered 2,
    // is removed again); either way the outcome the clients see must be the same.
    for (let k = 0; k < 5; k++) {
      const company = 500 + k;
      await createUser(`racer${k}@co`, 'racer-pass', String(company));
      const { c: watcher } = await login(b, `racer${k}@co`, 'racer-pass');
      expect(await request(watcher, 'subscribe', { reqId: 1, company: { id: company }, subscriptionTypes: ['companyGeneral'] })).toMatchObject({ errorCode: 0 });
      const [x, y] = await Promise.all([login(a, `racer${k}@co`, 'racer-pass'), login(b, `racer${k}@co`, 'racer-pass')]);
      const answers = await Promise.all([
        request(x.c, 'mergeCompany', { reqId: 'x', company: { id: company, v: [0, 0, 0, 0, 0], name: 'X' } }),
        request(y.c, 'mergeCompany', { reqId: 'y', company: { id: company, v: [0, 0, 0, 0, 0], name: 'Y' } }),
      ]);
      expect(answers.map((r) => r.errorCode).sort()).toEqual([0, 9]);
      const won = answers.find((r) => r.errorCode === 0)!.company as { name: string };
      expect(won).toMatchObject({ id: company, v: [1, 1, 1, 1, 1] });
      expect(answers.find((r) => r.errorCode === 9)!.company).toEqual(won);
      expect(await nextFf(watcher, 'companyGeneralMerged', () => true, 5000)).toEqual({ id: company, company, v: [1, 1, 1, 1, 1], name: won.name });
      expect(await collectFf(watcher, /Merged$|Deleted$/, 200)).toEqual([]);
      await Promise.all([watcher.close(), x.c.close(), y.c.close()]);
    }
  }, 60_000);

  it('the dedicated port serves / and /<ghostId> for the same sessions', async () => {
    const { c, ghostId } = await login(b, 'driver@acme', 'driver-pass');
    await c.close();
    const { c: own, res } = await connect(`ws://127.0.0.1:${ffPortB}/${ghostId}`);
    expect(res).toMatchObject({ errorCode: 0, ghostId, user: { login: 'driver@acme' } });
    const { c: anon, res: r2 } = await connect(`ws://127.0.0.1:${ffPortB}/`);
    expect(r2).toMatchObject({ errorCode: 0, message: 'Connected: log in' });
    await Promise.all([own.close(), anon.close()]);
  }, 30_000);
});
