/**
 * A second client implementation: Python's `websockets` (Debian's python3-websockets, run by
 * /usr/bin/python3) runs a valtronics session against a real edge — auth, subscribe, a published alert,
 * ping/pong, a refused request with its id, unsubscribe — so the wire format is not only what our own
 * TypeScript client happens to accept.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], { encoding: 'utf8' });
const available = probe.status === 0;
const NAME = 'runs a valtronics session: auth, subscribe with a filter, an update, ping, an error with its id, unsubscribe';
/** Skipped with the reason in its name when Python's websockets is missing. */
const TITLE = available ? NAME : `${NAME} (SKIPPED: ${PYTHON} cannot import websockets; install Debian's python3-websockets)`;

const SCRIPT = String.raw`
import asyncio, json, sys
import websockets

async def main(url, token):
    async with websockets.connect(url, max_size=2**20) as ws:
        async def recv_type(*types):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg.get("type") in types:
                    return msg
        out = {}
        await ws.send(json.dumps({"type": "auth", "token": token, "id": "a1"}))
        out["auth"] = await recv_type("auth_response")
        await ws.send(json.dumps({"type": "subscribe", "channel": "alerts", "severity": ["critical"], "id": "s1"}))
        out["subscribe"] = await recv_type("subscribe_response")
        print("ready", flush=True)
        out["alert"] = await recv_type("alert")
        await ws.send(json.dumps({"type": "ping", "timestamp": "py", "id": 7}))
        out["pong"] = await recv_type("pong")
        await ws.send('{"type":"subscribe","id":"bad","channel":"alerts","constructor":{"x":1}}')
        out["error"] = await recv_type("error")
        await ws.send(json.dumps({"type": "unsubscribe", "channel": "alerts", "id": "u1"}))
        out["unsubscribe"] = await recv_type("unsubscribe_response")
        print(json.dumps(out), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
`;

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode();
});
afterAll(() => node.close());

describe('Python websockets client', () => {
  it.skipIf(!available)(TITLE, async () => {
    const child = spawn(PYTHON, ['-c', SCRIPT, `${node.wsUrl}/ws`, await node.token('python-user')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let result: Record<string, Record<string, unknown>> | null = null;
    for await (const line of lines) {
      if (line === 'ready') {
        await node.publishHttp({ channel: 'alerts', attrs: { severity: 'info' }, data: { alert_id: 'skip', severity: 'info' } });
        await node.publishHttp({ channel: 'alerts', attrs: { severity: 'critical' }, data: { alert_id: 'py-1', severity: 'critical' } });
      } else if (line.startsWith('{')) result = JSON.parse(line) as Record<string, Record<string, unknown>>;
    }
    expect(await exited, stderr).toBe(0);
    expect(result).not.toBeNull();
    const r = result!;
    expect(r.auth).toMatchObject({ type: 'auth_response', success: true, id: 'a1', user_id: 'python-user' });
    expect(r.subscribe).toMatchObject({ type: 'subscribe_response', id: 's1', channel: 'alerts' });
    expect(r.alert).toMatchObject({ type: 'alert', alert_id: 'py-1', severity: 'critical' });
    expect(typeof r.alert!.offset).toBe('number');
    expect(r.pong).toMatchObject({ type: 'pong', timestamp: 'py', id: 7 });
    expect(r.error).toMatchObject({ type: 'error', code: 'forbidden_key', id: 'bad' });
    expect(r.unsubscribe).toMatchObject({ type: 'unsubscribe_response', id: 'u1', channel: 'alerts' });
  });
});
