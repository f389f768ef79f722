/**
 * The README's promise, as real processes: `switchboard start` serves; a client with a token from
 * `switchboard token` subscribes; `switchboard publish` reaches it, filtered and projected.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, freePort } from '@switchboard/testkit';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
let server: ChildProcess;
let port: number;
let sessionPort: number;
let logs = '';

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, LOG_LEVEL: 'warn', SWITCHBOARD_SESSION_URL: `http://127.0.0.1:${sessionPort}` },
    });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

beforeAll(async () => {
  port = await freePort();
  sessionPort = await freePort();
  server = spawn(process.execPath, [BIN, 'start'], {
    env: { ...process.env, PORT: String(port), SESSION_PORT: String(sessionPort), SWITCHBOARD_MODE: 'dev' },
  });
  server.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not start:\n${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  if (server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
});

/** Runs the CLI with `input` on its standard input. */
function cliWithInput(input: string, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    child.stdin.end(input);
  });
}

describe('switchboard CLI against a running `switchboard start`', () => {
  it('publish --stdin streams newline-delimited bodies over one socket, one answer line each', async () => {
    const token = (await cli('token', '--sub', 'streamer')).stdout.trim();
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    c.send({ type: 'auth', token });
    c.send({ type: 'subscribe', channel: 'alerts' });
    await c.nextOfType('subscribe_response');
    const lines = [
      '{"data":{"alert_id":"s1"}}',
      'not json',
      '{"data":{"alert_id":"s2"},"idempotency_key":"s2"}',
      '{"data":{"alert_id":"s2"},"idempotency_key":"s2"}',
      '',
      '{"channel":"nope","data":{}}',
      '{"messages":[{"data":{"alert_id":"b1"}},{"data":{"alert_id":"b2"}}]}',
    ];
    const r = await cliWithInput(lines.join('\n') + '\n', 'publish', 'alerts', '--stdin', '--url', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const byId = new Map(answers.map((a) => [a.id, a]));
    expect(byId.get(1)).toMatchObject({ channel: 'alerts', offset: expect.any(Number) as unknown });
    expect(byId.get(2)).toMatchObject({ error: 'invalid_json' });
    expect(byId.get(4)).toMatchObject({ duplicate: true, offset: byId.get(3)!.offset });
    expect(byId.get(6)).toMatchObject({ error: 'unknown_channel' });
    // CHANNEL fills in the messages of a batch line that name none.
    expect(byId.get(7)).not.toHaveProperty('error');
    expect((await c.take(4, (m) => m.type === 'alert')).map((m) => m.alert_id)).toEqual(['s1', 's2', 'b1', 'b2']);
    await c.close();
  });

  it('token + WebSocket client + publish: exactly one update, for device 1, temperature only', async () => {
    const token = (await cli('token', '--sub', 'alice')).stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    c.send({ type: 'auth', token });
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: true, user_id: 'alice' });
    c.send({ type: 'subscribe', channel: 'telemetry', device_id: 1, metrics: ['temperature'] });
    await c.nextOfType('subscribe_response');
    const data = JSON.stringify({ temperature: { value: 23.5, unit: '°C' }, humidity: { value: 45.2, unit: '%' } });
    const url = `http://127.0.0.1:${port}`;
    const p1 = await cli('publish', 'telemetry', '--attr', 'device_id=1', '--data', data, '--url', url);
    const p2 = await cli('publish', 'telemetry', '--attr', 'device_id=2', '--data', data, '--url', url);
    expect(p1.code).toBe(0);
    expect(JSON.parse(p1.stdout)).toMatchObject({ channel: 'telemetry', offset: 1 });
    expect(JSON.parse(p2.stdout)).toMatchObject({ offset: 2 });
    const got = await c.collect(400, (m) => m.type === 'telemetry_update');
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ device_id: 1, telemetry: { temperature: { value: 23.5, unit: '°C' } } });
    expect(Object.keys(got[0]!.telemetry as object)).toEqual(['temperature']);
    await c.close();
  });

  it('token honours --roles and --ttl; a bad --ttl is a usage error', async () => {
    const token = (await cli('token', '--sub', 'bob', '--roles', 'admin,ops', '--ttl', '30m')).stdout.trim();
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { roles: string[]; exp: number; iat: number };
    expect(payload.roles).toEqual(['admin', 'ops']);
    expect(payload.exp - payload.iat).toBe(1800);
    const bad = await cli('token', '--sub', 'bob', '--ttl', 'forever');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--ttl');
  });

  it('refuses the dev defaults outside dev mode, and reads only the options the command uses', async () => {
    const r = await run(process.execPath, [BIN, 'token', '--sub', 'x'], {
      env: { ...process.env, SWITCHBOARD_MODE: 'production', SWITCHBOARD_ADMIN_TOKEN: 'dev-admin-token-not-for-production', SWITCHBOARD_SESSION_URL: `http://127.0.0.1:${sessionPort}` },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(2);
    expect((r as { stderr: string }).stderr).toMatch(/SWITCHBOARD_ADMIN_TOKEN: the built-in dev admin token is refused in production mode/);
    // With a real admin token production mode gets as far as the service (which, in dev mode, refuses it):
    // SWITCHBOARD_API_KEYS, unset, is no business of `token`.
    const p = await run(process.execPath, [BIN, 'token', '--sub', 'x'], {
      env: { ...process.env, SWITCHBOARD_MODE: 'production', SWITCHBOARD_ADMIN_TOKEN: 'a-production-admin-token', SWITCHBOARD_SESSION_URL: `http://127.0.0.1:${sessionPort}` },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((p as { code: number }).code).toBe(1);
    expect((p as { stderr: string }).stderr).not.toMatch(/SWITCHBOARD_API_KEYS/);
    expect((p as { stderr: string }).stderr).toContain(`the session service at http://127.0.0.1:${sessionPort} refused the call (401 unauthorized: the admin token was refused)`);
  });

  it('a wrong API key or admin token is said to be refused, with what to pass instead', async () => {
    const pub = await cli('publish', 'alerts', '--data', '{}', '--api-key', 'not-the-key', '--url', `http://127.0.0.1:${port}`);
    expect(pub.code).toBe(1);
    expect(pub.stderr).toBe(
      `switchboard publish: http://127.0.0.1:${port} refused the publish: 401 unauthorized: the API key was refused\n` +
        "Pass the key with --api-key or SWITCHBOARD_API_KEY (one of the server's SWITCHBOARD_API_KEYS; dev mode: dev-api-key).\n",
    );
    const tok = await cli('token', '--sub', 'x', '--admin-token', 'not-the-admin-token');
    expect(tok.code).toBe(1);
    expect(tok.stderr).toBe(
      `switchboard token: the session service at http://127.0.0.1:${sessionPort} refused the call (401 unauthorized: the admin token was refused).\n` +
        'Pass its admin token with --admin-token or SWITCHBOARD_ADMIN_TOKEN (dev mode: the built-in one; a production service never accepts it).\n',
    );
    // An edge's URL where the session service was meant.
    const wrong = await cli('token', '--sub', 'x', '--url', `http://127.0.0.1:${port}`);
    expect(wrong.stderr).toMatch(/has no \/v1\/tokens \(404 not_found: no such route\): is it the session service/);
  });

  it('/healthz and /readyz answer the same JSON on the edge and on the session service', async () => {
    for (const p of [port, sessionPort]) {
      for (const [path, status] of [['/healthz', 'ok'], ['/readyz', 'ready']] as const) {
        const res = await fetch(`http://127.0.0.1:${p}${path}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect(await res.json()).toEqual({ status });
      }
    }
  });

  it("the README's one-liner client prints the update and exits by itself", async () => {
    const token = (await cli('token', '--sub', 'erin')).stdout.trim();
    // The README's text, with this test's port for 8000.
    const script =
      'const ws=new (require("ws"))("ws://localhost:8000/ws");ws.on("open",()=>{ws.send(JSON.stringify({type:"auth",token:process.env.TOKEN}));ws.send(JSON.stringify({type:"subscribe",channel:"telemetry",device_id:1,metrics:["temperature"]}))});ws.on("message",m=>{console.log(String(m));if(JSON.parse(m).type==="telemetry_update")ws.close()})';
    const client = spawn(process.execPath, ['-e', script.replace('localhost:8000', `127.0.0.1:${port}`)], {
      cwd: join(import.meta.dirname, '..', '..', '..'),
      env: { ...process.env, TOKEN: token },
    });
    let out = '';
    client.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => client.once('exit', (code) => r(code)));
    const deadline = Date.now() + 5000;
    while (!out.includes('subscribe_response') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const data = JSON.stringify({ temperature: { value: 23.5, unit: '°C' }, humidity: { value: 45.2, unit: '%' } });
    await cli('publish', 'telemetry', '--attr', 'device_id=1', '--data', data, '--url', `http://127.0.0.1:${port}`);
    await cli('publish', 'telemetry', '--attr', 'device_id=2', '--data', data, '--url', `http://127.0.0.1:${port}`);
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
    if (code === 'still running') client.kill();
    expect(code).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.type)).toEqual(['auth_response', 'subscribe_response', 'telemetry_update']);
    expect(lines[2]).toMatchObject({ device_id: 1, telemetry: { temperature: { value: 23.5, unit: '°C' } } });
  });

  it('user add creates a user who can log in through the edge, and the login token works on /ws', async () => {
    const add = await cli('user', 'add', 'dora', '--password', 'correct horse battery', '--roles', 'viewer');
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ name: 'dora', roles: ['viewer'] });
    const dup = await cli('user', 'add', 'dora', '--password', 'correct horse battery');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');
    const res = await fetch(`http://127.0.0.1:${port}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'dora', password: 'correct horse battery' }),
    });
    expect(res.status).toBe(200);
    const login = (await res.json()) as { token: string; session_id: string };
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    c.send({ type: 'auth', token: login.token });
    // The login's session, on its first connection: nothing to resume yet.
    expect(await c.nextOfType('auth_response')).toMatchObject({ success: true, user_id: 'dora', roles: ['viewer'], session_id: login.session_id, resumed: false });
    await c.close();
  });

  it('publish reports the server refusal and exits non-zero', async () => {
    const r = await cli('publish', 'payroll', '--data', '{}', '--url', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`switchboard publish: http://127.0.0.1:${port} refused the publish: 404 unknown_channel: unknown channel "payroll"\n`);
    const usage = await cli('publish', 'telemetry');
    expect(usage.code).toBe(2);
  });

  it('SIGTERM drains clients with 1012 and exits 0', async () => {
    const token = (await cli('token', '--sub', 'carol')).stdout.trim();
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    c.send({ type: 'auth', token });
    await c.nextOfType('auth_response');
    server.kill('SIGTERM');
    expect((await c.closed).code).toBe(1012);
    const code = await new Promise((r) => (server.exitCode !== null ? r(server.exitCode) : server.once('exit', r)));
    expect(code).toBe(0);
  });
});
