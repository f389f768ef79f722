/**
 * The k6 scripts are type-checked against @types/k6 (there is no k6 binary here to run them): a wrong
 * k6 API call, option or type fails this test.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = join(import.meta.dirname, '..', 'k6');
const tsc = join(import.meta.dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');

describe('k6 scripts', () => {
  it('type-check against @types/k6', async () => {
    const r = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')]).catch((e: { stdout: string; code: number }) => e);
    expect((r as { stdout: string }).stdout).toBe('');
  }, 60_000);

  it('cover the four load shapes, each with thresholds, all checked by tsc', () => {
    const scripts = readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'lib.js');
    expect(scripts.sort()).toEqual(['churn.js', 'connect-subscribe.js', 'fanout-latency.js', 'publish-rate.js']);
    for (const f of [...scripts, 'lib.js']) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text.startsWith('// @ts-check'), f).toBe(true);
      if (f !== 'lib.js') expect(text, f).toMatch(/thresholds:/);
    }
  });
});
