/**
 * What the CLI prints, as snapshots: every command's `--help` (from the same spec that parses it) and its
 * errors, which name the flag typed, the URL tried and what to do. Runs the CLI in this process with a
 * captured stdout/stderr and environment; the calls that need no server go to a closed port.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DIALECTS } from '@switchboard/edge';
import { freePort } from '@switchboard/testkit';
import { COMMANDS } from '../src/commands/specs.js';
import { run } from '../src/main.js';

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

/** Runs `switchboard ...argv`; the output with this run's closed port replaced by `PORT`. */
async function sb(argv: string[], env: Record<string, string> = {}, closedPort = 0): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = capture();
  const err = capture();
  const code = await run(argv, { stdout: out.stream, stderr: err.stream, env: { LOG_LEVEL: 'silent', ...env } });
  const norm = (s: string) => (closedPort ? s.replaceAll(String(closedPort), 'PORT') : s);
  return { code, stdout: norm(out.text()), stderr: norm(err.text()) };
}

describe('--help of every command, from its spec', () => {
  for (const spec of COMMANDS) {
    it(`switchboard ${spec.name} --help`, async () => {
      const r = await sb([...spec.name.split(' '), '--help']);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatchSnapshot();
      // Every flag of the spec is in the help, with its env var when it has one.
      for (const flag of Object.keys(spec.flags)) expect(r.stdout).toContain(`--${flag}`);
      expect(r.stdout).toMatch(/\nExample:\n {2}.*npx switchboard \S/);
      // -h says the same; so does `switchboard help <command>`.
      expect((await sb([...spec.name.split(' '), '-h'])).stdout).toBe(r.stdout);
      expect((await sb(['help', ...spec.name.split(' ')])).stdout).toBe(r.stdout);
    });
  }

  it('the overview lists every command; `user` alone shows `user add`', async () => {
    const r = await sb(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatchSnapshot();
    expect((await sb([])).code).toBe(2);
    expect((await sb(['user', '--help'])).stdout).toBe((await sb(['user', 'add', '--help'])).stdout);
  });

  it('--help wins over missing or bad arguments', async () => {
    expect(await sb(['publish', '--help', '--attr'])).toMatchObject({ code: 0, stderr: '' });
    expect(await sb(['token', '--ttl', 'forever', '-h'])).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('command-line mistakes: exit 2, the flag named, a pointer to --help', () => {
  const cases: [string, string[], Record<string, string>?][] = [
    ['unknown command', ['strat']],
    ['unknown help topic', ['help', 'nope']],
    ['unknown option, with a suggestion', ['token', '--sbu', 'alice']],
    ['a flag without its value', ['publish', 'telemetry', '--data']],
    ['a value for a switch', ['dev-cluster', '--fresh=yes']],
    ['--port abc names the flag', ['start', '--port', 'abc']],
    ['PORT=abc names the variable', ['start'], { PORT: 'abc' }],
    ['session --port is the session port', ['session', '--port', '70000']],
    ['--edges out of range', ['dev-cluster', '--edges', '0']],
    ['--base-port not a port', ['dev-cluster', '--base-port', '8000x']],
    ['a required flag missing', ['token']],
    ['a bad duration', ['token', '--sub', 'bob', '--ttl', 'forever']],
    ['a bad URL', ['token', '--sub', 'bob', '--url', 'localhost:8100']],
    ['user without add', ['user', 'remove', 'bob']],
    ['user add without a name', ['user', 'add', '--password', 'long-enough']],
    ['publish without a channel', ['publish', '--data', '{}']],
    ['publish with two channels', ['publish', 'alerts', 'devices', '--data', '{}']],
    ['publish --data not JSON', ['publish', 'telemetry', '--data', 'hello']],
    ['publish --attr without =', ['publish', 'telemetry', '--data', '{}', '--attr', 'device_id']],
    ['publish --attr no filter of the channel matches', ['publish', 'telemetry', '--data', '{}', '--attr', 'device_id=1', '--attr', 'severity=high']],
    ['production: the dev admin token is refused', ['token', '--sub', 'x'], { SWITCHBOARD_MODE: 'production', SWITCHBOARD_ADMIN_TOKEN: 'dev-admin-token-not-for-production' }],
    ['production: no admin token at all', ['token', '--sub', 'x'], { SWITCHBOARD_MODE: 'production' }],
    ['production: the dev admin token given as a flag is refused too', ['user', 'add', 'x', '--password', 'long-enough', '--admin-token', 'dev-admin-token-not-for-production'], { SWITCHBOARD_MODE: 'production' }],
    ['production: publish with no key names the list it read', ['publish', 'alerts', '--data', '{}'], { SWITCHBOARD_MODE: 'production' }],
  ];
  for (const [name, argv, env] of cases) {
    it(name, async () => {
      const r = await sb(argv, env);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatchSnapshot();
    });
  }
});

describe('publish --dialect', () => {
  it('names the dialects there are (the registry, not a snapshot: it grows with each dialect)', async () => {
    const r = await sb(['publish', 'telemetry', '--data', '{}', '--dialect', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `switchboard publish: --dialect "nope" is not one of ${DIALECTS.map((d) => d.name).join(', ')}\nRun \`switchboard publish --help\` for its options.\n`,
    );
  });
});

describe('no server there: exit 1, the URL tried, how to start one', () => {
  it('token, user add and publish each say where they looked and what to do', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const token = await sb(['token', '--sub', 'alice', '--url', url], {}, port);
    const user = await sb(['user', 'add', 'alice', '--password', 'long-enough'], { SWITCHBOARD_SESSION_URL: url }, port);
    const publish = await sb(['publish', 'alerts', '--data', '{}', '--url', url], {}, port);
    for (const r of [token, user, publish]) {
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
    }
    expect({ token: token.stderr, user: user.stderr, publish: publish.stderr }).toMatchSnapshot();
  });

  it('in production, `token` reads only what it uses: SWITCHBOARD_API_KEYS (unset) does not stop it', async () => {
    const port = await freePort();
    const r = await sb(['token', '--sub', 'x', '--url', `http://127.0.0.1:${port}`], { SWITCHBOARD_MODE: 'production', SWITCHBOARD_ADMIN_TOKEN: 'a-production-admin-token' }, port);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^switchboard token: no session service at http:\/\/127\.0\.0\.1:PORT \(POST http:\/\/127\.0\.0\.1:PORT\/v1\/tokens: connection refused/);
  });

  it('doubtful --attr values are warned about, and the publish still goes out', async () => {
    const port = await freePort();
    const r = await sb(['publish', 'alerts', '--data', '{}', '--attr', 'device_id=abc', '--attr', 'severity=bogus', '--url', `http://127.0.0.1:${port}`], {}, port);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatchSnapshot();
  });
});
