import { defineConfig } from 'vitest/config';

// One config for the whole repo: `npm test` runs it from the root, each package's `test` script runs it
// with `--root .` so turbo can run packages separately. Workspace packages resolve to their built `dist`
// (npm test builds first), exactly as they do at run time.
export default defineConfig({
  test: {
    include: ['**/{src,test}/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    benchmark: {
      include: ['**/src/**/*.bench.ts'],
      exclude: ['**/node_modules/**', '**/dist/**'],
    },
  },
});
