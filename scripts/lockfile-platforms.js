// The npm registry reachable from our build machines lacks turbo's macOS and Windows binaries, so
// `npm install` drops them from package-lock.json and `npm ci` then refuses the lock as out of sync.
// This adds platform-gated entries for them (npm never downloads a package whose os/cpu do not match).
// Run after any `npm install` that rewrites the lock: `node scripts/lockfile-platforms.js`.
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const turbo = lock.packages['node_modules/turbo'];
const platforms = {
  '@turbo/darwin-64': { cpu: ['x64'], os: ['darwin'] },
  '@turbo/darwin-arm64': { cpu: ['arm64'], os: ['darwin'] },
  '@turbo/windows-64': { cpu: ['x64'], os: ['win32'] },
  '@turbo/windows-arm64': { cpu: ['arm64'], os: ['win32'] },
};
let added = 0;
for (const [name, gate] of Object.entries(platforms)) {
  const key = `node_modules/${name}`;
  if (lock.packages[key] || !turbo?.optionalDependencies?.[name]) continue;
  lock.packages[key] = { version: turbo.optionalDependencies[name], ...gate, dev: true, license: 'MIT', optional: true };
  added++;
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n');
process.stdout.write(`package-lock.json: ${added} platform entries added\n`);
