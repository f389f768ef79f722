/**
 * The proof that a dialect is a folder: an `echo` dialect defined only in this file mounts on a prefix
 * and on its own port, negotiates a subprotocol, refuses upgrades (synchronously and after an
 * asynchronous token check), speaks first on open, keeps connections alive with a tick, closes silent
 * ones, and receives fan-out through the hub (text and binary frames, published through the HTTP API) —
 * with no file outside this one knowing it exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES, busChannel } from '@switchboard/core';
import { TestClient } from '@switchboard/testkit';
import { dialectSection, sectionOption, z } from '../src/dialect-config.js';
import { defineDialect, type DialectContext, type DialectHandler, type Frame, type Refusal, type UpgradeDecision, type UpgradeRequest } from '../src/dialect.js';
import { DIALECTS } from '../src/dialects/index.js';
import type { Conn } from '../src/conn.js';
import type { GroupSpec, Renderer } from '../src/hub.js';
import { startTestNode, type TestNode } from './helpers.js';

interface EchoState {
  readonly room: string;
}

const echoConfig = dialectSection({
  name: 'echo',
  title: 'Dialect `echo` (a test)',
  defaults: { authTimeoutMs: 0, silenceTimeoutMs: 600 },
  options: {
    greeting: sectionOption({ schema: z.string(), env: 'ECHO_GREETING', type: 'string', default: 'hello', doc: 'First words.' }),
  },
});

class EchoHandler implements DialectHandler<EchoState> {
  private readonly greeting: string;

  constructor(private readonly ctx: DialectContext) {
    this.greeting = echoConfig.of(ctx.config).greeting;
  }

  upgrade(req: UpgradeRequest): UpgradeDecision<EchoState> | Promise<UpgradeDecision<EchoState>> {
    if (req.query.get('deny') === '1') return { accept: false, status: 403, message: 'denied' };
    const token = req.query.get('access_token');
    const state = { room: req.params.room ?? 'lobby' };
    if (token === null) return { accept: true, state };
    // Asynchronous: verified before `res.upgrade`; a bad token refuses the upgrade.
    return this.ctx.verifier.verify(token).then((v) => (v.ok ? { accept: true, state, identity: v.identity } : { accept: false, status: 401, message: v.message }));
  }

  open(conn: Conn<EchoState>): void {
    this.ctx.send(conn, `${this.greeting} ${conn.state.room} ${conn.tenant} ${conn.listener.kind}`);
  }

  message(conn: Conn<EchoState>, frame: Frame): Promise<void> | undefined {
    if (frame.binary) {
      this.ctx.send(conn, new Uint8Array(frame.data).reverse());
      return undefined;
    }
    const [cmd, arg = ''] = frame.text.split(' ');
    if (cmd === 'sub' || cmd === 'subbin') {
      const spec: GroupSpec = {
        dialect: 'echo',
        channel: busChannel('echo', conn.tenant, arg),
        filter: {},
        projection: null,
        frequencyMs: 0,
        conflateBy: null,
        render: { key: cmd, context: cmd },
      };
      return this.ctx.hub.subscribe(conn, `${cmd}:${arg}`, spec, null, () => conn.ws.send(`subscribed ${arg}`, false, false));
    }
    // A backend that did not answer (the message ioredis gives a command timeout), and a bug.
    if (cmd === 'backend') return Promise.reject(new Error('Command timed out'));
    if (cmd === 'bug') return Promise.reject(new TypeError("Cannot read properties of undefined (reading 'x')"));
    // Slow on purpose: later frames must wait for it.
    if (cmd === 'slow') return new Promise((r) => setTimeout(r, 50)).then(() => this.ctx.send(conn, `slow ${arg}`));
    this.ctx.send(conn, `echo ${frame.text}`);
    return undefined;
  }

  refuse(conn: Conn<EchoState>, refusal: Refusal): void {
    this.ctx.send(conn, `error ${refusal.code}`);
  }

  renderer(spec: GroupSpec): Renderer {
    if (spec.render?.context === 'subbin') return (env) => Buffer.from(env.data);
    return (env) => `${env.offset} ${env.data}`;
  }

  normalizePublish(name: string, _attrs: Readonly<Record<string, string | number | boolean>>, data: unknown) {
    if (typeof data !== 'string') return { ok: false as const, code: 'invalid_message' as const, message: 'echo data is a string' };
    return { ok: true as const, name, attrs: {}, data };
  }
}

const echo = defineDialect<EchoState>({
  name: 'echo',
  prefix: '/echo',
  routes: [{ path: '/' }, { path: '/:room' }],
  subprotocols: { accept: ['echo.v1', 'echo.v2'], required: true },
  config: echoConfig,
  keepalive: { frame: '~', intervalMs: 100 },
  create: (ctx) => new EchoHandler(ctx),
});

let node: TestNode;
let ownUrl: string;
beforeAll(async () => {
  node = await startTestNode({ newConnectionsPerUserPerMin: 0 }, { dialects: [...DIALECTS, echo], env: { ECHO_PORT: '0', ECHO_GREETING: 'hi' } });
  ownUrl = `ws://127.0.0.1:${node.edge.port('echo')}`;
});
afterAll(async () => {
  await node.close();
});

const isText = (t: string) => (f: { text: string; binary: boolean }) => !f.binary && f.text === t;
const startsWith = (t: string) => (f: { text: string; binary: boolean }) => !f.binary && f.text.startsWith(t);
const proto = { protocols: ['echo.v1'] };

describe('a dialect defined in one file', () => {
  it('mounts under its prefix on the main port and at / on its own port, and speaks first', async () => {
    const main = await TestClient.connect(`${node.wsUrl}/echo/kitchen`, proto);
    expect((await main.nextFrame()).text).toBe('hi kitchen default main');
    const own = await TestClient.connect(`${ownUrl}/hall`, proto);
    expect((await own.nextFrame()).text).toBe('hi hall default own');
    const root = await TestClient.connect(`${ownUrl}/`, proto);
    expect((await root.nextFrame()).text).toBe('hi lobby default own');
    // valtronics is not on echo's port, nor the HTTP API; echo's routes are not at the main root.
    await expect(TestClient.connect(`${ownUrl}/ws/telemetry`, proto)).rejects.toThrow(/404/);
    expect((await fetch(`http://127.0.0.1:${node.edge.port('echo')}/healthz`)).status).toBe(404);
    await expect(TestClient.connect(`${node.wsUrl}/hall`, proto)).rejects.toThrow(/404/);
    await Promise.all([main.close(), own.close(), root.close()]);
  });

  it('negotiates its subprotocol and refuses an upgrade that offers none of its protocols', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/echo`, { protocols: ['other', 'echo.v2', 'echo.v1'] });
    expect(c.ws.protocol).toBe('echo.v2');
    await c.close();
    await expect(TestClient.connect(`${node.wsUrl}/echo`)).rejects.toThrow(/400/);
    await expect(TestClient.connect(`${node.wsUrl}/echo`, { protocols: ['other'] })).rejects.toThrow(/400/);
    expect(await node.metric('switchboard_upgrade_rejections_total', { reason: 'subprotocol' })).toBe(2);
  });

  it('refuses upgrades it decides against, synchronously and after an asynchronous token check', async () => {
    await expect(TestClient.connect(`${node.wsUrl}/echo?deny=1`, proto)).rejects.toThrow(/403/);
    await expect(TestClient.connect(`${node.wsUrl}/echo?access_token=bogus`, proto)).rejects.toThrow(/401/);
    const token = await node.token('eve', { tenant: 'acme' });
    const c = await TestClient.connect(`${node.wsUrl}/echo/r?access_token=${token}`, proto);
    expect((await c.nextFrame()).text).toBe('hi r acme main');
    await c.close();
  });

  it('receives fan-out through the hub on both listeners, text and binary, in its own tenant only', async () => {
    const main = await TestClient.connect(`${node.wsUrl}/echo`, proto);
    const own = await TestClient.connect(ownUrl, proto);
    const bin = await TestClient.connect(ownUrl, proto);
    const other = await TestClient.connect(`${node.wsUrl}/echo?access_token=${await node.token('o', { tenant: 'acme' })}`, proto);
    for (const [c, cmd] of [
      [main, 'sub'],
      [own, 'sub'],
      [bin, 'subbin'],
      [other, 'sub'],
    ] as const) {
      c.send(`${cmd} news`);
      await c.nextFrame(isText('subscribed news'));
    }
    const res = await node.publishHttp({ dialect: 'echo', channel: 'news', data: 'flash' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ channel: 'news', offset: 1 });
    expect((await main.nextFrame(startsWith('1 '))).text).toBe('1 flash');
    expect((await own.nextFrame(startsWith('1 '))).text).toBe('1 flash');
    const b = await bin.nextFrame((f) => f.binary);
    expect(b.data.toString()).toBe('flash');
    // Tenant acme's subscriber of "news" is on another bus channel.
    await new Promise((r) => setTimeout(r, 100));
    expect(other.frames.filter((f) => f.text.includes('flash'))).toHaveLength(0);
    const acme = await node.publishHttp({ dialect: 'echo', tenant: 'acme', channel: 'news', data: 'acme only' });
    expect(acme.status).toBe(200);
    expect((await other.nextFrame(startsWith('1 '))).text).toBe('1 acme only');
    expect(await node.publishHttp({ dialect: 'echo', channel: 'news', data: 7 })).toMatchObject({ status: 400, body: { error: 'invalid_message' } });
    await Promise.all([main.close(), own.close(), bin.close(), other.close()]);
  });

  it('gets binary frames, refusals in its own form, and requests in order', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/echo`, proto);
    c.send(Buffer.from([1, 2, 3]));
    expect([...(await c.nextFrame((f) => f.binary)).data]).toEqual([3, 2, 1]);
    c.send('slow 1');
    c.send('x'.repeat(20_000));
    c.send('fast');
    await c.nextFrame(startsWith('echo fast'));
    // The refusal was queued behind the slow request: no answer overtakes an earlier one.
    const answers = c.frames.map((f) => f.text).filter((t) => t !== '~' && !t.startsWith('hi'));
    expect(answers).toEqual(['slow 1', 'error message_too_large']);
    // A request that failed because a backend is away is answered unavailable (retry); a bug, internal_error.
    c.frames.length = 0;
    c.send('backend');
    expect((await c.nextFrame(startsWith('error '))).text).toBe('error unavailable');
    c.send('bug');
    expect((await c.nextFrame(startsWith('error '))).text).toBe('error internal_error');
    c.send('still');
    await c.nextFrame(startsWith('echo still'));
    await c.close();
  });

  it('keeps connections alive with one tick for all, and closes a silent one with 4002', async () => {
    const c = await TestClient.connect(`${node.wsUrl}/echo`, proto);
    const started = Date.now();
    const closed = await c.closed;
    const ms = Date.now() - started;
    expect(closed.code).toBe(CLOSE_CODES.client_silent.code);
    expect(ms).toBeGreaterThanOrEqual(550);
    expect(ms).toBeLessThan(1200);
    expect(c.frames.filter((f) => f.text === '~').length).toBeGreaterThanOrEqual(4);
    // A client that talks stays.
    const talker = await TestClient.connect(`${node.wsUrl}/echo`, proto);
    for (let i = 0; i < 8; i++) {
      talker.send('ping');
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(talker.open).toBe(true);
    await talker.close();
  });

  it('its options are validated with the rest of the configuration', async () => {
    await expect(startTestNode({}, { dialects: [echo], env: { ECHO_MESSAGES_PER_SEC: '0' } })).rejects.toThrow(/ECHO_MESSAGES_PER_SEC/);
  });
});
