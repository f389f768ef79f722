/**
 * docs/configuration.md is generated from the one config schema: the core options and every dialect's
 * section. This fails when an option is added or changed without `npm run docs`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigMarkdown } from '@switchboard/core';
import { DIALECTS, DIALECT_CONFIG_SECTIONS } from '../src/index.js';

describe('generated docs are current', () => {
  it('docs/configuration.md documents every option of the core and of every dialect', () => {
    const text = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
    expect(text).toBe(renderConfigMarkdown(DIALECT_CONFIG_SECTIONS));
    for (const d of DIALECTS) for (const spec of Object.values(d.config.options)) expect(text).toContain(`\`${spec.env}\``);
  });

  it('every dialect option has a distinct env var named after its dialect', () => {
    const seen = new Set<string>();
    for (const d of DIALECTS) {
      for (const spec of Object.values(d.config.options)) {
        expect(spec.env.startsWith(`${d.name.toUpperCase()}_`), spec.env).toBe(true);
        expect(seen.has(spec.env), spec.env).toBe(false);
        seen.add(spec.env);
      }
    }
  });
});
