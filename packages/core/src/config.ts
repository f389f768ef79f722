import { hostname } from 'node:os';
import { z } from 'zod';
import { CHANNEL_PATTERN_RE } from './authz.js';

/** The HS256 secret `switchboard start` uses in dev mode; refused in production. */
export const DEV_JWT_SECRET = 'switchboard-dev-secret-do-not-use-in-production';
/** The publish API key accepted in dev mode; refused in production. */
export const DEV_API_KEY = 'dev-api-key';
/** The session service's admin token in dev mode; refused in production. */
export const DEV_ADMIN_TOKEN = 'dev-admin-token-not-for-production';

/** Which process reads an option: edges, the session service, or both. */
export type ConfigRole = 'edge' | 'session';

/** One option: schema, env var, type shown in the docs, default and documentation. */
export interface OptionSpec<S extends z.ZodType> {
  readonly schema: S;
  readonly env: string;
  /** Shown in the docs table, e.g. `integer`, `string[]`. */
  readonly type: string;
  readonly default: z.output<S> | (() => z.output<S>);
  readonly doc: string;
  /** Secrets are never printed with their value. */
  readonly secret?: boolean;
  /**
   * The built-in value dev mode uses when the option is unset; printed in the docs and the CLI help next
   * to the option, since it is public (production mode refuses it).
   */
  readonly devDefault?: string;
  /**
   * Set for options only one process may read. An edge refuses to start when a session-only option
   * (private keys, admin token) is set in its environment: an edge cannot even name a secret.
   */
  readonly only?: ConfigRole;
}

function option<S extends z.ZodType>(spec: OptionSpec<S>): OptionSpec<S> {
  return spec;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string().min(1)),
);

/**
 * Every configuration option, declared once: schema (type and bounds), environment variable, default and
 * documentation. `docs/configuration.md` is generated from this table.
 */
export const CONFIG_SPEC = {
  mode: option({
    schema: z.enum(['dev', 'production']),
    env: 'SWITCHBOARD_MODE',
    type: '`dev` or `production`',
    default: 'dev',
    doc: 'In `dev` the built-in dev JWT secret, API key and admin token (their values are in the rows below) work and any Origin is accepted by default; `production` refuses to start with any of them.',
  }),
  host: option({
    schema: z.string().min(1),
    env: 'HOST',
    type: 'string',
    default: '0.0.0.0',
    doc: 'Address the HTTP/WebSocket listener binds.',
  }),
  port: option({
    schema: int(0, 65535),
    env: 'PORT',
    type: 'integer',
    default: 8000,
    doc: 'Port of the HTTP/WebSocket listener (0 picks a free one).',
  }),
  nodeId: option({
    schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    env: 'NODE_ID',
    type: 'string',
    default: () => `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40)}-${process.pid}`,
    doc: 'Name of this node in metrics, logs and admin answers. Defaults to `<hostname>-<pid>`.',
  }),
  logLevel: option({
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    env: 'LOG_LEVEL',
    type: 'pino level',
    default: 'info',
    doc: 'Log level of the pino JSON logs.',
  }),
  tlsCertFile: option({
    schema: z.string().min(1).optional(),
    env: 'SWITCHBOARD_TLS_CERT_FILE',
    type: 'path',
    default: undefined,
    doc: 'PEM certificate (chain) for `wss://`/`https://` straight from the edge, on every listener; with `SWITCHBOARD_TLS_KEY_FILE`. Reloaded on SIGHUP. Unset: plain `ws://` (terminate TLS at the ingress).',
  }),
  tlsKeyFile: option({
    schema: z.string().min(1).optional(),
    env: 'SWITCHBOARD_TLS_KEY_FILE',
    type: 'path',
    default: undefined,
    doc: 'PEM private key of `SWITCHBOARD_TLS_CERT_FILE` (a file reference, not the key itself).',
  }),
  redisUrl: option({
    schema: z.url().optional(),
    env: 'REDIS_URL',
    type: 'URL',
    default: undefined,
    doc: 'Redis to use for the bus and sessions. Unset: embedded in-memory backends (single process only).',
  }),
  redisCluster: option({
    schema: z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean()),
    env: 'REDIS_CLUSTER',
    type: 'boolean',
    default: false,
    doc: 'Treat `REDIS_URL` as a seed node of a Redis Cluster.',
  }),
  shards: option({
    schema: int(1, 16384),
    env: 'SWITCHBOARD_SHARDS',
    type: 'integer',
    default: 64,
    doc: 'Shards of the fan-out feed (S). Every node of a deployment must use the same value. On Redis Cluster each shard an edge reads costs it one blocking connection.',
  }),
  feedMaxLen: option({
    schema: int(100),
    env: 'SWITCHBOARD_FEED_MAXLEN',
    type: 'integer',
    default: 10_000,
    doc: 'Approximate entries kept in each shard feed (`MAXLEN ~`): how far a reconnecting edge can resume without a gap.',
  }),
  publishMinReplicas: option({
    schema: int(0, 16),
    env: 'SWITCHBOARD_PUBLISH_MIN_REPLICAS',
    type: 'integer',
    default: 0,
    doc: 'Acknowledged means replicated: a publish is answered only once this many replicas of its channel\'s Redis master have it (`WAIT`), else `not_replicated` (503). 0: acknowledged by the master alone (a failover may lose the last writes; they are then reported, never silent: see docs/reliability.md). Ignored without Redis.',
  }),
  idempotencyWindowSec: option({
    schema: int(1, 86_400),
    env: 'SWITCHBOARD_IDEMPOTENCY_WINDOW_SEC',
    type: 'integer (s)',
    default: 300,
    doc: 'How long a publish\'s idempotency key is remembered (per channel, in Redis with the channel): a retry with the same key within it is answered with the first position and not published again.',
  }),
  publishReplicaTimeoutMs: option({
    schema: int(1, 60_000),
    env: 'SWITCHBOARD_PUBLISH_REPLICA_TIMEOUT_MS',
    type: 'integer (ms)',
    default: 500,
    doc: 'How long a publish waits for `SWITCHBOARD_PUBLISH_MIN_REPLICAS` replicas before answering `not_replicated`.',
  }),
  busBlockMs: option({
    schema: int(10, 60_000),
    env: 'SWITCHBOARD_BUS_BLOCK_MS',
    type: 'integer (ms)',
    default: 2000,
    doc: 'How long an edge blocks in one XREAD when nothing arrives.',
  }),
  busEntryMessages: option({
    schema: int(1, 256),
    env: 'SWITCHBOARD_BUS_ENTRY_MESSAGES',
    type: 'integer',
    default: 64,
    doc: 'Most messages of one channel written by one publish call that share a history entry and a feed entry (also bounded by ~16 KB of payload): one XADD per run instead of two per message. 1 writes one entry per message, the only layout that edges built before run entries read: set it during a rolling upgrade from such edges and remove it once every edge runs a build with run entries.',
  }),
  busReadCount: option({
    schema: int(1, 100_000),
    env: 'SWITCHBOARD_BUS_READ_COUNT',
    type: 'integer',
    default: 1000,
    doc: 'Most feed entries per shard per XREAD.',
  }),
  jwtSecret: option({
    schema: z.string().min(32).optional(),
    env: 'SWITCHBOARD_JWT_SECRET',
    type: 'string (≥ 32 chars)',
    default: undefined,
    doc: 'HS256 secret for client JWTs. Dev mode defaults to a built-in secret (refused in production). In production the session service signs with `SESSION_JWT_KEY_FILES` instead and edges verify with JWKS; a production edge refuses to hold this secret.',
    secret: true,
    devDefault: DEV_JWT_SECRET,
  }),
  jwtIssuer: option({
    schema: z.string().min(1),
    env: 'SWITCHBOARD_JWT_ISSUER',
    type: 'string',
    default: 'switchboard',
    doc: 'Required `iss` claim of client JWTs.',
  }),
  jwtAudience: option({
    schema: z.string().min(1),
    env: 'SWITCHBOARD_JWT_AUDIENCE',
    type: 'string',
    default: 'switchboard',
    doc: 'Required `aud` claim of client JWTs.',
  }),
  apiKeys: option({
    schema: list,
    env: 'SWITCHBOARD_API_KEYS',
    type: 'string[] (comma-separated)',
    default: [DEV_API_KEY],
    doc: 'API keys accepted by `POST /api/publish` (and the publish socket) as `Authorization: Bearer <key>`: `KEY` (any tenant and channel), `TENANT[+TENANT…]=KEY` (those tenants), or `TENANTS/PATTERN[+PATTERN…]=KEY` (only channels whose `<dialect>:<channel>` matches a pattern, `*` matching anything; TENANTS may be `*`). The built-in default is refused in production mode.',
    secret: true,
    devDefault: DEV_API_KEY,
  }),
  allowedOrigins: option({
    schema: list,
    env: 'SWITCHBOARD_ALLOWED_ORIGINS',
    type: 'string[] (comma-separated)',
    default: ['*'],
    doc: 'Origins allowed to open WebSockets (checked in the upgrade handler against cross-site WebSocket hijacking). `*` allows any; requests without an `Origin` header (non-browser clients) are always allowed. Production mode refuses to start an edge unless it is set explicitly (a list, or `*`).',
  }),
  channelPolicy: option({
    schema: z.preprocess(
      (v) => {
        if (typeof v !== 'string') return v;
        try {
          return JSON.parse(v) as unknown;
        } catch {
          return v;
        }
      },
      z.record(z.string().regex(/^(\*|[A-Za-z0-9_.:-]{1,64})$/), z.array(z.string().regex(CHANNEL_PATTERN_RE)).max(256)),
    ),
    env: 'SWITCHBOARD_CHANNEL_POLICY',
    type: 'JSON object: role → channel patterns',
    default: {},
    doc: 'Which channels a role may subscribe to, e.g. `{"operator":["valtronics:*"],"viewer":["valtronics:alerts","valtronics:system"]}`: patterns name `<dialect>:<channel>` (as the dialect\'s clients name it; `*` matches anything); the role `*` applies to every authenticated connection. Checked at subscribe and on resume; a denial is the dialect\'s `forbidden` error, counted in `switchboard_authz_denials_total`. Empty: no policy (every channel of the tenant). Tenants are always separated.',
  }),
  trustedProxies: option({
    schema: z.preprocess(
      (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
      z.array(z.union([z.ipv4(), z.ipv6()])),
    ),
    env: 'SWITCHBOARD_TRUSTED_PROXIES',
    type: 'string[] (comma-separated IP addresses)',
    default: [],
    doc: 'Reverse proxies whose `X-Forwarded-For` header names the client (the rightmost address in it that is not itself a trusted proxy): per-address login throttling and admission count that address. From anyone else the header is ignored.',
  }),
  sessionPort: option({
    schema: int(0, 65535),
    env: 'SESSION_PORT',
    type: 'integer',
    default: 8100,
    doc: 'HTTP port of the session service (login, JWKS, user admin, metrics); the all-in-one process opens it too.',
    only: 'session',
  }),
  sessionUrl: option({
    schema: z.url(),
    env: 'SWITCHBOARD_SESSION_URL',
    type: 'URL',
    default: 'http://127.0.0.1:8100',
    doc: 'Where the CLI (`token`, `user`) reaches the session service, and where edges fetch its JWKS unless `SWITCHBOARD_JWKS_URL` says otherwise.',
  }),
  jwksUrl: option({
    schema: z.url().optional(),
    env: 'SWITCHBOARD_JWKS_URL',
    type: 'URL',
    default: undefined,
    doc: 'JWKS that edges verify RS256/ES256 client tokens with (cached, refetched on an unknown `kid`). Default: `<SWITCHBOARD_SESSION_URL>/.well-known/jwks.json`.',
  }),
  jwtKeyFiles: option({
    schema: list,
    env: 'SESSION_JWT_KEY_FILES',
    type: 'string[] (comma-separated paths)',
    default: [],
    doc: 'PEM private keys (RSA → RS256, EC P-256 → ES256) the session service signs tokens with; the `kid` is the file name without extension. All are published in the JWKS, so rotating is: add a key, make it active, remove the old one after the token TTL.',
    only: 'session',
  }),
  jwtActiveKid: option({
    schema: z.string().min(1).optional(),
    env: 'SESSION_JWT_ACTIVE_KID',
    type: 'string',
    default: undefined,
    doc: 'The `kid` of the key that signs new tokens (default: the first of `SESSION_JWT_KEY_FILES`).',
    only: 'session',
  }),
  adminToken: option({
    schema: z.string().min(16).optional(),
    env: 'SWITCHBOARD_ADMIN_TOKEN',
    type: 'string (≥ 16 chars)',
    default: undefined,
    doc: 'Bearer token of the session service admin API (`/v1/users`, `/v1/tokens`) and of the CLI commands that call it (`switchboard token`, `switchboard user add`, `switchboard channels`). Dev mode defaults to a built-in one (refused in production). An edge refuses it: its admin routes take a JWT with the `admin` role.',
    secret: true,
    devDefault: DEV_ADMIN_TOKEN,
    only: 'session',
  }),
  tokenTtlSec: option({
    schema: int(60),
    env: 'SESSION_TOKEN_TTL_SEC',
    type: 'integer (s)',
    default: 3600,
    doc: 'Lifetime of tokens issued at login.',
    only: 'session',
  }),
  maxTokenLifetimeSec: option({
    schema: int(60),
    env: 'SWITCHBOARD_MAX_TOKEN_LIFETIME_SEC',
    type: 'integer (s)',
    default: 7 * 86_400,
    doc: 'Longest lifetime a client token may have (`exp` − `iat`, or `exp` − now without `iat`): a token valid for longer is refused, and the session service mints none longer. Revocation markers are kept this long.',
  }),
  clockSkewSec: option({
    schema: int(0, 300),
    env: 'SWITCHBOARD_CLOCK_SKEW_SEC',
    type: 'integer (s)',
    default: 5,
    doc: 'Clock difference tolerated between token issuer and verifier: a token whose `iat` is further in the future is refused, and a live connection is closed with 4011 this long after its token\'s `exp`.',
  }),
  sessionTtlSec: option({
    schema: int(10),
    env: 'SESSION_TTL_SEC',
    type: 'integer (s)',
    default: 3600,
    doc: 'Sliding expiry of a session (its id, user and subscriptions): renewed on every connect and disconnect.',
  }),
  maxLoginFailures: option({
    schema: int(1),
    env: 'SESSION_MAX_LOGIN_FAILURES',
    type: 'integer',
    default: 5,
    doc: 'Failed logins of one user before it is locked out; each further failure doubles the lockout.',
    only: 'session',
  }),
  maxLoginFailuresPerIp: option({
    schema: int(1),
    env: 'SESSION_MAX_LOGIN_FAILURES_PER_IP',
    type: 'integer',
    default: 50,
    doc: 'Failed logins from one address (any users) before the address is locked out.',
    only: 'session',
  }),
  lockoutSec: option({
    schema: int(1),
    env: 'SESSION_LOCKOUT_SEC',
    type: 'integer (s)',
    default: 30,
    doc: 'First lockout after too many failed logins; doubles with each further failure, up to an hour. A successful login resets it.',
    only: 'session',
  }),
  heartbeatSec: option({
    schema: int(1, 60),
    env: 'SWITCHBOARD_HEARTBEAT_SEC',
    type: 'integer (s)',
    default: 5,
    doc: 'How often an edge tells the session service it is alive (its connections stay admitted meanwhile).',
  }),
  revocationPollSec: option({
    schema: int(1, 300),
    env: 'SWITCHBOARD_REVOCATION_POLL_SEC',
    type: 'integer (s)',
    default: 5,
    doc: 'How often an edge reads the session service\'s revocation log, so a revocation whose announcement it missed (cut off from Redis, message lost) still closes its sockets (4012) within about this long of the edge reaching the service again.',
  }),
  nodeDeadSec: option({
    schema: int(2, 300),
    env: 'SESSION_NODE_DEAD_SEC',
    type: 'integer (s)',
    default: 20,
    doc: 'An edge silent this long is dead: its connections are released (reaped within this plus 5 s).',
    only: 'session',
  }),
  checkpointMs: option({
    schema: int(100),
    env: 'SWITCHBOARD_SESSION_CHECKPOINT_MS',
    type: 'integer (ms)',
    default: 1000,
    doc: 'How often an edge records the channel positions of its sessions (resume without client positions replays from the previous checkpoint: at least once).',
  }),
  clusterHelloMs: option({
    schema: int(100, 60_000),
    env: 'SWITCHBOARD_CLUSTER_HELLO_MS',
    type: 'integer (ms)',
    default: 2000,
    doc: 'How often an edge announces itself on the control channel; an edge silent for three intervals is no longer asked cluster-wide questions (admin views).',
  }),
  adminDeadlineMs: option({
    schema: int(50, 10_000),
    env: 'SWITCHBOARD_ADMIN_DEADLINE_MS',
    type: 'integer (ms)',
    default: 500,
    doc: 'How long a cluster-wide channel admin query (HTTP `/admin/*`, FME admin ops, `switchboard channels`, cluster gauges) waits for the edges; one that has not answered by then is reported missing and not counted.',
  }),
  adminMaxChannels: option({
    schema: int(1, 1_000_000),
    env: 'SWITCHBOARD_ADMIN_MAX_CHANNELS',
    type: 'integer',
    default: 10_000,
    doc: 'Most channels (and most listed subscribers) one edge puts in its answer to a channel admin query, busiest first; beyond it the answer says `truncated` (totals stay exact).',
  }),
  adminTopChannels: option({
    schema: int(0, 100),
    env: 'SWITCHBOARD_ADMIN_TOP_CHANNELS',
    type: 'integer',
    default: 10,
    doc: 'Channels exported in `switchboard_cluster_top_channel_subscribers` (the busiest N only, so the series stay bounded; 0: none).',
  }),
  adminPage: option({
    schema: z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean()),
    env: 'SWITCHBOARD_ADMIN_PAGE',
    type: 'boolean',
    default: true,
    doc: 'Serve the admin page at `/admin` (docs/admin.md) with its routes `/admin/login`, `/admin/stats`, `/admin/publish`. The JSON routes `/admin/nodes` and `/admin/channels` stay either way.',
  }),
  adminLoginFailuresPerMin: option({
    schema: int(0, 1_000_000),
    env: 'SWITCHBOARD_ADMIN_LOGIN_FAILURES_PER_MIN',
    type: 'integer',
    default: 10,
    doc: 'Refused admin-page logins (`POST /admin/login`) an edge accepts from one client address per minute; past it the address is answered `rate_limited` until the minute ends (0: no limit).',
  }),
  rpcTimeoutMs: option({
    schema: int(100),
    env: 'SWITCHBOARD_RPC_TIMEOUT_MS',
    type: 'integer (ms)',
    default: 5000,
    doc: 'How long an edge waits for the session service (logins, which run scrypt and may queue, get 4× as long); a request held by a dead replica is claimed by another within `SESSION_RPC_CLAIM_IDLE_MS`.',
  }),
  rpcClaimIdleMs: option({
    schema: int(100),
    env: 'SESSION_RPC_CLAIM_IDLE_MS',
    type: 'integer (ms)',
    default: 1500,
    doc: 'A request pending this long at one session replica is claimed (XAUTOCLAIM) and served by another.',
    only: 'session',
  }),
  maxPayloadBytes: option({
    schema: int(1024, 16 * 1024 * 1024),
    env: 'SWITCHBOARD_MAX_PAYLOAD_BYTES',
    type: 'integer (bytes)',
    default: 64 * 1024,
    doc: 'Hard limit on one received WebSocket frame; uWebSockets.js drops the connection on a larger frame (clients see 1006). Dialect message limits below it answer with an error instead.',
  }),
  maxMessageBytes: option({
    schema: int(64, 16 * 1024 * 1024),
    env: 'SWITCHBOARD_MAX_MESSAGE_BYTES',
    type: 'integer (bytes)',
    default: 16 * 1024,
    doc: 'Largest client message a dialect accepts; a larger one gets the dialect\'s own "too large" error and the connection stays open. Per dialect: `<DIALECT>_MAX_MESSAGE_BYTES`.',
  }),
  maxDepth: option({
    schema: int(2, 128),
    env: 'SWITCHBOARD_MAX_DEPTH',
    type: 'integer',
    default: 16,
    doc: 'Deepest nesting of objects/arrays accepted in client messages and published payloads.',
  }),
  messagesPerSec: option({
    schema: int(1),
    env: 'SWITCHBOARD_MESSAGES_PER_SEC',
    type: 'integer',
    default: 100,
    doc: 'Messages per second per connection (token bucket; a batch counts each message). Excess gets `rate_limited`.',
  }),
  messagesBurst: option({
    schema: int(1),
    env: 'SWITCHBOARD_MESSAGES_BURST',
    type: 'integer',
    default: 100,
    doc: 'Bucket size of the per-connection message rate limit.',
  }),
  rateLimitCloseAfter: option({
    schema: int(0),
    env: 'SWITCHBOARD_RATE_LIMIT_CLOSE_AFTER',
    type: 'integer',
    default: 500,
    doc: 'Close a connection with 4029 after this many rate-limited messages within `SWITCHBOARD_RATE_LIMIT_WINDOW_SEC` (0: never close). Refills do not forgive earlier strikes.',
  }),
  rateLimitWindowSec: option({
    schema: int(1, 3600),
    env: 'SWITCHBOARD_RATE_LIMIT_WINDOW_SEC',
    type: 'integer (s)',
    default: 10,
    doc: 'Window over which rate-limited messages count towards closing a connection (`SWITCHBOARD_RATE_LIMIT_CLOSE_AFTER`).',
  }),
  maxSubscriptionsPerConnection: option({
    schema: int(1),
    env: 'SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_CONNECTION',
    type: 'integer',
    default: 64,
    doc: 'Most subscriptions one connection may hold.',
  }),
  maxUnauthenticatedConnections: option({
    schema: int(1),
    env: 'SWITCHBOARD_MAX_UNAUTHENTICATED_CONNECTIONS',
    type: 'integer',
    default: 10_000,
    doc: 'Most connections one edge holds that still have to authenticate (dialects with an auth deadline); further upgrades are refused with 503 before the handshake.',
  }),
  maxUnauthenticatedPerAddress: option({
    schema: int(1),
    env: 'SWITCHBOARD_MAX_UNAUTHENTICATED_PER_ADDRESS',
    type: 'integer',
    default: 1000,
    doc: 'Most not-yet-authenticated connections from one client address on one edge; further upgrades from it are refused with 429 before the handshake.',
  }),
  slowConsumerBudgetBytes: option({
    schema: int(64 * 1024),
    env: 'SWITCHBOARD_SLOW_CONSUMER_BUDGET_BYTES',
    type: 'integer (bytes)',
    default: 32 * 1024 * 1024,
    doc: 'Send buffers all connections of one edge may hold together: when they pass it, the connections with the largest buffers are closed with 4008 (slow consumer; dropped without a close frame if they stopped reading) until the rest fits, even if each is under its own backpressure limit. Checked as soon as an eighth of it was sent since the last check, not only every `SWITCHBOARD_SLOW_CONSUMER_CHECK_MS`.',
  }),
  maxSubscriptionsPerUser: option({
    schema: int(1),
    env: 'SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER',
    type: 'integer',
    default: 1000,
    doc: 'Most subscriptions the connections of one user may hold together across the cluster (valtronics channels, Fleet Freedom subscription types, FME streams, Good Uncle live queries; not OISP devices\' own channel), counted atomically by the session service per admitted connection (anonymous connections are not counted); set the same value on every edge. A subscribe past it gets the dialect\'s `too_many_subscriptions`; one the session service cannot count is refused as `unavailable`. Subscriptions a resumed session restores are counted but never refused (the user may add more only once back under the cap).',
  }),
  authTimeoutMs: option({
    schema: int(100),
    env: 'SWITCHBOARD_AUTH_TIMEOUT_MS',
    type: 'integer (ms)',
    default: 10_000,
    doc: 'A connection that has not authenticated within this time is closed with 4001.',
  }),
  maxBackpressureBytes: option({
    schema: int(1024),
    env: 'SWITCHBOARD_MAX_BACKPRESSURE_BYTES',
    type: 'integer (bytes)',
    default: 1024 * 1024,
    doc: 'Send buffer per connection; a client whose buffer passes it is closed with 4008 (slow consumer) and recovers by offset. uWS itself skips publishes only at 4× this, so the close frame still fits. A client that stopped reading (backlogged at two checks in a row with nothing drained) is dropped without a close frame at a quarter of this.',
  }),
  slowConsumerCheckMs: option({
    schema: int(10),
    env: 'SWITCHBOARD_SLOW_CONSUMER_CHECK_MS',
    type: 'integer (ms)',
    default: 250,
    doc: 'How often the edge looks for connections over the backpressure limit (only after traffic was sent).',
  }),
  idleTimeoutSec: option({
    schema: int(0, 960),
    env: 'SWITCHBOARD_IDLE_TIMEOUT_SEC',
    type: 'integer (s)',
    default: 120,
    doc: 'WebSocket idle timeout; the server sends protocol pings so that live clients never hit it.',
  }),
  maxConnectionsPerUser: option({
    schema: int(1),
    env: 'SWITCHBOARD_MAX_CONNECTIONS_PER_USER',
    type: 'integer',
    default: 100,
    doc: 'Concurrent connections per user (seed: 100).',
  }),
  maxConnectionsTotal: option({
    schema: int(1),
    env: 'SWITCHBOARD_MAX_CONNECTIONS_TOTAL',
    type: 'integer',
    default: 1000,
    doc: 'Concurrent authenticated connections in total (seed: 1000).',
  }),
  newConnectionsPerUserPerMin: option({
    schema: int(0),
    env: 'SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN',
    type: 'integer',
    default: 10,
    doc: 'New connections per user per minute (seed: 10; 0 disables).',
  }),
  newConnectionsPerIpPerMin: option({
    schema: int(0),
    env: 'SWITCHBOARD_NEW_CONNECTIONS_PER_IP_PER_MIN',
    type: 'integer',
    default: 0,
    doc: 'New connections per client address per minute; 0 (default) disables it, since NATs and load generators put many users behind one address.',
  }),
  historySize: option({
    schema: int(0),
    env: 'SWITCHBOARD_HISTORY_SIZE',
    type: 'integer',
    default: 1000,
    doc: 'Messages kept per channel for recovery by offset (0 disables history).',
  }),
  historyTtlSec: option({
    schema: int(1),
    env: 'SWITCHBOARD_HISTORY_TTL_SEC',
    type: 'integer (s)',
    default: 3600,
    doc: 'How long a channel keeps its history after its last publish (at least; up to a tenth longer, so that a busy channel renews its TTLs once per tenth).',
  }),
  publishMaxBodyBytes: option({
    schema: int(1024),
    env: 'SWITCHBOARD_PUBLISH_MAX_BODY_BYTES',
    type: 'integer (bytes)',
    default: 1024 * 1024,
    doc: 'Largest body accepted by `POST /api/publish`.',
  }),
  publishMaxBatch: option({
    schema: int(1),
    env: 'SWITCHBOARD_PUBLISH_MAX_BATCH',
    type: 'integer',
    default: 1000,
    doc: 'Most messages in one batch publish request.',
  }),
  publishSocketMaxInFlight: option({
    schema: int(1),
    env: 'SWITCHBOARD_PUBLISH_SOCKET_MAX_IN_FLIGHT',
    type: 'integer',
    default: 20_000,
    doc: 'Most messages one publish socket (`/api/publish/ws`) may have waiting for their acknowledgements. A frame that would pass it is refused whole with `too_many_in_flight` (nothing of it is published): a publisher faster than the bus cannot fill the edge\'s memory. `switchboard publish --stdin` keeps at most 10,000 in flight.',
  }),
  drainMs: option({
    schema: int(0),
    env: 'SWITCHBOARD_DRAIN_MS',
    type: 'integer (ms)',
    default: 5000,
    doc: 'On SIGTERM, client closes (1012) are spread over this window so reconnects do not stampede.',
  }),
  shutdownTimeoutMs: option({
    schema: int(100),
    env: 'SWITCHBOARD_SHUTDOWN_TIMEOUT_MS',
    type: 'integer (ms)',
    default: 15_000,
    doc: 'Hard limit for a graceful shutdown; the process exits when it passes.',
  }),
} as const;

type Spec = typeof CONFIG_SPEC;

/** Option specs by option name, as a section declares them. */
export type OptionSpecs = Readonly<Record<string, OptionSpec<z.ZodType>>>;

/** The resolved values of a set of option specs. */
export type OptionValues<S extends OptionSpecs> = { readonly [K in keyof S]: z.output<S[K]['schema']> };

/**
 * A group of options contributed by one part of the system (a dialect): env `<PREFIX>_<OPTION>`. An option
 * named in `fallback` uses the core option of that name when its own env var is unset: its own env var,
 * then the core option's env var, then its own default, then the core default.
 */
export interface ConfigSection<S extends OptionSpecs = OptionSpecs> {
  readonly name: string;
  readonly title: string;
  readonly options: S;
  readonly fallback: Readonly<Partial<Record<keyof S, keyof Spec>>>;
  /** This section's values in a resolved configuration (resolved from defaults when it was loaded without it). */
  of(config: Config): OptionValues<S>;
}

/** The resolved configuration: core options, plus the values of every section it was loaded with. */
export type Config = { readonly [K in keyof Spec]: z.output<Spec[K]['schema']> } & {
  readonly sections: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Core options given explicitly (env or override), which sections fall back to before their own defaults. */
  readonly explicit: ReadonlySet<string>;
};

/** Values that override the environment, e.g. from CLI flags or tests; `sections` by section and option name. */
export type ConfigOverrides = { readonly [K in keyof Spec]?: z.input<Spec[K]['schema']> | undefined } & {
  readonly sections?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
};

/** Raised at start-up when the configuration is invalid; lists every problem at once. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const defaultOf = (spec: OptionSpec<z.ZodType>): unknown => (typeof spec.default === 'function' ? (spec.default as () => unknown)() : spec.default);

function parseOption(spec: OptionSpec<z.ZodType>, raw: unknown, problems: string[]): unknown {
  const parsed = spec.schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const shown = spec.secret ? '(secret)' : JSON.stringify(raw);
  problems.push(`${spec.env}=${shown}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return undefined;
}

const rawValue = (override: unknown, fromEnv: string | undefined): unknown =>
  override !== undefined ? override : fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;

function resolveSection(
  section: ConfigSection,
  env: Readonly<Record<string, string | undefined>>,
  overrides: Readonly<Record<string, unknown>>,
  core: Omit<Config, 'sections'>,
  problems: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(section.options)) {
    const raw = rawValue(overrides[key], env[spec.env]);
    if (raw !== undefined) {
      out[key] = parseOption(spec, raw, problems);
      continue;
    }
    const coreKey = section.fallback[key];
    if (coreKey !== undefined && (core.explicit.has(coreKey) || spec.default === undefined)) out[key] = core[coreKey];
    else out[key] = defaultOf(spec);
  }
  return out;
}

const resolvedFromDefaults = new WeakMap<object, Map<string, Record<string, unknown>>>();

/**
 * Declares a section of options. `fallback` maps option names to the core option they default to (see
 * {@link ConfigSection}); an option with a fallback and no default of its own takes the core value.
 */
export function defineConfigSection<S extends OptionSpecs>(args: {
  name: string;
  title: string;
  options: S;
  fallback?: Partial<Record<keyof S, keyof Spec>>;
}): ConfigSection<S> {
  const section: ConfigSection<S> = {
    name: args.name,
    title: args.title,
    options: args.options,
    fallback: args.fallback ?? ({} as Partial<Record<keyof S, keyof Spec>>),
    of(config: Config): OptionValues<S> {
      const loaded = config.sections[args.name];
      if (loaded) return loaded as OptionValues<S>;
      // Loaded without this section (tests, tools): its defaults and the core values it falls back to.
      let cache = resolvedFromDefaults.get(config);
      if (!cache) resolvedFromDefaults.set(config, (cache = new Map<string, Record<string, unknown>>()));
      let values = cache.get(args.name);
      if (!values) {
        const problems: string[] = [];
        values = resolveSection(section, {}, {}, config, problems);
        if (problems.length > 0) throw new ConfigError(problems);
        cache.set(args.name, values);
      }
      return values as OptionValues<S>;
    },
  };
  return section;
}

/** Declares one option of a section (same shape as the core options). */
export function sectionOption<S extends z.ZodType>(spec: OptionSpec<S>): OptionSpec<S> {
  return spec;
}

/** Schema helpers shared by sections: bounded integers and comma-separated lists. */
export const configSchemas = { int, list };

/**
 * Resolves the configuration from overrides, then the environment, then defaults, and fails fast with
 * every problem listed (core options and every section). `role` is the process: an edge refuses
 * session-only options (an edge never holds a signing key or the admin token), and production mode
 * refuses the built-in dev secrets.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides: ConfigOverrides = {},
  role: ConfigRole | 'all' = 'all',
  sections: readonly ConfigSection[] = [],
): Config {
  return resolveConfig(env, overrides, role, sections, null);
}

/** The name of a core option. */
export type ConfigKey = keyof Spec;

/**
 * Resolves only the core options `keys` (and `mode`, which decides the dev defaults): a tool that reads
 * three options is not refused for a fourth it never uses. The others keep their defaults, unchecked,
 * and are not part of the result's type.
 */
export function loadOptions<K extends ConfigKey>(
  keys: readonly K[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides: ConfigOverrides = {},
): Pick<Config, K | 'mode'> {
  return resolveConfig(env, overrides, 'all', [], new Set<ConfigKey>(['mode', ...keys]));
}

function resolveConfig(
  env: Readonly<Record<string, string | undefined>>,
  overrides: ConfigOverrides,
  role: ConfigRole | 'all',
  sections: readonly ConfigSection[],
  only: ReadonlySet<ConfigKey> | null,
): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  const explicit = new Set<string>();
  const used = (key: ConfigKey) => only === null || only.has(key);
  for (const [key, spec] of Object.entries(CONFIG_SPEC) as [ConfigKey, OptionSpec<z.ZodType>][]) {
    const raw = used(key) ? rawValue(overrides[key], env[spec.env]) : undefined;
    if (role !== 'all' && spec.only !== undefined && spec.only !== role) {
      if (raw !== undefined) problems.push(`${spec.env}: a ${spec.only}-service option; a ${role} process may not be given it`);
      out[key] = defaultOf(spec);
      continue;
    }
    if (raw === undefined) {
      out[key] = defaultOf(spec);
      continue;
    }
    explicit.add(key);
    out[key] = parseOption(spec, raw, problems);
  }
  if ((out.tlsCertFile === undefined) !== (out.tlsKeyFile === undefined))
    problems.push('SWITCHBOARD_TLS_CERT_FILE and SWITCHBOARD_TLS_KEY_FILE: give both or neither');
  if (problems.length === 0) {
    if (out.mode === 'dev') {
      out.jwtSecret ??= DEV_JWT_SECRET;
      if (role !== 'edge') out.adminToken ??= DEV_ADMIN_TOKEN;
    } else {
      if (used('jwtSecret') && out.jwtSecret === DEV_JWT_SECRET)
        problems.push('SWITCHBOARD_JWT_SECRET: the built-in dev secret is refused in production mode');
      if (used('apiKeys') && (out.apiKeys as string[]).some((k) => k === DEV_API_KEY || k.endsWith(`=${DEV_API_KEY}`)))
        problems.push('SWITCHBOARD_API_KEYS: the built-in dev API key is refused in production mode');
      if (used('adminToken') && out.adminToken === DEV_ADMIN_TOKEN)
        problems.push('SWITCHBOARD_ADMIN_TOKEN: the built-in dev admin token is refused in production mode');
      // Cross-site WebSocket hijacking: a production edge states which sites' pages may connect, even if
      // the answer is "any" (`*`); the dev default of any Origin never reaches production silently.
      if (role !== 'session' && used('allowedOrigins') && !explicit.has('allowedOrigins'))
        problems.push('SWITCHBOARD_ALLOWED_ORIGINS: production mode needs an explicit list of allowed origins (or an explicit `*` to allow any)');
      if (role === 'edge' && out.jwtSecret !== undefined)
        problems.push('SWITCHBOARD_JWT_SECRET: a production edge holds no secrets; it verifies tokens with the JWKS');
      if (role === 'session' && out.jwtSecret === undefined && (out.jwtKeyFiles as string[]).length === 0)
        problems.push('SESSION_JWT_KEY_FILES: the session service needs signing keys in production mode');
    }
  }
  out.explicit = explicit;
  const resolved: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const section of sections) {
    resolved[section.name] = resolveSection(section, env, overrides.sections?.[section.name] ?? {}, out as Config, problems);
  }
  out.sections = resolved;
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Config;
}

function defaultText(spec: OptionSpec<z.ZodType>, fallbackEnv: string | undefined): string {
  if (typeof spec.default === 'function') return '(computed)';
  if (spec.devDefault !== undefined) return `dev mode: \`${spec.devDefault}\` (refused in production)`;
  if (spec.default === undefined) return fallbackEnv ? `\`$${fallbackEnv}\`` : '(unset)';
  if (spec.secret) return '(dev default)';
  const d: unknown = spec.default;
  return `\`${Array.isArray(d) ? d.join(',') : typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' ? String(d) : JSON.stringify(d)}\``;
}

/** Markdown for `docs/configuration.md`, generated from {@link CONFIG_SPEC} and the given sections. */
export function renderConfigMarkdown(sections: readonly ConfigSection[] = []): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '# Configuration',
    '',
    '<!-- Generated from packages/core/src/config.ts and the dialect sections by `npm run docs`. Do not edit by hand. -->',
    '',
    'Every option is read from its environment variable; CLI flags and tests may override it. The process',
    'refuses to start, listing every problem, when a value is invalid.',
    '',
    '## Core',
    '',
    '| option | env | type | default | meaning |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const [key, spec] of Object.entries(CONFIG_SPEC) as [string, OptionSpec<z.ZodType>][]) {
    const who = spec.only ? ` (${spec.only} only)` : '';
    lines.push(`| \`${key}\` | \`${spec.env}\` | ${spec.type} | ${esc(defaultText(spec, undefined))} | ${esc(spec.doc + who)} |`);
  }
  for (const section of sections) {
    lines.push(
      '',
      `## ${section.title}`,
      '',
      'An option whose default reads `$VARIABLE` takes that core option\'s value when its own variable is unset. An',
      'option with a default of its own that says "Falls back to" uses that core option instead when it is set.',
      '',
      '| option | env | type | default | meaning |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const [key, spec] of Object.entries(section.options)) {
      const coreKey = section.fallback[key];
      const coreEnv = coreKey !== undefined ? CONFIG_SPEC[coreKey].env : undefined;
      const fb = coreEnv && spec.default !== undefined ? ` Falls back to \`${coreEnv}\` when that is set.` : '';
      lines.push(`| \`${section.name}.${key}\` | \`${spec.env}\` | ${spec.type} | ${esc(defaultText(spec, coreEnv))} | ${esc(spec.doc + fb)} |`);
    }
  }
  return lines.join('\n') + '\n';
}
