/**
 * `@switchboard/admin`: the admin page's static files, built at build time (`scripts/build-ui.js`:
 * Preact, uPlot and the client SDK bundled by esbuild into `dist/ui`), and a loader that reads them
 * once so an edge serves them from memory with an ETag and the right content type.
 */
export type { HistogramSnapshot, NodeStats } from './stats-types.js';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

/** Where the built page is: `dist/ui` next to this module. */
export const ADMIN_UI_DIR = join(import.meta.dirname, 'ui');

/** One file of the page, ready to serve. */
export interface AdminAsset {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong ETag (quoted): the first 16 bytes of the body's SHA-256, base64url. */
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Reads the built page: file name (`index.html`, `app.js`, …) to asset. Files of other types are left
 * out, so nothing unexpected is ever served. Throws when the page was not built.
 */
export function loadAdminAssets(dir: string = ADMIN_UI_DIR): Map<string, AdminAsset> {
  const assets = new Map<string, AdminAsset>();
  for (const name of readdirSync(dir)) {
    const contentType = TYPES[extname(name)];
    if (contentType === undefined) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest().subarray(0, 16).toString('base64url')}"`;
    assets.set(name, { body, contentType, etag });
  }
  if (!assets.has('index.html'))
    throw new Error(`the admin page is not built: no index.html in ${dir} (npm run build)`);
  return assets;
}
