import { readFileSync } from 'node:fs';

/**
 * The Lua prelude every bus script starts with (`ensure_epoch`), for other packages whose scripts
 * append to a channel exactly as `publish.lua` does (the object store's write scripts): one source, so
 * an epoch is created the same way wherever a channel is first written.
 */
export function busLuaPrelude(): string {
  return readFileSync(new URL('../lua/prelude.lua', import.meta.url), 'utf8');
}
