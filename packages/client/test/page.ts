/**
 * The test page's script (bundled by esbuild in test/cluster.ts): the harness over the real SDK,
 * using the browser's own WebSocket. Tokens come from the test process through
 * `page.exposeFunction('mintToken')`, as a web app would get them from its backend.
 */
import { createHarness, type Harness } from './harness.js';

/** What the page and the test share on `globalThis`. */
export interface PageGlobals {
  harness: Harness;
  mintToken(sub: string, ttl: string): Promise<string>;
}

const g = globalThis as unknown as PageGlobals;
g.harness = createHarness({ mintToken: (sub, ttl) => g.mintToken(sub, ttl) });
