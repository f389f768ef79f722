/** The `fleetfreedom` options: the standard dialect limits (objects up to 64 KiB) and its policies. */
import { dialectSection, sectionOption, z } from '../../dialect-config.js';

/** A JSON object given as JSON text in the environment. */
const jsonObject = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}, z.record(z.string(), z.unknown()));

/** The `fleetfreedom` config section (env `FLEETFREEDOM_…`). */
export const fleetfreedomConfig = dialectSection({
  name: 'fleetfreedom',
  title: 'Dialect `fleetfreedom` (seed 000)',
  // Objects are up to 64 KiB (the store's limit), and a frame carries one; a client that does not log in
  // (or connect with a live ghostId) within two minutes is closed with 4001.
  defaults: { maxMessageBytes: 64 * 1024, maxFrameBytes: 256 * 1024, authTimeoutMs: 120_000 },
  options: {
    sessionPolicy: sectionOption({
      schema: jsonObject,
      env: 'FLEETFREEDOM_SESSION_POLICY',
      type: 'JSON object',
      default: {},
      doc: 'Default `sessionPolicy` of `connectionResponse`/`loginResponse`, over `{"ttlSec": SESSION_TTL_SEC, "sliding": true}`; a company\'s own `sessionPolicy` (its `policies` part) overrides it field by field.',
    }),
    passwordPolicy: sectionOption({
      schema: jsonObject,
      env: 'FLEETFREEDOM_PASSWORD_POLICY',
      type: 'JSON object',
      default: { minLength: 8, maxLength: 1024 },
      doc: 'Default `passwordPolicy` (the session service\'s own rules); a company\'s own `passwordPolicy` overrides it field by field. Informational: the session service enforces its rules.',
    }),
  },
});
