// Builds the admin page into dist/ui: src/ui/main.tsx (Preact, uPlot and the client SDK) bundled and
// minified by esbuild into app.js, uPlot's stylesheet and ours into app.css, and index.html. Everything
// comes from npm packages at build time: the page loads nothing from elsewhere and works offline.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/ui`;
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [`${root}src/ui/main.tsx`],
  outfile: `${out}/app.js`,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});

const uplotCss = readFileSync(createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css'), 'utf8');
writeFileSync(`${out}/app.css`, `${uplotCss}\n${readFileSync(`${root}src/ui/app.css`, 'utf8')}`);
writeFileSync(`${out}/index.html`, readFileSync(`${root}src/ui/index.html`));
