// Lint rules for every package. Type-aware rules catch floating promises, which in a server with
// ordered asynchronous request handling are bugs, not style.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PACKAGES = '(core|protocol|bus|store|session|edge|cli|testkit|client|admin|loadtest)';

/** Import patterns no package may use; tests may use the test kit. */
function boundaries({ tests = false } = {}) {
  return [
    { regex: '^@switchboard/[^/]+/(src|dist)(/|$)', message: 'Import another package through its exports, not its src/ or dist/.' },
    { regex: `^(\\.\\./)+(packages/)?${PACKAGES}/(src|dist)/`, message: 'Import another package through its exports, not a relative path into it.' },
    ...(tests ? [] : [{ regex: '^@switchboard/testkit$', message: 'The test kit is for tests only (a devDependency).' }]),
  ];
}

/** Edges hold no secrets: they reach the session service through `@switchboard/session` (the client). */
const SESSION_SERVICE = { regex: '^@switchboard/session/service$', message: 'Edges never load the session service; use @switchboard/session.' };

/** A dialect folder uses the seam (dialect.ts, dialect-config.ts, conn.ts, hub.ts, session-gate.ts). */
const DIALECT_FOLDER = [
  { regex: '^\\.\\./[^./][^/]*/', message: 'A dialect folder never imports another dialect.' },
  {
    regex: '^\\.\\./\\.\\./(server|listeners|http-api|sweeps|session-sync|inbound|keepalive|api-keys|publish|dialects/index)\\.js$',
    message: 'A dialect uses the dialect seam, not the server internals; if it needs more, the seam should offer it.',
  },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.turbo/**', 'coverage/**', 'loadtest/k6/**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // The check configs cover sources and tests of each package (the build configs exclude tests).
      parserOptions: { project: ['./packages/*/tsconfig.check.json', './loadtest/tsconfig.check.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  // Package boundaries: a package reaches another only through its exports; test code stays out of
  // production code; edges never load the session service (it holds secrets); a dialect folder uses the
  // dialect seam, never the server's internals or another dialect.
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/src/**/*.tsx'],
    rules: { 'no-restricted-imports': ['error', { patterns: boundaries() }] },
  },
  {
    // The load generator is test tooling: it starts servers with the test kit.
    files: ['loadtest/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: boundaries({ tests: true }) }] },
  },
  {
    files: ['packages/edge/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [...boundaries(), SESSION_SERVICE] }] },
  },
  {
    files: ['packages/edge/src/dialects/*/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [...boundaries(), SESSION_SERVICE, ...DIALECT_FOLDER] }] },
  },
  {
    files: ['**/*.test.ts', '**/test/**/*.ts', '**/*.contract.ts', '**/*.bench.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: boundaries({ tests: true }) }] },
  },
  {
    files: ['**/*.test.ts', '**/test/**/*.ts', '**/*.contract.ts', '**/*.bench.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['**/*.js', '*.config.ts'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
