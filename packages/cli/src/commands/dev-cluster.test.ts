import { describe, expect, it } from 'vitest';
import { defaultDataDir, restartDelayMs } from './dev-cluster.js';

describe('dev-cluster defaults', () => {
  it('keeps its data under the OS cache directory', () => {
    expect(defaultDataDir({}, 'linux', '/home/ann')).toBe('/home/ann/.cache/switchboard/dev-cluster');
    expect(defaultDataDir({ XDG_CACHE_HOME: '/var/cache/ann' }, 'linux', '/home/ann')).toBe('/var/cache/ann/switchboard/dev-cluster');
    expect(defaultDataDir({}, 'darwin', '/Users/ann')).toBe('/Users/ann/Library/Caches/switchboard/dev-cluster');
  });

  it('restarts after 1 s, doubling with each death in a row, at most 30 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(restartDelayMs)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
});
