/**
 * The admin page against a real dev cluster: a redis-server started by testkit on a free port, one
 * `switchboard session` and two `switchboard edge` processes of the CLI. First its routes over plain
 * HTTP (files with ETags and content types, login, stats, publish), then the page itself in headless
 * Chromium (Debian's `chromium`, driven by playwright-core): log in with the admin token, both edges
 * listed, a message published from the form arriving in the watch panel, a rate-limit rejection after a
 * flood, an axe-core check, and screenshots (`$CI_ARTIFACTS_DIR` or test-results/admin).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import axe from 'axe-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import {
  freePort,
  startRedis,
  startSwitchboard,
  type RedisServer,
  type SwitchboardProcess,
} from '@switchboard/testkit';

const BIN = join(
  dirname(createRequire(import.meta.url).resolve('@switchboard/cli')),
  '..',
  'bin',
  'switchboard.js',
);
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM_PATH);
const REPO = join(import.meta.dirname, '..', '..', '..');
const ARTIFACTS = process.env.CI_ARTIFACTS_DIR
  ? join(process.env.CI_ARTIFACTS_DIR, 'admin')
  : join(REPO, 'test-results', 'admin');
/** `ADMIN_DOCS_SCREENSHOT=1` also writes docs/admin.png (committed; refreshed by hand). */
const DOCS_SCREENSHOT = process.env.ADMIN_DOCS_SCREENSHOT === '1';

let redis: RedisServer;
let session: SwitchboardProcess;
let edges: SwitchboardProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  session = await startSwitchboard(BIN, 'session', { REDIS_URL: redis.url }, 30_000, 'SESSION_PORT');
  const ports = [await freePort(), await freePort()];
  edges = await Promise.all(
    [0, 1].map((i) =>
      startSwitchboard(
        BIN,
        'edge',
        {
          REDIS_URL: redis.url,
          NODE_ID: `edge-${i + 1}`,
          PORT: String(ports[i]),
          SWITCHBOARD_SESSION_URL: session.httpUrl,
          SWITCHBOARD_CLUSTER_HELLO_MS: '300',
          SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
        },
        30_000,
      ),
    ),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(edges.map((e) => e.stop('SIGKILL')));
  await session?.stop();
  await redis?.stop();
});

const until = async <T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  ms = 10_000,
): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

async function adminJwt(edge: SwitchboardProcess): Promise<string> {
  const res = await fetch(`${edge.httpUrl}/admin/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: DEV_ADMIN_TOKEN }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** Opens a valtronics connection as `user` and sends `n` pings at once: past the 100-message burst. */
async function flood(edge: SwitchboardProcess, n: number): Promise<number> {
  const res = await fetch(`${session.httpUrl}/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
    body: JSON.stringify({ sub: 'flooder', ttl: '5m' }),
  });
  const { token } = (await res.json()) as { token: string };
  const ws = new WebSocket(`${edge.wsUrl}/ws`);
  let limited = 0;
  ws.on('message', (d: Buffer) => {
    if (d.toString().includes('"rate_limited"')) limited++;
  });
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'auth', token }));
  for (let i = 0; i < n; i++) ws.send(JSON.stringify({ type: 'ping' }));
  await until('rate_limited errors', () => Promise.resolve(limited > 0 && limited));
  ws.close();
  return limited;
}

describe('the admin routes over HTTP', () => {
  it('serves the page and its files with content types, ETags (304 when unchanged) and a strict CSP', async () => {
    const page = await fetch(`${edges[0]!.httpUrl}/admin`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/admin/app.js">');
    // Nothing from another origin: the page works offline.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const etag = page.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const again = await fetch(`${edges[0]!.httpUrl}/admin`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');

    const js = await fetch(`${edges[1]!.httpUrl}/admin/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const code = await js.text();
    expect(code.length).toBeGreaterThan(10_000);
    expect(code).not.toMatch(/https?:\/\/(cdn|unpkg|esm\.sh)/);
    const css = await fetch(`${edges[1]!.httpUrl}/admin/app.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${edges[1]!.httpUrl}/admin/nothing.js`)).status).toBe(404);
  });

  it('exchanges the session admin token for an admin JWT and refuses anything else', async () => {
    const post = (body: unknown, type = 'application/json') =>
      fetch(`${edges[0]!.httpUrl}/admin/login`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: JSON.stringify(body),
      });
    const wrong = await post({ token: 'not-the-admin-token-at-all' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({
      error: 'unauthorized',
      message: 'the admin token was refused',
    });
    expect((await post({ token: 42 })).status).toBe(400);
    expect((await post({ token: DEV_ADMIN_TOKEN }, 'text/plain')).status).toBe(415);
    const ok = await post({ token: DEV_ADMIN_TOKEN });
    const body = (await ok.json()) as { token: string; expires_at: number; node: string };
    expect(body.node).toBe('edge-1');
    expect(body.expires_at - Date.now()).toBeGreaterThan(14 * 60_000);
    // A JWT with the admin role, which every edge verifies (the other edge answers with it).
    const nodes = await fetch(`${edges[1]!.httpUrl}/admin/nodes`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    expect(nodes.status).toBe(200);
  });

  it('answers rate_limited to an address after 10 refused logins in a minute, and shows it as a rejection', async () => {
    const edge = edges[1]!;
    const post = (token: string) =>
      fetch(`${edge.httpUrl}/admin/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
    for (let i = 0; i < 10; i++) expect((await post(`wrong-admin-token-${i}`)).status).toBe(401);
    const limited = await post(DEV_ADMIN_TOKEN);
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: 'rate_limited' });
    const jwt = await adminJwt(edges[0]!);
    const stats = (await (
      await fetch(`${edges[0]!.httpUrl}/admin/stats`, { headers: { authorization: `Bearer ${jwt}` } })
    ).json()) as {
      nodes: { node: string; rateLimited: [string, string, number][] }[];
    };
    expect(stats.nodes.find((n) => n.node === 'edge-2')?.rateLimited).toContainEqual([
      'admin',
      'admin_login',
      1,
    ]);
  });

  it("stats: every edge's counters and the session service's, for an admin JWT only", async () => {
    expect((await fetch(`${edges[0]!.httpUrl}/admin/stats`)).status).toBe(401);
    const jwt = await adminJwt(edges[0]!);
    const read = async () =>
      (await (
        await fetch(`${edges[0]!.httpUrl}/admin/stats`, { headers: { authorization: `Bearer ${jwt}` } })
      ).json()) as {
        node: string;
        nodes: {
          node: string;
          deliveries: number;
          published: number;
          fanoutLatency: { le: number[]; counts: number[]; count: number };
          busReadLag: unknown;
          rateLimited: unknown[];
        }[];
        session: { logins: Record<string, number>; admissions: Record<string, number> } | null;
      };
    const s = await until('both edges in the stats', async () => {
      const r = await read();
      return r.nodes.length === 2 && r;
    });
    expect(s.node).toBe('edge-1');
    expect(s.nodes.map((n) => n.node)).toEqual(['edge-1', 'edge-2']);
    for (const n of s.nodes) {
      expect(n.fanoutLatency.le.length).toBe(n.fanoutLatency.counts.length);
      expect(n.busReadLag).not.toBeNull();
    }
    expect(s.session).toMatchObject({ logins: expect.any(Object), admissions: expect.any(Object) });

    const before = s.nodes[1]!.published;
    const pub = await fetch(`${edges[1]!.httpUrl}/admin/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      body: JSON.stringify({ channel: 'alerts', attrs: { device_id: 9 }, data: { alert_id: 1, title: 't' } }),
    });
    expect(pub.status).toBe(200);
    expect(await pub.json()).toMatchObject({ channel: 'alerts', offset: expect.any(Number) });
    const after = await read();
    expect(after.nodes[1]!.published).toBe(before + 1);

    const noJwt = await fetch(`${edges[1]!.httpUrl}/admin/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(noJwt.status).toBe(401);
  });
});

describe('the admin page of the all-in-one server', () => {
  it('logs in through its own session port, not SWITCHBOARD_SESSION_URL', async () => {
    const sessionPort = await freePort();
    const aio = await startSwitchboard(
      BIN,
      'start',
      { SESSION_PORT: String(sessionPort), SWITCHBOARD_SESSION_URL: 'http://127.0.0.1:9' },
      30_000,
    );
    try {
      const jwt = await adminJwt(aio);
      const stats = await fetch(`${aio.httpUrl}/admin/stats`, {
        headers: { authorization: `Bearer ${jwt}` },
      });
      const body = (await stats.json()) as {
        nodes: unknown[];
        session: { logins: Record<string, number> } | null;
      };
      expect(body.nodes).toHaveLength(1);
      expect(body.session).not.toBeNull();
    } finally {
      await aio.stop('SIGKILL');
    }
  });

  it('SWITCHBOARD_ADMIN_PAGE=false leaves the page and its routes out, the JSON admin routes in', async () => {
    const aio = await startSwitchboard(
      BIN,
      'start',
      { SESSION_PORT: String(await freePort()), SWITCHBOARD_ADMIN_PAGE: 'false' },
      30_000,
    );
    try {
      expect((await fetch(`${aio.httpUrl}/admin`)).status).toBe(404);
      expect((await fetch(`${aio.httpUrl}/admin/login`, { method: 'POST' })).status).toBe(404);
      expect((await fetch(`${aio.httpUrl}/admin/nodes`)).status).toBe(401);
    } finally {
      await aio.stop('SIGKILL');
    }
  });
});

describe.skipIf(!HAS_CHROMIUM)(
  HAS_CHROMIUM
    ? 'the admin page in headless Chromium'
    : `the admin page in headless Chromium — SKIPPED: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`,
  () => {
    let browser: Browser;
    let page: Page;
    const problems: string[] = [];

    beforeAll(async () => {
      mkdirSync(ARTIFACTS, { recursive: true });
      browser = await chromium.launch({
        executablePath: CHROMIUM_PATH,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
      // A CSP violation, a failed request or a script error is a failure of the page.
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
    }, 30_000);

    afterAll(async () => {
      await browser?.close();
    });

    const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    const headings = () =>
      page.$$eval('main h2', (hs) =>
        hs.map((h) => Math.round(h.getBoundingClientRect().top + window.scrollY)),
      );

    it('logs in with the admin token, which never appears in the URL, and shows both edges', async () => {
      await page.goto(`${edges[0]!.httpUrl}/admin`);
      await page.getByLabel('Admin token').fill('wrong-token-wrong-token');
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('refused');
      // The refused login is an expected 401 in the console; nothing else may be.
      problems.splice(0);
      await shot('01-login');

      await page.getByLabel('Admin token').fill(DEV_ADMIN_TOKEN);
      await page.keyboard.press('Enter');
      await page.getByRole('button', { name: 'Log out' }).waitFor();
      const early = await headings();
      await page.locator('#nodes-table tbody tr[data-node="edge-2"]').waitFor();
      await page.locator('#nodes-table tbody tr[data-node="edge-1"]').waitFor();
      expect(page.url()).toBe(`${edges[0]!.httpUrl}/admin`);
      expect(page.url()).not.toContain(DEV_ADMIN_TOKEN);
      const stored = await page.evaluate(() => JSON.stringify(sessionStorage));
      expect(stored).not.toContain(DEV_ADMIN_TOKEN);
      expect(stored).toMatch(/"token\\":\\"ey/);
      // Live data arrived: the panels did not move.
      await page.waitForTimeout(1500);
      expect(await headings()).toEqual(early);
      await shot('02-dashboard');
    });

    it('watches a channel through the client SDK and sees the message published from the form, with its offset', async () => {
      await page.getByLabel('Channel (valtronics, this tenant)').selectOption('alerts');
      await page.getByRole('button', { name: 'Watch', exact: true }).click();
      await expect
        .poll(() => page.locator('#watch-state').textContent(), { timeout: 10_000 })
        .toContain('Watching alerts');

      await page.getByLabel('Channel (valtronics)').selectOption('alerts');
      await page
        .getByLabel('Data (JSON)')
        .fill('{"alert_id": 7, "title": "from the admin test", "message": "hello"}');
      await page.getByRole('button', { name: 'Publish' }).click();
      await expect
        .poll(() => page.locator('#publish-result').textContent())
        .toMatch(/^Published to alerts at offset \d+\.$/);
      const offset = Number(/offset (\d+)/.exec((await page.locator('#publish-result').textContent())!)![1]);
      const item = page.locator(`#watch-log li[data-offset="${offset}"]`);
      await item.waitFor({ timeout: 10_000 });
      expect(await item.textContent()).toContain('from the admin test');
      expect(await item.textContent()).toContain(`#${offset}`);

      // The watcher is a subscriber the channels panel finds, by prefix too.
      const row = page.locator('#channels-table tbody tr', { hasText: 'valtronics:default:alerts' });
      await row.waitFor({ timeout: 10_000 });
      await page.getByLabel('Channel prefix').fill('valtronics:default:al');
      await row.waitFor();
      await row.getByRole('button').click();
      await expect
        .poll(() => page.locator('.detail').textContent(), { timeout: 10_000 })
        .toMatch(/1 subscriber on edge-1 1/);
      await page.getByLabel('Channel prefix').fill('nothing-starts-like-this');
      await expect.poll(() => page.locator('#channels-table tbody tr').count(), { timeout: 10_000 }).toBe(0);
      await page.getByLabel('Channel prefix').fill('');
      await shot('03-watch-and-publish');
    });

    it('shows a rate-limit rejection, live, after a flood on the other edge', async () => {
      const limited = await flood(edges[1]!, 300);
      expect(limited).toBeGreaterThan(0);
      // Live: highlighted, with a rate, for the poll that saw it.
      const row = page.locator('#rate-limits tr[data-dialect="valtronics"][data-rule="messages_per_sec"]');
      await page
        .locator('#rate-limits tr.hot[data-dialect="valtronics"][data-rule="messages_per_sec"]')
        .waitFor({ timeout: 10_000 });
      const total = Number(await row.locator('td').nth(3).textContent());
      expect(total).toBeGreaterThanOrEqual(limited);
      // The session service counted the admissions of the watcher and the flooder.
      await expect
        .poll(async () =>
          Number(
            await page
              .locator('#session-stats div', { hasText: /^Admissions\d/ })
              .locator('dd')
              .textContent(),
          ),
        )
        .toBeGreaterThanOrEqual(2);
      await page.waitForTimeout(1200);
      await shot('04-rate-limit');
      if (DOCS_SCREENSHOT) await page.screenshot({ path: join(REPO, 'docs', 'admin.png'), fullPage: true });
    });

    it('is keyboard-usable and has no serious or critical axe-core violations', async () => {
      // A reload keeps the login (sessionStorage); Tab from the top reaches the first control, the
      // log-out button, with a visible focus ring.
      await page.reload();
      await page.locator('#nodes-table tbody tr[data-node="edge-2"]').waitFor();
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Log out');
      expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe('solid');

      // Evaluated through the DevTools protocol, which the page's CSP does not govern.
      await page.evaluate(axe.source);
      const result = await page.evaluate(() =>
        (globalThis as unknown as { axe: typeof axe }).axe.run(document, { resultTypes: ['violations'] }),
      );
      // It did check the page: dozens of rules applied.
      expect(result.passes.length + result.violations.length).toBeGreaterThan(20);
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(
        bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
      ).toEqual([]);
      expect(problems).toEqual([]);
    });
  },
);
