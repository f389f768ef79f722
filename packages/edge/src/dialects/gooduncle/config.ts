/**
 * The `gooduncle` options: the standard dialect limits with the seed's keep-alive rules (a connection
 * silent for 3000 ms is closed; sessions are anonymous until `upgrade`, so no auth deadline) and its
 * topics: which exist, which fields clients query (indexed), and which roles read and write them.
 */
import { GOODUNCLE_QUERY_FIELD_RE, GOODUNCLE_ROLE_RE, GOODUNCLE_TOPIC_RE } from '@switchboard/protocol';
import { configSchemas, dialectSection, sectionOption, z } from '../../dialect-config.js';

const { int } = configSchemas;

/** Who may do something on a topic: anyone (even an anonymous session), any session with a role, or one of these roles. */
const roleRule = z.union([z.literal('anyone'), z.literal('any-role'), z.array(z.string().regex(GOODUNCLE_ROLE_RE)).min(1).max(64)]);

/** One topic's settings. */
const topicSchema = z
  .object({
    indexed: z
      .array(
        z
          .string()
          .regex(GOODUNCLE_QUERY_FIELD_RE)
          .refine((f) => f !== 'id' && f !== 'v', 'id and v are kept by the server and cannot be indexed'),
      )
      .max(16)
      .refine((a) => new Set(a).size === a.length, 'an indexed field is listed twice')
      .default([]),
    read: roleRule.default('anyone'),
    write: roleRule.default('any-role'),
  })
  .strict();

/** A topic's settings, resolved. */
export type TopicConfig = z.output<typeof topicSchema>;

const topicsObject = z
  .record(z.string().regex(GOODUNCLE_TOPIC_RE, 'a topic name is letters, digits, "_" and "-" (at most 64)'), topicSchema)
  .refine((t) => Object.keys(t).length > 0, 'at least one topic')
  .refine((t) => Object.keys(t).length <= 256, 'at most 256 topics');

/** `GOODUNCLE_TOPICS`: JSON in the environment, an object in overrides. */
const topicsSchema = z
  .unknown()
  .transform((v, ctx) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of topics' });
      return z.NEVER;
    }
  })
  .pipe(topicsObject);

/** The topics a fresh install serves (a first session needs something to read and write). */
const DEFAULT_TOPICS: Record<string, TopicConfig> = {
  orders: { indexed: ['status', 'customer'], read: 'anyone', write: 'any-role' },
  menu: { indexed: ['category'], read: 'anyone', write: 'any-role' },
};

/** The `gooduncle` config section (env `GOODUNCLE_…`). */
export const goodUncleConfig = dialectSection({
  name: 'gooduncle',
  title: 'Dialect `gooduncle` (seed 004)',
  defaults: { authTimeoutMs: 0, silenceTimeoutMs: 3000 },
  // Anonymous sessions are the protocol: a core auth deadline set for other dialects must not close them.
  ownDefaults: ['authTimeoutMs'],
  options: {
    topics: sectionOption({
      schema: topicsSchema,
      env: 'GOODUNCLE_TOPICS',
      type: 'JSON',
      default: DEFAULT_TOPICS,
      doc: 'The topics, as JSON `{"<topic>":{"indexed":["field",…],"read":…,"write":…}}`. `indexed`: the fields a `subscribe` query may compare (at most 16). `read`/`write`: `"anyone"`, `"any-role"` or a list of roles, one of which the session needs (defaults: `read` anyone, `write` any role).',
    }),
    maxResults: sectionOption({
      schema: int(1, 100_000),
      env: 'GOODUNCLE_MAX_RESULTS',
      type: 'integer',
      default: 1000,
      doc: 'Most objects in the first response to a `subscribe`; a larger result set is cut there and says `"truncated":true` (later changes still come for every object of the query).',
    }),
  },
});
