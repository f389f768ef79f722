/**
 * Dashboards, alert rules and the HPA's adapter rule against what the code really exports: a session
 * service and an edge are started as the dev overlay's containers run them (the image's entry point,
 * the overlay's configuration, a real redis-server), given a little traffic, and their /metrics are read.
 * Every metric and label name the PromQL uses must be there (or be declared pending below); promtool
 * checks the exposition and parses every expression.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEV_ADMIN_TOKEN, DEV_API_KEY } from '@switchboard/core';
import { TestClient, freePort, startRedis, trackChild, type RedisServer } from '@switchboard/testkit';
import {
  DEPLOY,
  ROOT,
  containerEnv,
  find,
  kustomize,
  mustRun,
  parseYamlText,
  podTemplate,
  readRepo,
  requireTool,
  runTool,
  scanPromql,
  type K8sObject,
} from './support.js';

/**
 * Metrics the dashboards already chart but the code does not register yet (issues 10 and 14 add them).
 * Remove a name here when it lands: the test fails while a name listed here is registered.
 */
const PENDING_METRICS: string[] = [];

/** Series Prometheus makes itself for every target. */
const PROMETHEUS_SYNTHETIC = ['up'];

/**
 * promtool findings in the live output that the code has to fix, exactly as promtool prints them. Today:
 * Findings of `promtool check metrics` accepted for now, each with its reason (none today: the three
 * gauges prom-client named `_total` are dropped by packages/core createMetricsRegistry). The test fails
 * while a line listed here is no longer printed.
 */
const KNOWN_PROMTOOL_FINDINGS: string[] = [];

/** Labels Prometheus adds to every scraped series (ServiceMonitor targets). */
const TARGET_LABELS = new Set(['namespace', 'pod', 'job', 'instance', 'service', 'container', 'endpoint']);

// ---------------------------------------------------------------------------------------------------
// The expressions under test

interface Expr {
  readonly where: string;
  readonly expr: string;
}

interface Dashboard {
  uid: string;
  title: string;
  panels: {
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: { expr: string; datasource: { uid: string } }[];
  }[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

const DASHBOARD_FILES = ['overview', 'bus', 'limits', 'channels', 'session', 'process'].map(
  (n) => `deploy/grafana/switchboard-${n}.json`,
);
const dashboards = DASHBOARD_FILES.map((f) => ({ file: f, d: JSON.parse(readRepo(f)) as Dashboard }));

/** Every panel expression of every dashboard. */
const dashboardExprs: Expr[] = dashboards.flatMap(({ file, d }) =>
  d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${file}: ${p.title}`, expr: t.expr }))),
);

/** The selector inside each `label_values(selector, label)` variable query, and its label. */
const variableQueries = dashboards.flatMap(({ file, d }) =>
  d.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => {
      const q = typeof v.query === 'string' ? v.query : v.query!.query;
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
      if (!m) throw new Error(`${file}: variable ${v.name}: not label_values(selector, label): ${q}`);
      return { where: `${file}: variable ${v.name}`, expr: m[1]!, label: m[2]! };
    }),
);

interface RuleFile {
  groups: {
    name: string;
    rules: {
      alert?: string;
      record?: string;
      expr: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    }[];
  }[];
}
const rules = parseYamlText(readRepo('deploy/prometheus/rules.yaml')) as RuleFile;
const ruleExprs: Expr[] = rules.groups.flatMap((g) =>
  g.rules.map((r) => ({ where: `rules.yaml: ${r.alert ?? r.record}`, expr: r.expr })),
);

const adapter = (
  parseYamlText(readRepo('deploy/k8s/prometheus-adapter/values.yaml')) as {
    rules: { custom: { seriesQuery: string; metricsQuery: string }[] };
  }
).rules.custom;
/** The adapter's metricsQuery as the adapter expands it for one namespace's pods. */
const adapterExprs: Expr[] = adapter.flatMap((r, i) => [
  { where: `prometheus-adapter rule ${i} seriesQuery`, expr: r.seriesQuery },
  {
    where: `prometheus-adapter rule ${i} metricsQuery`,
    expr: r.metricsQuery
      .replace('<<.Series>>', /^(\w+)/.exec(r.seriesQuery)![1]!)
      .replace('<<.LabelMatchers>>', 'namespace="switchboard",pod=~"switchboard-edge-a|switchboard-edge-b"')
      .replace('<<.GroupBy>>', 'pod'),
  },
]);

/** Grafana's variables replaced by values PromQL parses, as Grafana does before it queries. */
const concrete = (expr: string) =>
  expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', '.+').replaceAll('$node', '.+');

// ---------------------------------------------------------------------------------------------------
// The live processes

interface Exposition {
  /** Family name -> type. */
  readonly families: Map<string, string>;
  /** Series name -> label names seen on its samples. */
  readonly labels: Map<string, Set<string>>;
  readonly text: string;
}

function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) families.set(type[1]!, type[2]!);
    if (line.startsWith('#') || !line.trim()) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (!m) throw new Error(`unreadable sample: ${line}`);
    const set = labels.get(m[1]!) ?? new Set<string>();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(l[1]!);
    labels.set(m[1]!, set);
  }
  return { families, labels, text };
}

/** Every series name a family of the exposition can produce (histograms: _bucket, _sum, _count). */
function seriesNames(e: Exposition): Set<string> {
  const names = new Set<string>(e.labels.keys());
  for (const [name, type] of e.families) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

const isPending = (name: string) =>
  PENDING_METRICS.some((p) => name === p || ['_bucket', '_sum', '_count'].some((s) => name === p + s));

let redis: RedisServer;
const children: ChildProcess[] = [];
let edgePort: number;
let sessionPort: number;
let edge: Exposition;
let session: Exposition;
let live: Set<string>;
let liveLabels: Map<string, Set<string>>;
const tmp = mkdtempSync(join(tmpdir(), 'sb-obs-'));

/** Starts one role through the image's entry point with the environment its dev-overlay container gets. */
async function startRole(
  dev: K8sObject[],
  role: 'edge' | 'session',
  overrides: Record<string, string>,
): Promise<void> {
  const container = podTemplate(find(dev, 'Deployment', `switchboard-${role}`)).spec.containers[0]!;
  expect(container.args).toEqual([role]);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmp,
    SWITCHBOARD_HOME: ROOT,
  };
  // Dev references its Secrets as optional and none exist there: those variables are simply absent.
  for (const [k, v] of containerEnv(dev, container)) if (v.from !== 'secret') env[k] = v.value;
  for (const [k, v] of Object.entries(overrides)) {
    // Override only what the manifests set (a role refuses the other role's options).
    expect(k in env || k === 'REDIS_URL', `${role}: ${k} is set by the manifests`).toBe(true);
    env[k] = v;
  }
  const child = spawn('sh', [join(DEPLOY, 'docker/entrypoint.sh'), ...container.args!], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  children.push(child);
  let logs = '';
  child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
  const port = role === 'edge' ? env.PORT : env.SESSION_PORT;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${role} exited ${child.exitCode}:\n${logs}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${role} not ready on ${port}:\n${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A login, a subscriber and a publish, so that labelled series have samples whose labels can be checked. */
async function traffic(): Promise<void> {
  const minted = await fetch(`http://127.0.0.1:${sessionPort}/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_ADMIN_TOKEN}` },
    body: JSON.stringify({ sub: 'metrics-probe' }),
  });
  expect(minted.status).toBe(200);
  const { token } = (await minted.json()) as { token: string };
  const c = await TestClient.connect(`ws://127.0.0.1:${edgePort}/ws`);
  c.send({ type: 'auth', token });
  expect(await c.nextOfType('auth_response')).toMatchObject({ success: true });
  c.send({ type: 'subscribe', channel: 'telemetry', device_id: 1 });
  await c.nextOfType('subscribe_response');
  const published = await fetch(`http://127.0.0.1:${edgePort}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
    body: JSON.stringify({
      channel: 'telemetry',
      attrs: { device_id: 1 },
      data: { temperature: { value: 21, unit: 'C' } },
    }),
  });
  expect(published.status).toBe(200);
  await c.nextOfType('telemetry_update', 5000);
  const login = await fetch(`http://127.0.0.1:${edgePort}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'nobody', password: 'not-the-password' }),
  });
  expect(login.status).toBeGreaterThanOrEqual(400);
  await c.close();
}

beforeAll(async () => {
  requireTool('promtool');
  const dev = kustomize('deploy/k8s/overlays/dev');
  redis = await startRedis();
  edgePort = await freePort();
  sessionPort = await freePort();
  // Only what a test machine needs changed: loopback, free ports, the test's Redis, quieter logs.
  const common = { REDIS_URL: redis.url, HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
  await startRole(dev, 'session', {
    ...common,
    NODE_ID: 'session-under-test',
    SESSION_PORT: String(sessionPort),
  });
  await startRole(dev, 'edge', {
    ...common,
    NODE_ID: 'edge-under-test',
    PORT: String(edgePort),
    SWITCHBOARD_SESSION_URL: `http://127.0.0.1:${sessionPort}`,
  });
  await traffic();
  edge = parseExposition(await (await fetch(`http://127.0.0.1:${edgePort}/metrics`)).text());
  session = parseExposition(await (await fetch(`http://127.0.0.1:${sessionPort}/metrics`)).text());
  live = new Set([...seriesNames(edge), ...seriesNames(session)]);
  liveLabels = new Map();
  for (const e of [edge, session])
    for (const [name, set] of e.labels)
      liveLabels.set(name, new Set([...(liveLabels.get(name) ?? []), ...set]));
}, 60_000);

afterAll(async () => {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
}, 30_000);

// ---------------------------------------------------------------------------------------------------

describe('live /metrics of an edge and a session service', () => {
  it('pass promtool check metrics without a single warning (apart from the known findings above)', () => {
    for (const [role, e] of [
      ['edge', edge],
      ['session', session],
    ] as const) {
      const r = runTool('promtool', ['check', 'metrics'], e.text);
      const findings = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
      expect(
        findings.filter((f) => !KNOWN_PROMTOOL_FINDINGS.includes(f)),
        `${role}: promtool check metrics`,
      ).toEqual([]);
      expect(
        KNOWN_PROMTOOL_FINDINGS.filter((k) => !findings.includes(k)),
        `${role}: fixed now, remove from KNOWN_PROMTOOL_FINDINGS`,
      ).toEqual([]);
      // promtool exits 3 on lint findings; 0 once the known ones are fixed. Anything else is a parse error.
      expect(r.status, role).toBe(findings.length > 0 ? 3 : 0);
    }
  });

  it('counters end in _total, and every family has HELP', () => {
    for (const e of [edge, session]) {
      for (const [name, type] of e.families) if (type === 'counter') expect(name).toMatch(/_total$/);
      const help = new Set([...e.text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]));
      for (const name of e.families.keys()) expect(help.has(name), name).toBe(true);
    }
  });

  it('come from each role: the edge exports the edge and bus metrics, the session service its own', () => {
    expect(edge.families.get('switchboard_connections')).toBe('gauge');
    expect(edge.families.get('switchboard_bus_read_lag_seconds')).toBe('histogram');
    expect(session.families.get('switchboard_session_rpc_duration_seconds')).toBe('histogram');
    expect(session.families.has('switchboard_connections')).toBe(false);
    // The default labels: every series carries the node it comes from (the dashboards' `node`).
    expect(liveLabels.get('process_cpu_seconds_total')).toContain('node');
  });

  it('the Docker health check passes against the edge port and against the session port', async () => {
    const closed = String(await freePort());
    const check = (env: Record<string, string>) =>
      spawnSync(process.execPath, [join(DEPLOY, 'docker/healthcheck.cjs')], {
        env: { PATH: process.env.PATH ?? '', ...env },
        encoding: 'utf8',
      }).status;
    expect(check({ PORT: String(edgePort), SESSION_PORT: closed })).toBe(0);
    expect(check({ PORT: closed, SESSION_PORT: String(sessionPort) })).toBe(0);
  });
});

describe('PromQL of dashboards, alert rules and the adapter rule', () => {
  const everyExpr = () => [...dashboardExprs, ...ruleExprs, ...adapterExprs, ...variableQueries];

  it('has expressions to check (the extraction itself works)', () => {
    expect(dashboardExprs.length).toBeGreaterThan(40);
    expect(ruleExprs.length).toBeGreaterThan(10);
    expect([...scanPromql(dashboardExprs[0]!.expr).metrics]).toEqual(['switchboard_connections']);
  });

  it('refers only to metric names the code registers (or declared pending)', () => {
    const unknown: string[] = [];
    for (const e of everyExpr())
      for (const m of scanPromql(e.expr).metrics)
        if (!live.has(m) && !isPending(m) && !PROMETHEUS_SYNTHETIC.includes(m))
          unknown.push(`${e.where}: ${m}`);
    expect(unknown).toEqual([]);
  });

  it('declares pending only metrics that are still missing and still used', () => {
    const landed = PENDING_METRICS.filter((p) => live.has(p));
    expect(landed, 'registered now: remove from PENDING_METRICS in this file').toEqual([]);
    const used = new Set(everyExpr().flatMap((e) => [...scanPromql(e.expr).metrics]));
    for (const p of PENDING_METRICS)
      expect(
        [...used].some((u) => u === p || u.startsWith(p + '_')),
        `${p} is used`,
      ).toBe(true);
  });

  it('names only labels the metrics carry (where the live output has samples to tell)', () => {
    const problems: string[] = [];
    const labelsOf = (m: string) =>
      liveLabels.get(m) ?? liveLabels.get(m.replace(/_(sum|count)$/, '_bucket'));
    for (const e of everyExpr()) {
      const use = scanPromql(e.expr);
      for (const [metric, names] of use.matchers) {
        const known = labelsOf(metric);
        if (!known) continue;
        for (const n of names)
          if (!known.has(n) && !TARGET_LABELS.has(n))
            problems.push(`${e.where}: ${metric} has no label ${n}`);
      }
      for (const g of use.groupings) {
        const sets = g.metrics.map(labelsOf).filter((s): s is Set<string> => s !== undefined);
        if (sets.length === 0) continue;
        for (const l of g.labels)
          if (!TARGET_LABELS.has(l) && !sets.some((s) => s.has(l)))
            problems.push(`${e.where}: by (${l}) over ${g.metrics.join(', ')}`);
      }
    }
    for (const v of variableQueries) {
      const metric = [...scanPromql(v.expr).metrics][0]!;
      if (!TARGET_LABELS.has(v.label) && !liveLabels.get(metric)?.has(v.label))
        problems.push(`${v.where}: ${metric} has no label ${v.label}`);
    }
    expect(problems).toEqual([]);
  });

  it('the label check catches a wrong label (the check itself works)', () => {
    const use = scanPromql(
      'sum by (dialect) (rate(switchboard_deliveries_total{namespace=~".+",code="x"}[5m]))',
    );
    expect([...use.matchers.get('switchboard_deliveries_total')!]).toEqual(['namespace', 'code']);
    expect(use.groupings).toEqual([{ labels: ['dialect'], metrics: ['switchboard_deliveries_total'] }]);
    expect(liveLabels.get('switchboard_deliveries_total')?.has('dialect')).toBe(false);
  });

  it('every dashboard expression parses: promtool check rules on a rule file made of them', () => {
    const file = join(tmp, 'dashboards.rules.yaml');
    const exprs = [...dashboardExprs, ...variableQueries, ...adapterExprs];
    writeFileSync(
      file,
      stringify({
        groups: [
          {
            name: 'dashboard-expressions',
            rules: exprs.map((e, i) => ({ record: `dashboard:expr:${i}`, expr: concrete(e.expr) })),
          },
        ],
      }),
    );
    const r = mustRun('promtool', ['check', 'rules', file]);
    expect(r.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
  });

  it('the alert rules pass promtool check rules, as a file and as the PrometheusRule of each overlay', () => {
    expect(mustRun('promtool', ['check', 'rules', join(DEPLOY, 'prometheus/rules.yaml')]).stdout).toContain(
      'SUCCESS',
    );
    for (const overlay of ['deploy/k8s/overlays/dev', 'deploy/k8s/overlays/production']) {
      const rule = find(kustomize(overlay), 'PrometheusRule', 'switchboard');
      const file = join(tmp, `${overlay.replaceAll('/', '_')}.rules.yaml`);
      writeFileSync(file, stringify(rule.spec));
      expect(mustRun('promtool', ['check', 'rules', file]).stdout, overlay).toContain('SUCCESS');
    }
  });

  it('every alert has a severity, a summary and a runbook section in docs/operations.md', () => {
    const slugs = new Set(
      readRepo('docs/operations.md')
        .split('\n')
        .filter((l) => /^#{1,6} /.test(l))
        .map((l) =>
          l
            .replace(/^#+ /, '')
            .trim()
            .toLowerCase()
            .replace(/[^\w\- ]/g, '')
            .replace(/ /g, '-'),
        ),
    );
    const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'SwitchboardEdgeDown',
        'SwitchboardFanoutLatencyHigh',
        'SwitchboardBusReadLagHigh',
        'SwitchboardGapsNotRepaired',
        'SwitchboardSlowConsumersSurge',
        'SwitchboardRateLimitSurge',
        'SwitchboardSessionRpcErrors',
        'SwitchboardRedisErrors',
        'SwitchboardAdmissionNearLimit',
      ]),
    );
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      const runbook = /^docs\/operations\.md#([\w-]+)$/.exec(a.annotations?.runbook ?? '');
      expect(runbook, `${a.alert}: runbook annotation`).not.toBeNull();
      expect(
        slugs.has(runbook![1]!),
        `${a.alert}: docs/operations.md has a heading for #${runbook![1]}`,
      ).toBe(true);
    }
  });
});

describe('dashboards', () => {
  it('are provisioned, unique, and every panel uses the data-source variable', () => {
    const listed = (
      parseYamlText(readRepo('deploy/grafana/kustomization.yaml')) as {
        configMapGenerator: { files: string[] }[];
      }
    ).configMapGenerator[0]!.files;
    expect(listed.map((f) => `deploy/grafana/${f}`).sort()).toEqual([...DASHBOARD_FILES].sort());
    expect(new Set(dashboards.map(({ d }) => d.uid)).size).toBe(dashboards.length);
    for (const { file, d } of dashboards) {
      expect(
        d.templating.list.map((v) => v.name),
        file,
      ).toEqual(['datasource', 'namespace', 'node']);
      for (const p of d.panels.filter((x) => x.type !== 'row')) {
        expect(p.datasource?.uid, `${file}: ${p.title}`).toBe('${datasource}');
        expect(p.targets?.length, `${file}: ${p.title}`).toBeGreaterThan(0);
        for (const t of p.targets!) expect(t.datasource.uid).toBe('${datasource}');
      }
    }
  });

  it('every selector follows the namespace and node variables', () => {
    for (const e of dashboardExprs)
      for (const [metric, names] of scanPromql(e.expr).matchers) {
        expect(names.has('namespace') && names.has('node'), `${e.where}: ${metric}`).toBe(true);
      }
    for (const e of dashboardExprs)
      for (const m of scanPromql(e.expr).metrics)
        expect(scanPromql(e.expr).matchers.has(m), `${e.where}: ${m} without matchers`).toBe(true);
  });

  it('percentiles come from histograms, aggregated by le before histogram_quantile', () => {
    const quantiles = [...dashboardExprs, ...ruleExprs].filter((e) => e.expr.includes('histogram_quantile'));
    expect(quantiles.length).toBeGreaterThan(5);
    for (const e of quantiles) {
      expect(e.expr, e.where).toMatch(
        /histogram_quantile\(0\.\d+, sum by \(([\w, ]+, )?le\) \(rate\(\w+_bucket[{[]/,
      );
      for (const m of scanPromql(e.expr).metrics)
        if (!isPending(m))
          expect(live.has(m.replace(/_bucket$/, '')) && m.endsWith('_bucket'), `${e.where}: ${m}`).toBe(true);
    }
    // The families behind them are histograms, never summaries (summaries do not aggregate across pods).
    for (const e of [edge, session])
      for (const [name, type] of e.families)
        if (name.startsWith('switchboard_')) expect(type, name).not.toBe('summary');
  });
});
