// Regenerates the docs that are derived from code (error/close-code registries, config schema, CLI help).
// Run with `npm run docs` after changing packages/core/src/codes.ts, config.ts, a dialect's config section
// or a command's spec (packages/cli/src/commands/specs.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCloseCodesMarkdown, renderConfigMarkdown, renderErrorCodesMarkdown } from '@switchboard/core';
import { DIALECT_CONFIG_SECTIONS } from '@switchboard/edge';
import { COMMANDS, overview, renderCliMarkdown } from '@switchboard/cli';

const docs = join(import.meta.dirname, '..', 'docs');
writeFileSync(join(docs, 'errors.md'), renderErrorCodesMarkdown());
writeFileSync(join(docs, 'close-codes.md'), renderCloseCodesMarkdown());
writeFileSync(join(docs, 'configuration.md'), renderConfigMarkdown(DIALECT_CONFIG_SECTIONS));
writeFileSync(join(docs, 'cli.md'), renderCliMarkdown(COMMANDS, overview()));
process.stdout.write('docs/errors.md, docs/close-codes.md, docs/configuration.md, docs/cli.md regenerated\n');
