/** The `fme` options: the standard dialect limits (no auth deadline: FME has no auth message) and its own. */
import { configSchemas, dialectSection, sectionOption, z } from '../../dialect-config.js';

const { int } = configSchemas;

const bool = z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean());

/** The `fme` config section (env `FME_…`). */
export const fmeConfig = dialectSection({
  name: 'fme',
  title: 'Dialect `fme` (seed 001)',
  // FME's own clients send no token and no auth message: a deadline would close every one of them.
  // Messages up to 64 KB; frames up to 128 KB get FME's "too large" error rather than a dropped socket.
  defaults: { authTimeoutMs: 0, maxMessageBytes: 64 * 1024, maxFrameBytes: 128 * 1024 },
  ownDefaults: ['authTimeoutMs'],
  options: {
    requireToken: sectionOption({
      schema: bool,
      env: 'FME_REQUIRE_TOKEN',
      type: 'boolean',
      default: false,
      doc: 'Refuse every `fme` upgrade without a valid token (`?access_token=` or `Authorization: Bearer`); by default opening and sending need none, as FME\'s own clients send none.',
    }),
    channelInfoMax: sectionOption({
      schema: int(1, 1_000_000),
      env: 'FME_CHANNEL_INFO_MAX',
      type: 'integer',
      default: 1000,
      doc: 'Most channels listed by `getchannelinfo()` (and streams by `getnumchannels()`); a longer answer is cut and says `"truncated":"true"`, its `numchannels` still counting every channel.',
    }),
    adminQueriesPerSec: sectionOption({
      schema: int(1, 1000),
      env: 'FME_ADMIN_QUERIES_PER_SEC',
      type: 'integer',
      default: 2,
      doc: 'Admin queries per second per connection (each one asks every edge), burst of the same size; excess gets `rate_limited` (rule `admin_queries`).',
    }),
  },
});
