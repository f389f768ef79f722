/**
 * Two ways to run the harness: in this Node process with `ws`, or in a page of headless Chromium
 * (Debian's `chromium`, driven by playwright-core). The scenarios call both the same way.
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { WebSocket } from 'ws';
import { createHarness, type Harness } from './harness.js';
import type { PageGlobals } from './page.js';

/** Calls harness methods wherever the harness runs. */
export interface Driver {
  call<M extends keyof Harness>(method: M, ...args: Parameters<Harness[M]>): Promise<ReturnType<Harness[M]>>;
  /** Uncaught errors the environment reported (a listener that threw, a page error). */
  readonly uncaught: string[];
  /** Where the harness runs: `Node vX` or the browser's user agent. */
  readonly runtime: string;
  close(): Promise<void>;
}

type MintToken = (sub: string, ttl: string) => Promise<string>;

/** The harness in this process, over the `ws` package's WebSocket (Node 20 has no global one). */
export function nodeDriver(mintToken: MintToken): Driver {
  const harness = createHarness({ WebSocket, mintToken });
  const methods = harness as unknown as Record<string, (...args: unknown[]) => unknown>;
  return {
    call: (method, ...args) => Promise.resolve(methods[method]!(...args)) as never,
    uncaught: [],
    runtime: `Node ${process.version}`,
    close: () => Promise.resolve(harness.closeAll()),
  };
}

/** Where Chromium is: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** True when there is a Chromium to run the browser suite in. */
export const HAS_CHROMIUM = existsSync(CHROMIUM_PATH);

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The harness inside a page of headless Chromium, loaded from `pageUrl`. */
export async function chromiumDriver(pageUrl: string, mintToken: MintToken): Promise<Driver> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
  const uncaught: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (err) => uncaught.push(err.message));
    await page.exposeFunction('mintToken', mintToken);
    await page.goto(pageUrl);
    await page.waitForFunction(() => 'harness' in globalThis);
    const runtime = await page.evaluate(() => navigator.userAgent);
    return {
      call: (method, ...args) =>
        page.evaluate(
          ([m, a]) => (globalThis as unknown as PageGlobals).harness[m as 'snapshot'](...(a as [string])),
          [method, args] as const,
        ) as never,
      uncaught,
      runtime,
      close: () => browser.close(),
    };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
