// Measures what the SDK costs a browser app: the built ESM entry bundled and minified by esbuild
// (as an app's bundler would), then gzipped. `npm run size -w @switchboard/client` prints it;
// test/size.test.ts holds it under a budget.
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ENTRY = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Bundles and minifies `entry` (default: the built SDK) and returns its sizes in bytes. */
export async function measureSize(entry = ENTRY) {
  const common = { entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', target: 'es2020', write: false, logLevel: 'silent' };
  const plain = await build(common);
  const min = await build({ ...common, minify: true });
  const code = min.outputFiles[0].contents;
  return {
    bundleBytes: plain.outputFiles[0].contents.byteLength,
    minifiedBytes: code.byteLength,
    gzipBytes: gzipSync(code, { level: 9 }).byteLength,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await measureSize();
  process.stdout.write(
    `@switchboard/client: ${s.bundleBytes} B bundled, ${s.minifiedBytes} B minified, ${s.gzipBytes} B minified+gzipped (esbuild, gzip -9)\n`,
  );
}
