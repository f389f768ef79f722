/** docs/cli.md is the commands' help, generated from their specs: it must be current (`npm run docs`). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/commands/specs.js';
import { overview } from '../src/main.js';
import { renderCliMarkdown, renderHelp } from '../src/spec.js';

describe('docs/cli.md', () => {
  it('holds every command\'s --help as generated now', () => {
    const text = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'cli.md'), 'utf8');
    expect(text).toBe(renderCliMarkdown(COMMANDS, overview()));
    for (const c of COMMANDS) expect(text).toContain(renderHelp(c).trimEnd());
  });
});
