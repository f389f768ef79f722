#!/usr/bin/env node
// Entry point of the `switchboard` command. Builds the workspace first when it has never been built
// (a fresh clone after `npm install`), then runs the compiled CLI.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const main = join(here, '..', 'dist', 'main.js');
if (!existsSync(main)) {
  const root = join(here, '..', '..', '..');
  process.stderr.write('switchboard: building the workspace (first run)…\n');
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { run } = await import(pathToFileURL(main).href);
// Exit as soon as the command is done: after a graceful stop, leftover client timers (e.g. of a
// blocking Redis read) must not keep a stopped server process alive.
process.exit(await run(process.argv.slice(2)));
