#!/usr/bin/env node
// Writes the generated files of deploy/: the Grafana dashboards (deploy/grafana/*.json) from the panel
// definitions below, and the PrometheusRule of the Kubernetes base from deploy/prometheus/rules.yaml.
//   node deploy/generate.js          rewrite them
//   node deploy/generate.js --check  exit 1 and name the stale files (the deploy tests run this)
// Dashboards use histograms only (never summaries) so percentiles aggregate across pods, and every
// selector carries the namespace/node variables.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// ---------------------------------------------------------------------------------------------------
// PromQL helpers

/** `metric{namespace=~"$namespace",node=~"$node",extra}`: every panel follows the dashboard variables. */
const sel = (metric, extra = '') =>
  `${metric}{namespace=~"$namespace",node=~"$node"${extra ? ',' + extra : ''}}`;
const rate = (metric, extra = '') => `rate(${sel(metric, extra)}[$__rate_interval])`;
const sumRate = (by, metric, extra = '') => `sum${by ? ` by (${by})` : ''} (${rate(metric, extra)})`;
const quantile = (q, by, metric, extra = '') =>
  `histogram_quantile(${q}, sum by (${by ? by + ', ' : ''}le) (${rate(metric + '_bucket', extra)}))`;
/** p50, p90 and p99 of a histogram, one target each. */
const quantiles = (metric, by = '', extra = '') =>
  [0.5, 0.9, 0.99].map((q) => ({
    expr: quantile(q, by, metric, extra),
    legend: `p${Math.round(q * 100)}${by ? ` {{${by}}}` : ''}`,
  }));

// ---------------------------------------------------------------------------------------------------
// Dashboard model

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

function templating() {
  const scope = 'process_start_time_seconds{job=~"switchboard-(edge|session)"}';
  return {
    list: [
      {
        name: 'datasource',
        label: 'Data source',
        type: 'datasource',
        query: 'prometheus',
        current: {},
        hide: 0,
      },
      {
        name: 'namespace',
        label: 'Namespace',
        type: 'query',
        datasource: DATASOURCE,
        query: { query: `label_values(${scope}, namespace)`, refId: 'namespace' },
        definition: `label_values(${scope}, namespace)`,
        refresh: 2,
        includeAll: false,
        multi: false,
        sort: 1,
        current: {},
        hide: 0,
      },
      {
        name: 'node',
        label: 'Node',
        type: 'query',
        datasource: DATASOURCE,
        query: {
          query: `label_values(process_start_time_seconds{job=~"switchboard-(edge|session)",namespace=~"$namespace"}, node)`,
          refId: 'node',
        },
        definition: `label_values(process_start_time_seconds{job=~"switchboard-(edge|session)",namespace=~"$namespace"}, node)`,
        refresh: 2,
        includeAll: true,
        // `.+`, not `.*`: other processes in the namespace export process metrics without our `node` label.
        allValue: '.+',
        multi: true,
        sort: 1,
        current: {},
        hide: 0,
      },
    ],
  };
}

/**
 * A time-series panel. `targets` are `{ expr, legend }`; `unit` is a Grafana unit (`s`, `ops`, `bytes`,
 * `short`, `percentunit`).
 */
function panel(title, description, unit, targets, opts = {}) {
  return { title, description, unit, targets, stack: opts.stack ?? false, width: opts.width ?? 12 };
}

function build(dashboard) {
  let x = 0;
  let y = 0;
  let id = 1;
  const panels = [];
  for (const row of dashboard.rows) {
    if (x !== 0) {
      x = 0;
      y += 8;
    }
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    for (const p of row.panels) {
      if (x + p.width > 24) {
        x = 0;
        y += 8;
      }
      panels.push({
        id: id++,
        type: 'timeseries',
        title: p.title,
        description: p.description,
        datasource: DATASOURCE,
        gridPos: { h: 8, w: p.width, x, y },
        fieldConfig: {
          defaults: {
            unit: p.unit,
            min: 0,
            custom: {
              drawStyle: 'line',
              lineWidth: 1,
              fillOpacity: p.stack ? 30 : 10,
              stacking: { mode: p.stack ? 'normal' : 'none', group: 'A' },
            },
          },
          overrides: [],
        },
        options: {
          legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
          tooltip: { mode: 'multi', sort: 'desc' },
        },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DATASOURCE,
          expr: t.expr,
          legendFormat: t.legend,
          range: true,
        })),
      });
      x += p.width;
    }
  }
  return {
    uid: dashboard.uid,
    title: dashboard.title,
    description: dashboard.description,
    tags: ['switchboard'],
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    time: { from: 'now-3h', to: 'now' },
    timezone: '',
    version: 1,
    links: [
      {
        title: 'Switchboard',
        type: 'dashboards',
        tags: ['switchboard'],
        asDropdown: true,
        includeVars: true,
        keepTime: true,
      },
    ],
    templating: templating(),
    annotations: { list: [] },
    panels,
  };
}

// ---------------------------------------------------------------------------------------------------
// The dashboards

const DASHBOARDS = [
  {
    file: 'switchboard-overview.json',
    uid: 'switchboard-overview',
    title: 'Switchboard / Cluster overview',
    description: 'Connections, deliveries, publishes and fan-out latency of the whole cluster.',
    rows: [
      {
        title: 'Connections',
        panels: [
          panel(
            'Connections by dialect',
            'Open WebSocket connections (switchboard_connections), summed over the selected nodes.',
            'short',
            [{ expr: `sum by (dialect) (${sel('switchboard_connections')})`, legend: '{{dialect}}' }],
            { stack: true },
          ),
          panel(
            'Connections by node',
            'Open WebSocket connections per edge: the HPA keeps this near its target.',
            'short',
            [{ expr: `sum by (node) (${sel('switchboard_connections')})`, legend: '{{node}}' }],
          ),
          panel('Connections opened /s', 'New WebSocket connections per second by dialect.', 'ops', [
            { expr: sumRate('dialect', 'switchboard_connections_opened_total'), legend: '{{dialect}}' },
          ]),
          panel(
            'Connections closed /s by code',
            'Closes per second by dialect and close code (docs/close-codes.md): 1012 during drains, 4008 slow consumers, 4029 rate limits.',
            'ops',
            [
              {
                expr: sumRate('dialect, code', 'switchboard_connections_closed_total'),
                legend: '{{dialect}} {{code}}',
              },
            ],
          ),
        ],
      },
      {
        title: 'Traffic',
        panels: [
          panel(
            'Deliveries /s',
            'Messages handed to subscriber sockets by fan-out (one per subscriber per message).',
            'ops',
            [
              { expr: sumRate('', 'switchboard_deliveries_total'), legend: 'total' },
              { expr: sumRate('node', 'switchboard_deliveries_total'), legend: '{{node}}' },
            ],
          ),
          panel(
            'Publish rate',
            'Messages published through the edges, by source (HTTP API, clients).',
            'ops',
            [{ expr: sumRate('source', 'switchboard_published_total'), legend: '{{source}}' }],
          ),
          panel(
            'Bus messages dispatched /s',
            'Bus messages dispatched by the hubs (each is rendered once per subscriber group).',
            'ops',
            [{ expr: sumRate('node', 'switchboard_fanout_messages_total'), legend: '{{node}}' }],
          ),
          panel(
            'Client messages /s',
            'Messages received from clients and direct replies sent, by dialect.',
            'ops',
            [
              { expr: sumRate('dialect', 'switchboard_messages_received_total'), legend: 'in {{dialect}}' },
              { expr: sumRate('dialect', 'switchboard_messages_sent_total'), legend: 'out {{dialect}}' },
            ],
          ),
        ],
      },
      {
        title: 'Latency and health',
        panels: [
          panel(
            'Fan-out latency (publish to socket)',
            'Quantiles of switchboard_fanout_latency_seconds over the selected nodes; the alert fires when p99 stays over 250 ms.',
            's',
            quantiles('switchboard_fanout_latency_seconds'),
          ),
          panel(
            'Fan-out latency p99 by node',
            'One slow node stands out here before it moves the cluster quantile.',
            's',
            [{ expr: quantile(0.99, 'node', 'switchboard_fanout_latency_seconds'), legend: '{{node}}' }],
          ),
          panel(
            'Client errors /s',
            'Error replies sent to clients by dialect and registered error code (docs/errors.md).',
            'ops',
            [
              {
                expr: sumRate('dialect, code', 'switchboard_client_errors_total'),
                legend: '{{dialect}} {{code}}',
              },
            ],
          ),
          panel(
            'Slow consumers and backpressure',
            'Connections closed as slow consumers (4008) and found over the uWS backpressure limit.',
            'ops',
            [
              {
                expr: sumRate('dialect', 'switchboard_slow_consumer_disconnects_total'),
                legend: 'slow consumer {{dialect}}',
              },
              {
                expr: sumRate('dialect', 'switchboard_backpressure_drops_total'),
                legend: 'backpressure {{dialect}}',
              },
            ],
          ),
          panel(
            'Recoveries /s',
            'Subscribe requests that asked for recovery, by outcome, and messages replayed from history.',
            'ops',
            [
              { expr: sumRate('outcome', 'switchboard_recoveries_total'), legend: '{{outcome}}' },
              { expr: sumRate('', 'switchboard_recovered_messages_total'), legend: 'messages replayed' },
            ],
          ),
          panel(
            'Upgrades refused /s',
            'WebSocket upgrades refused before the handshake, by reason (origin, draining).',
            'ops',
            [{ expr: sumRate('reason', 'switchboard_upgrade_rejections_total'), legend: '{{reason}}' }],
          ),
        ],
      },
    ],
  },
  {
    file: 'switchboard-bus.json',
    uid: 'switchboard-bus',
    title: 'Switchboard / Bus (Redis Streams)',
    description:
      'Fan-out between nodes over Redis Streams: read lag, gaps and repairs, Redis errors and reconnects, shards read.',
    rows: [
      {
        title: 'Reading the feeds',
        panels: [
          panel(
            'Read lag',
            'Publish to edge receive through Redis (switchboard_bus_read_lag_seconds); the alert fires when p99 stays over 500 ms.',
            's',
            quantiles('switchboard_bus_read_lag_seconds'),
          ),
          panel('Read lag p99 by node', 'Read lag p99 of each edge.', 's', [
            { expr: quantile(0.99, 'node', 'switchboard_bus_read_lag_seconds'), legend: '{{node}}' },
          ]),
          panel(
            'Feed entries read /s',
            'Entries delivered to the hub, and entries read but skipped (channels of a read shard without local interest).',
            'ops',
            [
              { expr: sumRate('node', 'switchboard_bus_messages_read_total'), legend: 'read {{node}}' },
              { expr: sumRate('node', 'switchboard_bus_messages_skipped_total'), legend: 'skipped {{node}}' },
            ],
          ),
          panel('Shards read', 'Shard feeds each edge reads (only shards it has subscribers for).', 'short', [
            { expr: `sum by (node) (${sel('switchboard_bus_shards_read')})`, legend: '{{node}}' },
          ]),
        ],
      },
      {
        title: 'Gaps and Redis',
        panels: [
          panel(
            'Feed gaps /s',
            "Shard feeds found trimmed past a node's read position; the hub repairs them from channel history.",
            'ops',
            [{ expr: sumRate('node', 'switchboard_bus_feed_gaps_total'), legend: '{{node}}' }],
          ),
          panel(
            'Gap repairs /s',
            'Gaps repaired from history, and gaps older than the history (subscribers closed with 4010).',
            'ops',
            [{ expr: sumRate('outcome', 'switchboard_gap_repairs_total'), legend: '{{outcome}}' }],
          ),
          panel('Redis errors /s', 'Failed Redis commands of the bus, by operation.', 'ops', [
            { expr: sumRate('node, op', 'switchboard_bus_redis_errors_total'), legend: '{{node}} {{op}}' },
          ]),
          panel('Redis reconnects', 'Reconnections of the bus connections per 5 minutes.', 'short', [
            {
              expr: `sum by (node) (increase(${sel('switchboard_bus_reconnects_total')}[5m]))`,
              legend: '{{node}}',
            },
          ]),
        ],
      },
    ],
  },
  {
    file: 'switchboard-limits.json',
    uid: 'switchboard-limits',
    title: 'Switchboard / Rate limits',
    description:
      'Requests and connections refused by a limit: per connection at the edges, cluster-wide at the session service.',
    rows: [
      {
        title: 'Edge limits',
        panels: [
          panel(
            'Rejections by rule',
            'switchboard_rate_limit_rejections_total by rule.',
            'ops',
            [{ expr: sumRate('rule', 'switchboard_rate_limit_rejections_total'), legend: '{{rule}}' }],
            { stack: true },
          ),
          panel(
            'Rejections by dialect',
            'switchboard_rate_limit_rejections_total by dialect.',
            'ops',
            [{ expr: sumRate('dialect', 'switchboard_rate_limit_rejections_total'), legend: '{{dialect}}' }],
            { stack: true },
          ),
          panel(
            'Rejections by dialect and rule',
            'Every (dialect, rule) pair: the rate-limit surge alert watches these.',
            'ops',
            [
              {
                expr: sumRate('dialect, rule', 'switchboard_rate_limit_rejections_total'),
                legend: '{{dialect}} {{rule}}',
              },
            ],
            { width: 24 },
          ),
          panel(
            'Closed for rate limiting /s',
            'Connections closed with 4029 after too many rate-limited messages in a row.',
            'ops',
            [
              {
                expr: sumRate('dialect', 'switchboard_connections_closed_total', 'code="4029"'),
                legend: '{{dialect}}',
              },
            ],
          ),
          panel('Upgrades refused /s', 'Upgrades refused before the handshake, by reason.', 'ops', [
            { expr: sumRate('reason', 'switchboard_upgrade_rejections_total'), legend: '{{reason}}' },
          ]),
        ],
      },
      {
        title: 'Cluster admission (session service)',
        panels: [
          panel(
            'Admissions refused /s',
            'Connections refused by a cluster-wide rule (user_concurrent, total_concurrent, user_rate, ip_rate).',
            'ops',
            [
              {
                expr: sumRate('outcome', 'switchboard_session_admissions_total', 'outcome!="ok"'),
                legend: '{{outcome}}',
              },
            ],
          ),
          panel(
            'Connections against the cluster limit',
            'All open connections of the namespace; compare with SWITCHBOARD_MAX_CONNECTIONS_TOTAL.',
            'short',
            [{ expr: `sum(${sel('switchboard_connections')})`, legend: 'connections' }],
          ),
        ],
      },
    ],
  },
  {
    file: 'switchboard-channels.json',
    uid: 'switchboard-channels',
    title: 'Switchboard / Channels and admin queries',
    description:
      'Channels, subscriptions and subscriber groups per node; channel admin queries (HTTP /admin, FME admin ops, CLI).',
    rows: [
      {
        title: 'Channels',
        panels: [
          panel('Channels by node', 'Channels with subscribers on each edge.', 'short', [
            { expr: `sum by (node) (${sel('switchboard_channels')})`, legend: '{{node}}' },
          ]),
          panel('Subscriptions by node', 'Subscriptions held by the connections of each edge.', 'short', [
            { expr: `sum by (node) (${sel('switchboard_subscriptions')})`, legend: '{{node}}' },
          ]),
          panel(
            'Subscriber groups by node',
            'Groups (dialect, channel, filter, projection, frequency): the hub renders each message once per group.',
            'short',
            [{ expr: `sum by (node) (${sel('switchboard_subscriber_groups')})`, legend: '{{node}}' }],
          ),
          panel('Subscriptions per connection', 'Subscriptions divided by connections, per edge.', 'short', [
            {
              expr: `sum by (node) (${sel('switchboard_subscriptions')}) / sum by (node) (${sel('switchboard_connections')})`,
              legend: '{{node}}',
            },
          ]),
        ],
      },
      {
        title: 'Admin queries',
        panels: [
          panel('Admin queries /s', 'Channel admin queries by query and outcome.', 'ops', [
            {
              expr: sumRate('query, outcome', 'switchboard_admin_queries_total'),
              legend: '{{query}} {{outcome}}',
            },
          ]),
          panel('Admin query latency p99', 'Time to answer an admin query, by query.', 's', [
            {
              expr: quantile(0.99, 'query', 'switchboard_admin_query_duration_seconds'),
              legend: '{{query}}',
            },
          ]),
        ],
      },
    ],
  },
  {
    file: 'switchboard-session.json',
    uid: 'switchboard-session',
    title: 'Switchboard / Session service',
    description: 'Logins, lockouts, sessions, admissions and the Rpc the edges call.',
    rows: [
      {
        title: 'Logins',
        panels: [
          panel(
            'Logins /s by outcome',
            'Login attempts: ok, invalid_credentials, locked_out, invalid_message.',
            'ops',
            [{ expr: sumRate('outcome', 'switchboard_session_logins_total'), legend: '{{outcome}}' }],
            { stack: true },
          ),
          panel(
            'Lockouts /s',
            'Logins refused because the user or address is locked out after failures.',
            'ops',
            [
              {
                expr: sumRate('', 'switchboard_session_logins_total', 'outcome="locked_out"'),
                legend: 'locked out',
              },
              {
                expr: sumRate('', 'switchboard_session_logins_total', 'outcome="invalid_credentials"'),
                legend: 'invalid credentials',
              },
            ],
          ),
          panel(
            'Login latency',
            'Time to answer a login, scrypt included.',
            's',
            quantiles('switchboard_session_login_duration_seconds'),
          ),
          panel(
            'Sessions /s',
            'Sessions opened, new or resumed, and connections reaped from dead edges.',
            'ops',
            [
              { expr: sumRate('outcome', 'switchboard_session_sessions_total'), legend: '{{outcome}}' },
              { expr: sumRate('', 'switchboard_session_reaped_connections_total'), legend: 'reaped' },
            ],
          ),
        ],
      },
      {
        title: 'Admissions and Rpc',
        panels: [
          panel(
            'Admissions /s by outcome',
            'Connection admissions: ok, or the rule that refused.',
            'ops',
            [{ expr: sumRate('outcome', 'switchboard_session_admissions_total'), legend: '{{outcome}}' }],
            { stack: true },
          ),
          panel('Rpc latency p99 by method', 'Time to serve an edge request at the session service.', 's', [
            {
              expr: quantile(0.99, 'method', 'switchboard_session_rpc_duration_seconds'),
              legend: '{{method}}',
            },
          ]),
          panel('Rpc requests /s by method', 'Edge requests served, by method.', 'ops', [
            {
              expr: sumRate('method', 'switchboard_session_rpc_duration_seconds_count'),
              legend: '{{method}}',
            },
          ]),
          panel(
            'Rpc errors',
            'Share of edge requests that failed, by method (the alert fires over 5 %).',
            'percentunit',
            [
              {
                expr: `${sumRate('method', 'switchboard_session_rpc_duration_seconds_count', 'outcome="error"')} / ${sumRate('method', 'switchboard_session_rpc_duration_seconds_count')}`,
                legend: '{{method}}',
              },
            ],
          ),
        ],
      },
    ],
  },
  {
    file: 'switchboard-process.json',
    uid: 'switchboard-process',
    title: 'Switchboard / Processes',
    description: 'CPU, memory, event-loop lag and garbage collection of every edge and session process.',
    rows: [
      {
        title: 'Resources',
        panels: [
          panel('CPU', 'CPU seconds per second (1 = one core; an edge runs one event loop).', 'short', [
            { expr: sumRate('node', 'process_cpu_seconds_total'), legend: '{{node}}' },
          ]),
          panel('Resident memory', 'Resident set size per process.', 'bytes', [
            { expr: `sum by (node) (${sel('process_resident_memory_bytes')})`, legend: '{{node}}' },
          ]),
          panel('Heap used', 'V8 heap in use per process.', 'bytes', [
            { expr: `sum by (node) (${sel('nodejs_heap_size_used_bytes')})`, legend: '{{node}}' },
          ]),
          panel('Open file descriptors', 'Sockets and files open per process.', 'short', [
            { expr: `sum by (node) (${sel('process_open_fds')})`, legend: '{{node}}' },
          ]),
        ],
      },
      {
        title: 'Event loop and GC',
        panels: [
          panel(
            'Event-loop lag p99',
            'How late timers run: a busy event loop delays every socket of the process.',
            's',
            [{ expr: `max by (node) (${sel('nodejs_eventloop_lag_p99_seconds')})`, legend: '{{node}}' }],
          ),
          panel('Event-loop lag (mean)', 'Mean event-loop delay per process.', 's', [
            { expr: `max by (node) (${sel('nodejs_eventloop_lag_mean_seconds')})`, legend: '{{node}}' },
          ]),
          panel('GC time /s', 'Seconds spent in garbage collection per second, by kind.', 's', [
            { expr: sumRate('node, kind', 'nodejs_gc_duration_seconds_sum'), legend: '{{node}} {{kind}}' },
          ]),
          panel('GC pause p99', 'Garbage-collection pause p99 by kind.', 's', [
            { expr: quantile(0.99, 'kind', 'nodejs_gc_duration_seconds'), legend: '{{kind}}' },
          ]),
        ],
      },
    ],
  },
];

// ---------------------------------------------------------------------------------------------------
// PrometheusRule from the rule file

function prometheusRule() {
  const rules = readFileSync(join(here, 'prometheus', 'rules.yaml'), 'utf8');
  const lines = rules.split('\n');
  const start = lines.findIndex((l) => l.startsWith('groups:'));
  if (start < 0) throw new Error('deploy/prometheus/rules.yaml: no top-level `groups:`');
  const body = lines
    .slice(start)
    .map((l) => (l === '' ? l : '  ' + l))
    .join('\n')
    .trimEnd();
  return [
    '# Generated from deploy/prometheus/rules.yaml by `node deploy/generate.js`; do not edit by hand.',
    'apiVersion: monitoring.coreos.com/v1',
    'kind: PrometheusRule',
    'metadata:',
    '  name: switchboard',
    '  labels:',
    '    app.kubernetes.io/name: switchboard',
    '    app.kubernetes.io/part-of: switchboard',
    'spec:',
    body,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------

const outputs = new Map();
for (const d of DASHBOARDS)
  outputs.set(join(here, 'grafana', d.file), JSON.stringify(build(d), null, 2) + '\n');
outputs.set(join(here, 'k8s', 'base', 'prometheusrule.yaml'), prometheusRule());

const check = process.argv.includes('--check');
const stale = [];
for (const [file, text] of outputs) {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (current === text) continue;
  if (check) stale.push(relative(root, file));
  else writeFileSync(file, text);
}
if (stale.length > 0) {
  process.stderr.write(`stale generated files (run \`node deploy/generate.js\`):\n  ${stale.join('\n  ')}\n`);
  process.exit(1);
}
