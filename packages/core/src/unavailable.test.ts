import { describe, expect, it } from 'vitest';
import { SwitchboardError } from './codes.js';
import { isBackendUnavailable } from './unavailable.js';

describe('isBackendUnavailable', () => {
  it('recognises the ways a backend client says the backend is away', () => {
    for (const m of [
      'Command timed out',
      'Connection is closed.',
      "Stream isn't writeable and enableOfflineQueue options is false",
      'Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.',
      'Failed to refresh slots cache.',
      'connect ECONNREFUSED 127.0.0.1:6379',
      'LOADING Redis is loading the dataset in memory',
      "READONLY You can't write against a read only replica.",
      'CLUSTERDOWN The cluster is down',
    ])
      expect(isBackendUnavailable(new Error(m)), m).toBe(true);
    expect(isBackendUnavailable(new SwitchboardError('unavailable', 'session service away'))).toBe(true);
  });

  it('leaves bugs and refusals alone', () => {
    for (const m of ["Cannot read properties of undefined (reading 'x')", 'ERR wrong number of arguments', 'WRONGTYPE Operation against a key holding the wrong kind of value'])
      expect(isBackendUnavailable(new Error(m)), m).toBe(false);
    expect(isBackendUnavailable(new SwitchboardError('forbidden', 'no'))).toBe(false);
    expect(isBackendUnavailable('Command timed out')).toBe(false);
  });
});
