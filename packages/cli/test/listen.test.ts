/**
 * `switchboard listen` as a real process against `switchboard start`: it subscribes through the client
 * SDK with a token minted by the session service, prints the filtered updates with their offsets, and
 * exits as documented. The argument parsing is unit-tested below.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_API_KEY } from '@switchboard/core';
import { freePort, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';
import { listenUrl, parseFilterArgs } from '../src/commands/listen.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
let server: SwitchboardProcess;
let sessionUrl: string;

beforeAll(async () => {
  const sessionPort = await freePort();
  sessionUrl = `http://127.0.0.1:${sessionPort}`;
  server = await startSwitchboard(BIN, 'start', { SESSION_PORT: String(sessionPort) }, 30_000);
}, 40_000);

afterAll(async () => {
  await server?.stop('SIGKILL');
});

interface Listening {
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function listen(...args: string[]): Listening {
  const child = spawn(
    process.execPath,
    [BIN, 'listen', ...args, '--url', server.httpUrl, '--session-url', sessionUrl],
    {
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
  return { stdout: () => out, stderr: () => err, exit };
}

async function publish(deviceId: number, alertId: number): Promise<number> {
  const res = await fetch(`${server.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
    body: JSON.stringify({
      channel: 'alerts',
      attrs: { device_id: deviceId },
      data: { alert_id: alertId, title: `alert ${alertId}` },
    }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { offset: number }).offset;
}

const waitFor = async (what: string, cond: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('switchboard listen', () => {
  it('prints the updates that pass its filters, one a line with the offset, and exits after --count', async () => {
    const l = listen('alerts', '--filter', 'device_id=5,6', '--count', '2');
    await waitFor('the subscription', () => l.stderr().includes('subscribed to alerts {"device_id":[5,6]}'));
    const skipped = await publish(4, 1);
    const first = await publish(5, 2);
    const second = await publish(6, 3);
    expect(await l.exit).toBe(0);
    const lines = l.stdout().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^#${first} \\S+Z alerts \\{.*"device_id":5.*"alert_id":2`));
    expect(lines[1]).toMatch(new RegExp(`^#${second} \\S+Z alerts \\{.*"device_id":6.*"alert_id":3`));
    expect(l.stdout()).not.toContain(`#${skipped} `);
    expect(l.stderr()).toMatch(/connected to ws:\/\/127\.0\.0\.1:\d+\/ws/);
  });

  it('--json prints the frames as they arrived', async () => {
    const l = listen('alerts', '--filter', 'device_id=7', '--count', '1', '--json');
    await waitFor('the subscription', () => l.stderr().includes('subscribed to alerts'));
    const offset = await publish(7, 4);
    expect(await l.exit).toBe(0);
    expect(JSON.parse(l.stdout())).toMatchObject({
      type: 'alert',
      channel: 'alerts',
      device_id: 7,
      alert_id: 4,
      offset,
    });
  });

  it('exits 1 when the server refuses the subscription, and 2 on a channel that does not exist', async () => {
    const bad = listen('alerts', '--filter', 'colour=red');
    expect(await bad.exit).toBe(1);
    expect(bad.stderr()).toContain('subscription refused: invalid_filter');
    const unknown = listen('weather');
    expect(await unknown.exit).toBe(2);
    expect(unknown.stderr()).toContain(
      'unknown channel "weather"; the channels are telemetry, alerts, devices, system',
    );
  });

  it('exits 1 at once when the session service refuses the admin token', async () => {
    const l = listen('alerts', '--admin-token', 'not-the-admin-token-at-all');
    expect(await l.exit).toBe(1);
    expect(l.stderr()).toContain('refused a token: 401 unauthorized');
  });
});

describe('listen arguments', () => {
  it('parses filters: lists from commas, numbers as numbers, repeated keys merged, frequency as is', () => {
    expect(parseFilterArgs(['device_id=1,2', 'severity=critical', 'device_id=x', 'frequency=5s'])).toEqual({
      device_id: [1, 2, 'x'],
      severity: 'critical',
      frequency: '5s',
    });
    expect(() => parseFilterArgs(['device_id'])).toThrow('is not key=value');
    expect(() => parseFilterArgs(['device_id='])).toThrow('is not key=value');
    expect(() => parseFilterArgs(['__proto__=1'])).toThrow('is not a filter');
  });

  it('turns an edge URL into its WebSocket endpoint', () => {
    expect(listenUrl('http://localhost:8000')).toBe('ws://localhost:8000/ws');
    expect(listenUrl('https://rt.example.com/')).toBe('wss://rt.example.com/ws');
    expect(listenUrl('ws://a:1/ws/alerts')).toBe('ws://a:1/ws/alerts');
  });
});
