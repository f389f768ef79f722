// Regenerates the docs that are derived from code (error/close-code registries, config schema).
// Run with `npm run docs` after changing packages/core/src/codes.ts, config.ts or a dialect's config section.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCloseCodesMarkdown, renderConfigMarkdown, renderErrorCodesMarkdown } from '@switchboard/core';
import { DIALECT_CONFIG_SECTIONS } from '@switchboard/edge';

const docs = join(import.meta.dirname, '..', 'docs');
writeFileSync(join(docs, 'errors.md'), renderErrorCodesMarkdown());
writeFileSync(join(docs, 'close-codes.md'), renderCloseCodesMarkdown());
writeFileSync(join(docs, 'configuration.md'), renderConfigMarkdown(DIALECT_CONFIG_SECTIONS));
process.stdout.write('docs/errors.md, docs/close-codes.md, docs/configuration.md regenerated\n');
