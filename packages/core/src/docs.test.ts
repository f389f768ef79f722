/**
 * The registries are the source of the docs: these tests fail when a code is added without regenerating
 * `docs/` (`npm run docs`), so nothing ships undocumented. (docs/configuration.md is checked in the edge,
 * where the dialects' config sections are known.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, ERROR_CODES, renderCloseCodesMarkdown, renderErrorCodesMarkdown } from './codes.js';
import { WIRE_CODE_TABLES, type WireCodeSpec } from './wire-codes.js';

const docs = join(import.meta.dirname, '..', '..', '..', 'docs');
const read = (f: string) => readFileSync(join(docs, f), 'utf8');

describe('generated docs are current', () => {
  it('docs/errors.md documents every error code', () => {
    const text = read('errors.md');
    expect(text).toBe(renderErrorCodesMarkdown());
    for (const code of Object.keys(ERROR_CODES)) expect(text).toContain(`| \`${code}\` |`);
  });
  it('docs/errors.md documents every dialect wire code', () => {
    const text = read('errors.md');
    for (const table of WIRE_CODE_TABLES) {
      expect(text).toContain(`### \`${table.dialect}\`: \`${table.field}\``);
      for (const [name, spec] of Object.entries<WireCodeSpec>(table.codes)) expect(text).toContain(`| ${spec.code} | \`${name}\` |`);
    }
  });
  it('docs/close-codes.md documents every close code', () => {
    const text = read('close-codes.md');
    expect(text).toBe(renderCloseCodesMarkdown());
    for (const spec of Object.values(CLOSE_CODES)) expect(text).toContain(`| ${spec.code} |`);
  });
  it('close codes are unique and in the allowed ranges', () => {
    const codes = Object.values(CLOSE_CODES).map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c === 1000 || c === 1006 || (c >= 1007 && c <= 1014) || (c >= 4000 && c <= 4999)).toBe(true);
  });
});
