/**
 * The SDK stays small: the built ESM entry, bundled and minified by esbuild as an app's bundler
 * would, then gzipped. `npm run size -w @switchboard/client` prints the same figures.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { measureSize } from '../scripts/size.js';

/** The budget, in bytes of minified+gzipped code. */
const GZIP_BUDGET_BYTES = 6 * 1024;

describe('@switchboard/client size', () => {
  it(`is under ${GZIP_BUDGET_BYTES} bytes minified+gzipped`, async () => {
    const size = await measureSize();
    expect(size.minifiedBytes).toBeLessThan(size.bundleBytes);
    expect(size.gzipBytes).toBeGreaterThan(1000);
    expect(size.gzipBytes).toBeLessThan(GZIP_BUDGET_BYTES);
  });

  it('has no runtime dependency and one ESM entry', () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.type).toBe('module');
    expect(pkg.exports).toEqual({ '.': { types: './dist/index.d.ts', default: './dist/index.js' } });
  });
});
