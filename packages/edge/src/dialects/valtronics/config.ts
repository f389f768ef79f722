/** The `valtronics` options: the standard dialect limits (1 KB messages, per the seed) and its own. */
import { configSchemas, dialectSection, sectionOption } from '../../dialect-config.js';

const { int } = configSchemas;

/** The `valtronics` config section (env `VALTRONICS_…`). */
export const valtronicsConfig = dialectSection({
  name: 'valtronics',
  title: 'Dialect `valtronics` (seed 002)',
  defaults: { maxMessageBytes: 1024 },
  options: {
    maxBatch: sectionOption({
      schema: int(1, 10_000),
      env: 'VALTRONICS_MAX_BATCH',
      type: 'integer',
      default: 50,
      doc: 'Most messages in one `batch` (seed: "Batch messages limited to 50 items").',
    }),
    maxAuthFailures: sectionOption({
      schema: int(1),
      env: 'VALTRONICS_MAX_AUTH_FAILURES',
      type: 'integer',
      default: 3,
      doc: 'Failed `auth` attempts allowed on one connection before it is closed with 4003.',
    }),
    systemIntervalMs: sectionOption({
      schema: int(100),
      env: 'VALTRONICS_SYSTEM_INTERVAL_MS',
      type: 'integer (ms)',
      default: 5000,
      doc: 'Interval of `system_status_update` when a `system` subscription gives no `frequency` (`real-time` means every second).',
    }),
  },
});
