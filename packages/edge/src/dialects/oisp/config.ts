/** The `oisp` options: the standard dialect limits and its own (device key, actuation TTL, service account). */
import { configSchemas, dialectSection, sectionOption, z } from '../../dialect-config.js';

const { int } = configSchemas;

/** The `oisp` config section (env `OISP_…`). */
export const oispConfig = dialectSection({
  name: 'oisp',
  title: 'Dialect `oisp` (seed 003)',
  // A registration carries a device token (about 1 KB); an actuation's body is small too.
  defaults: { maxMessageBytes: 16 * 1024, maxFrameBytes: 64 * 1024 },
  options: {
    devicePublicKeyFile: sectionOption({
      schema: z.string().min(1).optional(),
      env: 'OISP_DEVICE_PUBLIC_KEY_FILE',
      type: 'string (path)',
      default: undefined,
      doc: 'PEM RSA public key that device tokens (RS256) are verified with (the seed\'s `keys/public.pem`). Unset: every registration is answered 500 and the edge logs why at start.',
    }),
    actuationTtlSec: sectionOption({
      schema: int(0, 86_400),
      env: 'OISP_ACTUATION_TTL_SEC',
      type: 'integer (s)',
      default: 60,
      doc: 'An actuation published while its device is offline is delivered when the device registers again within this many seconds of the publish (at least once, in order); 0 delivers only to devices online at the time. Keep it under `SWITCHBOARD_HISTORY_TTL_SEC`.',
    }),
    serviceUsername: sectionOption({
      schema: z.string().min(1).max(256).optional(),
      env: 'OISP_SERVICE_USERNAME',
      type: 'string',
      default: undefined,
      doc: 'User name of the service account whose credentials the WebSocket actuation form (`{"type":"actuation","credentials":…}`) must carry. Unset (or no password): that form is refused with 401.',
    }),
    servicePassword: sectionOption({
      schema: z.string().min(12).max(1024).optional(),
      env: 'OISP_SERVICE_PASSWORD',
      type: 'string (≥ 12 chars)',
      default: undefined,
      doc: 'Password of that service account (no default, in any mode).',
      secret: true,
    }),
  },
});
