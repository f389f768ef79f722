/**
 * The option spec of every command: what parses its command line and what its `--help` and docs/cli.md
 * say. One spec per command; flags two commands share are declared once below and spread into both.
 */
import { DEV_ADMIN_TOKEN, DEV_API_KEY, parseDurationMs } from '@switchboard/core';
import { parsers, type CommandSpec, type FlagSpec } from '../spec.js';

const duration: FlagSpec['parse'] = (raw) => {
  const ms = parseDurationMs(raw);
  return ms !== null && ms >= 1000 ? { ok: true, value: raw } : { ok: false, expected: 'a duration such as 30m, 1h, 7d' };
};

/** Flags of the commands that call the session service's admin API (`token`, `user add`). */
const SESSION_ADMIN_FLAGS = {
  url: {
    type: 'string',
    value: 'URL',
    doc: 'the session service',
    config: 'sessionUrl',
    parse: parsers.url,
  },
  'admin-token': {
    type: 'string',
    value: 'TOKEN',
    doc: 'bearer token of its admin API',
    config: 'adminToken',
    defaultText: `dev mode: ${DEV_ADMIN_TOKEN} (refused in production)`,
    parse: parsers.nonEmpty,
  },
} as const satisfies Record<string, FlagSpec>;

const ROLES: FlagSpec = { type: 'string', value: 'A,B', doc: 'roles, comma-separated', parse: parsers.list };
const TENANT: FlagSpec = { type: 'string', value: 'T', doc: 'tenant (letters, digits, _ . @ -)', defaultText: 'the default tenant' };

const SERVER_NOTES = [
  'Every other option is an environment variable: see docs/configuration.md.',
  'SIGINT or SIGTERM stops it gracefully: not ready, clients closed with 1012 spread over',
  'SWITCHBOARD_DRAIN_MS (none to wait for when there are no clients), then exit 0.',
];

/** `switchboard start`. */
export const START: CommandSpec = {
  name: 'start',
  summary: 'the all-in-one server (edge + session service in one process); what `npm start` runs',
  flags: {
    port: { type: 'string', value: 'N', doc: 'WebSocket/HTTP port (0 picks a free one)', config: 'port', parse: parsers.port() },
    'session-port': { type: 'string', value: 'N', doc: 'session service HTTP API port (login, admin, JWKS)', config: 'sessionPort', parse: parsers.port() },
  },
  env: [
    ['REDIS_URL', 'use Redis for the bus, sessions and objects (unset: embedded in-memory backends)'],
    ['SWITCHBOARD_MODE', '`dev` (default; the built-in dev secrets work) or `production` (refuses them)'],
    ['LOG_LEVEL', 'pino level (default: info)'],
  ],
  notes: SERVER_NOTES,
  example: 'npx switchboard start --port 9000',
};

/** `switchboard edge`. */
export const EDGE: CommandSpec = {
  name: 'edge',
  summary: 'one edge of a cluster: WebSocket/HTTP, fan-out over Redis Streams; holds no secrets',
  flags: {
    port: { type: 'string', value: 'N', doc: 'WebSocket/HTTP port (0 picks a free one)', config: 'port', parse: parsers.port() },
  },
  env: [
    ['REDIS_URL', 'the Redis of the cluster (required)'],
    ['REDIS_CLUSTER', '1 when REDIS_URL is a seed node of a Redis Cluster'],
    ['SWITCHBOARD_SESSION_URL', 'the session service (its JWKS verifies tokens); default http://127.0.0.1:8100'],
    ['SWITCHBOARD_MODE', '`dev` (default) or `production`'],
  ],
  notes: SERVER_NOTES,
  example: 'REDIS_URL=redis://127.0.0.1:6379 npx switchboard edge --port 8001',
};

/** `switchboard session`. */
export const SESSION: CommandSpec = {
  name: 'session',
  summary: 'the session/auth service (users, keys, sessions, admission); run as many replicas as you like',
  flags: {
    port: { type: 'string', value: 'N', doc: 'HTTP port (login, admin API, JWKS, metrics)', config: 'sessionPort', parse: parsers.port() },
  },
  env: [
    ['REDIS_URL', 'the Redis of the cluster (required)'],
    ['SESSION_JWT_KEY_FILES', 'PEM private keys that sign tokens (production); dev mode signs with a built-in HS256 secret'],
    ['SWITCHBOARD_ADMIN_TOKEN', `admin API token; dev mode: ${DEV_ADMIN_TOKEN} (refused in production)`],
    ['SWITCHBOARD_MODE', '`dev` (default) or `production`'],
  ],
  notes: SERVER_NOTES,
  example: 'REDIS_URL=redis://127.0.0.1:6379 npx switchboard session --port 8100',
};

/** `switchboard dev-cluster`. */
export const DEV_CLUSTER: CommandSpec = {
  name: 'dev-cluster',
  summary: 'a local cluster: redis-server (from PATH) + one session service + N edges, each its own process',
  flags: {
    edges: { type: 'string', value: 'N', doc: 'how many edges', default: '2', parse: parsers.int(1, 16) },
    'base-port': { type: 'string', value: 'N', doc: 'port of the first edge; the others follow', default: '8000', parse: parsers.port(1) },
    'session-port': { type: 'string', value: 'N', doc: 'port of the session service', default: '8100', parse: parsers.port(1) },
    'data-dir': {
      type: 'string',
      value: 'DIR',
      doc: "redis-server's data (AOF): users, sessions, history and objects survive a restart",
      defaultText: '<OS cache dir>/switchboard/dev-cluster ($XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS)',
      parse: parsers.nonEmpty,
    },
    fresh: { type: 'boolean', doc: 'start with an empty data directory (deletes what the last run kept)' },
    'no-restart': { type: 'boolean', doc: 'leave a process that died down (default: restart it after a short backoff)' },
  },
  env: [['LOG_LEVEL', 'pino level of the dev cluster and its processes (default: info)']],
  notes: [
    'A process that dies is named in the log and restarted after a backoff (1 s, doubling to 30 s);',
    'the others keep serving. Ctrl-C (SIGINT) or SIGTERM stops everything; a second Ctrl-C kills at once.',
    'redis-server runs with appendonly yes, appendfsync everysec: a crash of redis-server (or the machine)',
    'may lose about the last second of acknowledged writes (docs/store.md, "Durability").',
  ],
  example: 'npx switchboard dev-cluster --edges 3 --fresh',
};

/** `switchboard token`. */
export const TOKEN: CommandSpec = {
  name: 'token',
  summary: 'print a JWT minted by the session service (the client sends it in `auth`)',
  flags: {
    sub: { type: 'string', value: 'ID', doc: 'the user id (`sub` claim)', required: true, parse: parsers.nonEmpty },
    roles: ROLES,
    ttl: { type: 'string', value: 'DURATION', doc: 'lifetime, e.g. 30m, 1h, 7d', default: '1h', parse: duration },
    tenant: TENANT,
    ...SESSION_ADMIN_FLAGS,
  },
  example: 'export TOKEN=$(npx switchboard token --sub alice --roles operator --ttl 30m)',
};

/** `switchboard user add`. */
export const USER_ADD: CommandSpec = {
  name: 'user add',
  summary: 'create a user in the session service (who can then log in with POST /v1/login)',
  positionals: [{ name: 'NAME', doc: 'the user name (1-128 of A-Z a-z 0-9 _ . @ + -)' }],
  flags: {
    password: { type: 'string', value: 'P', doc: 'the password (8 to 1024 characters)', required: true },
    roles: ROLES,
    tenant: TENANT,
    ...SESSION_ADMIN_FLAGS,
  },
  example: "npx switchboard user add alice --password 'correct horse' --roles operator",
};

/** `switchboard publish`. */
export const PUBLISH: CommandSpec = {
  name: 'publish',
  summary: "publish a message through a node's HTTP API (POST /api/publish), or a stream of them (--stdin)",
  positionals: [
    {
      name: 'CHANNEL',
      doc: "the channel as the dialect's clients name it (valtronics: telemetry, alerts, devices); with --stdin the default of lines (and of a batch line's messages) that name none",
      optional: true,
    },
  ],
  flags: {
    data: { type: 'string', value: 'JSON', doc: 'the payload, a JSON object (required without --stdin)' },
    stdin: {
      type: 'boolean',
      doc: 'publish newline-delimited JSON bodies from standard input over one WebSocket (/api/publish/ws), printing one answer line per input line; CHANNEL, --dialect and --tenant are the defaults of lines that leave them out',
    },
    'idempotency-key': { type: 'string', value: 'KEY', doc: 'makes a retry safe: a publish with a key the server still remembers is not published again', parse: parsers.nonEmpty },
    attr: {
      type: 'string',
      value: 'K=V',
      doc: 'an attribute filters match (valtronics: device_id, severity, alert_type, status); numbers become numbers',
      multiple: true,
    },
    dialect: { type: 'string', value: 'D', doc: 'the dialect whose channel it is', default: 'valtronics' },
    tenant: TENANT,
    url: { type: 'string', value: 'URL', doc: 'an edge (or `switchboard start`)', default: 'http://localhost:8000', parse: parsers.url },
    'api-key': {
      type: 'string',
      value: 'KEY',
      doc: 'API key',
      env: 'SWITCHBOARD_API_KEY',
      defaultText: `the first of SWITCHBOARD_API_KEYS; dev mode: ${DEV_API_KEY} (refused in production)`,
      parse: parsers.nonEmpty,
    },
  },
  example: `npx switchboard publish alerts --attr device_id=1 --attr severity=critical --data '{"alert_id":1,"title":"High Temperature Alert"}'`,
  notes: ['With --stdin: `tail -f events.ndjson | npx switchboard publish telemetry --stdin` (a line: {"attrs":{"device_id":1},"data":{…}}).'],
};

/** `switchboard channels`. */
export const CHANNELS: CommandSpec = {
  name: 'channels',
  summary: 'the cluster-wide channel view from any edge: connections per edge by dialect, channels, subscribers',
  flags: {
    url: { type: 'string', value: 'URL', doc: 'an edge (or `switchboard start`)', default: 'http://localhost:8000', parse: parsers.url },
    tenant: { ...TENANT, defaultText: "every tenant (a tenant-limited admin token: its own)" },
    dialect: { type: 'string', value: 'D', doc: 'only this dialect (valtronics, fme, …)', defaultText: 'every dialect', parse: parsers.nonEmpty },
    limit: { type: 'string', value: 'N', doc: 'channels listed, busiest first', default: '100', parse: parsers.int(0, 1_000_000) },
    json: { type: 'boolean', doc: 'print the answers of GET /admin/nodes and /admin/channels as JSON' },
    token: { type: 'string', value: 'JWT', doc: 'a token with the admin role to use as is', defaultText: 'one minted through the session service for 5 minutes', parse: parsers.nonEmpty },
    'session-url': { ...SESSION_ADMIN_FLAGS.url, doc: 'the session service that mints the admin token' },
    'admin-token': SESSION_ADMIN_FLAGS['admin-token'],
  },
  notes: [
    'Every edge answers for the whole cluster (it asks every live edge; one that does not answer within',
    'SWITCHBOARD_ADMIN_DEADLINE_MS is listed as missing). Edges hold no secrets: they take a JWT with the',
    'admin role, which the CLI mints with the session admin token unless --token gives one.',
  ],
  example: 'npx switchboard channels --dialect fme --url http://127.0.0.1:8001',
};

/** `switchboard listen`. */
export const LISTEN: CommandSpec = {
  name: 'listen',
  summary: 'print the updates of a valtronics channel as they arrive (through the client SDK: nothing lost or doubled across reconnects)',
  positionals: [{ name: 'CHANNEL', doc: 'telemetry, alerts, devices or system' }],
  flags: {
    filter: {
      type: 'string',
      value: 'K=V',
      doc: 'a filter of the channel (device_id, metrics, severity, alert_type, status_types, frequency); a value with commas is a list, numbers become numbers',
      multiple: true,
    },
    url: { type: 'string', value: 'URL', doc: 'an edge (its /ws), or a ws:// URL as is', default: 'http://localhost:8000', parse: parsers.url },
    json: { type: 'boolean', doc: 'print each update as the JSON frame it arrived in' },
    count: { type: 'string', value: 'N', doc: 'exit after N updates', defaultText: 'run until Ctrl-C', parse: parsers.int(1, 1_000_000_000) },
    token: { type: 'string', value: 'JWT', doc: 'a token to connect with as is', defaultText: 'one minted through the session service for 1 hour, again before it expires', parse: parsers.nonEmpty },
    sub: { type: 'string', value: 'ID', doc: 'the user id of minted tokens', default: 'switchboard-listen', parse: parsers.nonEmpty },
    'session-url': { ...SESSION_ADMIN_FLAGS.url, doc: 'the session service that mints the token' },
    'admin-token': SESSION_ADMIN_FLAGS['admin-token'],
  },
  notes: [
    'One update a line on stdout: #OFFSET TIME CHANNEL {fields}. Connection changes, and a reconnect that',
    'could not recover every update (the history no longer reached back), are said on stderr.',
    'Exits 0 on Ctrl-C or after --count updates; 1 when the subscription or the token is refused.',
  ],
  example: 'npx switchboard listen alerts --filter device_id=1,2 --filter severity=critical',
};

/** Every command, in the order `switchboard help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [START, EDGE, SESSION, DEV_CLUSTER, TOKEN, USER_ADD, PUBLISH, CHANNELS, LISTEN];
