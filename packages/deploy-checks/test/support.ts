/**
 * Shared helpers of the deploy checks: where things are, the external tools (kubectl, promtool) with the
 * Debian package to install when one is missing, kustomize builds, Kubernetes schema validation that
 * refuses unknown fields, the option names of docs/configuration.md, and a PromQL scanner that finds the
 * metric and label names an expression uses.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..', '..');
/** deploy/ of the repository. */
export const DEPLOY = join(ROOT, 'deploy');

/** Reads a repository file as text. */
export const readRepo = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// ---------------------------------------------------------------------------------------------------
// External tools

/** Tools the checks run, and the Debian package that provides each (what `.ci/run` installs). */
const TOOLS = {
  kubectl: 'kubernetes-client',
  promtool: 'prometheus',
} as const;

/**
 * The path of a tool on PATH. Throws (failing the test, never skipping it) with the Debian package to
 * install when it is missing.
 */
export function requireTool(name: keyof typeof TOOLS): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  throw new Error(
    `\`${name}\` is not on PATH: install the Debian package \`${TOOLS[name]}\` (apt-get install ${TOOLS[name]})`,
  );
}

/** What a tool run printed and how it exited. */
export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a tool to completion (optionally feeding `input` on stdin); never throws on a non-zero exit. */
export function runTool(name: keyof typeof TOOLS, args: readonly string[], input?: string): ToolResult {
  const r = spawnSync(requireTool(name), args, { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a tool and throws, with everything it printed, unless it exits 0. */
export function mustRun(name: keyof typeof TOOLS, args: readonly string[], input?: string): ToolResult {
  const r = runTool(name, args, input);
  if (r.status !== 0)
    throw new Error(`${name} ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Kustomize

/** A Kubernetes object as kustomize prints it. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
};

/** Every directory under `dir` (itself included) that holds a kustomization.yaml, relative to ROOT. */
export function kustomizations(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (existsSync(join(d, 'kustomization.yaml'))) out.push(relative(ROOT, d));
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(dir);
  return out.sort();
}

/** Parses a multi-document YAML text; empty documents are dropped. */
export function parseDocs(text: string): unknown[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
      return d.toJS() as unknown;
    })
    .filter((d) => d !== null && d !== undefined);
}

/** Parses one YAML document. */
export const parseYamlText = (text: string): unknown => parseYaml(text) as unknown;

/** `kubectl kustomize <dir>` (dir relative to ROOT), parsed. */
export function kustomize(dir: string): K8sObject[] {
  const { stdout } = mustRun('kubectl', ['kustomize', join(ROOT, dir)]);
  return parseDocs(stdout) as K8sObject[];
}

/** Finds one object by kind and name. */
export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(
      `no ${kind} ${name} in the build (has: ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')})`,
    );
  return o;
}

// ---------------------------------------------------------------------------------------------------
// Schema validation with unknown fields refused

/** The models package of an apiVersion (kubernetes-models for the core groups, prometheus-operator's CRDs). */
function modelModule(apiVersion: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/'))
    return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

interface Access {
  readonly path: string;
  readonly read: Set<string>;
  enumerated: boolean;
}

/**
 * Validates an object against its kind's JSON schema and refuses unknown fields. The generated validators
 * of kubernetes-models ignore properties their schema does not list (as the API server does with a
 * warning, or refuses under `kubectl --validate=strict`). So the object is validated through a proxy that
 * records which properties the validator reads: a validator reads every property its schema declares, and
 * enumerates the keys of maps (labels, resources); any other key of an object it visited is unknown.
 * Returns the problems, empty when the object is valid.
 */
export async function validateStrict(obj: K8sObject): Promise<string[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modelModule(obj.apiVersion))) as Record<string, unknown>;
  } catch {
    return [`no schema for apiVersion ${obj.apiVersion}`];
  }
  const model = mod[obj.kind] as { prototype: { validate(this: unknown): void } } | undefined;
  if (!model) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  const seen = new Map<object, Access>();
  const wrap = (value: unknown, path: string): unknown => {
    if (value === null || typeof value !== 'object') return value;
    let rec = seen.get(value);
    if (!rec) {
      rec = { path, read: new Set(), enumerated: false };
      seen.set(value, rec);
    }
    const r = rec;
    return new Proxy(value, {
      get(target, key, receiver) {
        const v: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== 'string') return v;
        r.read.add(key);
        return Object.hasOwn(target, key) ? wrap(v, `${path}/${key}`) : v;
      },
      has(target, key) {
        if (typeof key === 'string') r.read.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        r.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
  };
  const problems: string[] = [];
  try {
    model.prototype.validate.call(wrap(obj, ''));
  } catch (err) {
    problems.push((err as Error).message);
  }
  for (const [value, rec] of seen) {
    if (Array.isArray(value) || rec.enumerated) continue;
    for (const key of Object.keys(value))
      if (!rec.read.has(key)) problems.push(`unknown field ${rec.path}/${key}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Configuration options

/** One option of docs/configuration.md: its env name and the role it is restricted to, if any. */
export interface OptionDoc {
  readonly env: string;
  readonly only: string | null;
  /** The core option a dialect option falls back to (its default is `$X`, or it "Falls back to `X`"). */
  readonly fallback: string | null;
}

/**
 * The options of docs/configuration.md (generated from the one config schema), read from every table
 * whose header has an `env` column, so that the checks follow the schema as it grows.
 */
export function documentedOptions(): OptionDoc[] {
  const lines = readRepo('docs/configuration.md').split('\n');
  const out: OptionDoc[] = [];
  let envCol = -1;
  let docCol = -1;
  let defaultCol = -1;
  const cells = (line: string) =>
    line
      .replace(/\\\|/g, '\uE000')
      .split('|')
      .slice(1, -1)
      .map((c) => c.replace(/\uE000/g, '|').trim());
  for (const line of lines) {
    if (!line.startsWith('|')) {
      envCol = -1;
      continue;
    }
    const row = cells(line);
    if (envCol < 0) {
      envCol = row.indexOf('env');
      docCol = row.indexOf('meaning');
      defaultCol = row.indexOf('default');
      continue;
    }
    if (row.every((c) => /^:?-+:?$/.test(c))) continue;
    const m = /^`([A-Z][A-Z0-9_]*)`$/.exec(row[envCol] ?? '');
    if (!m) continue;
    const meaning = docCol >= 0 ? (row[docCol] ?? '') : '';
    const only = /\((\w+) only\)\s*$/.exec(meaning);
    const fallback = /^`\$([A-Z][A-Z0-9_]*)`$/.exec(defaultCol >= 0 ? (row[defaultCol] ?? '') : '') ?? /Falls back to `([A-Z][A-Z0-9_]*)`/.exec(meaning);
    out.push({ env: m[1]!, only: only ? only[1]! : null, fallback: fallback ? fallback[1]! : null });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// PromQL

/** What an expression uses: metric names, and per metric the label names its matchers name. */
export interface PromqlUse {
  readonly metrics: Set<string>;
  /** Label names of each selector's matchers, by metric name. */
  readonly matchers: Map<string, Set<string>>;
  /** Label names of `by (…)` / `without (…)` clauses, with the metrics of the expression they apply to. */
  readonly groupings: { labels: string[]; metrics: string[] }[];
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

type Token = { kind: 'ident' | 'num' | 'dur' | 'str' | 'punct' | 'op'; text: string; pos: number };

/** Splits PromQL into tokens (Grafana's `$__rate_interval` and friends count as durations). */
export function lexPromql(expr: string): Token[] {
  const out: Token[] = [];
  const re =
    /\s+|#[^\n]*|(?<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|(?<dur>(?:\d+(?:ms|s|m|h|d|w|y))+\b|\$__\w+)|(?<num>0x[0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?)|(?<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)|(?<op>=~|!~|!=|==|>=|<=|[=<>+\-*/%^])|(?<punct>[(){}[\],])/y;
  let pos = 0;
  while (pos < expr.length) {
    re.lastIndex = pos;
    const m = re.exec(expr);
    if (!m) throw new Error(`PromQL: cannot read ${JSON.stringify(expr.slice(pos, pos + 20))} in ${expr}`);
    const g = m.groups!;
    const kind = (['str', 'dur', 'num', 'ident', 'op', 'punct'] as const).find((k) => g[k] !== undefined);
    if (kind) out.push({ kind, text: m[0], pos });
    pos = re.lastIndex;
  }
  return out;
}

/** The metric and label names an expression uses. Function and aggregation names are told apart by the `(` or `by`/`without` after them. */
export function scanPromql(expr: string): PromqlUse {
  const tokens = lexPromql(expr);
  const metrics = new Set<string>();
  const matchers = new Map<string, Set<string>>();
  const groupings: { labels: string[]; metrics: string[] }[] = [];
  // Metrics found inside each open parenthesis, so a grouping can be tied to what it aggregates.
  const pendingGroupings: { labels: string[]; depth: number; metrics: string[] }[] = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if (t.kind === 'punct' && t.text === '(') depth++;
    if (t.kind === 'punct' && t.text === ')') {
      depth--;
      for (let g = pendingGroupings.length - 1; g >= 0; g--) {
        const pg = pendingGroupings[g]!;
        if (pg.depth === depth && pg.metrics.length > 0) {
          groupings.push({ labels: pg.labels, metrics: pg.metrics });
          pendingGroupings.splice(g, 1);
        }
      }
    }
    if (
      t.kind === 'ident' &&
      (t.text === 'by' ||
        t.text === 'without' ||
        t.text === 'on' ||
        t.text === 'ignoring' ||
        t.text === 'group_left' ||
        t.text === 'group_right')
    ) {
      const labels: string[] = [];
      if (next?.text === '(') {
        let j = i + 2;
        for (; j < tokens.length && tokens[j]!.text !== ')'; j++)
          if (tokens[j]!.kind === 'ident') labels.push(tokens[j]!.text);
        i = j;
      }
      // `sum by (x) (expr)` and `sum(expr) by (x)`: the grouping applies to the aggregation's argument.
      if (t.text === 'by' || t.text === 'without') {
        const after = tokens[i + 1];
        if (after?.text === '(') pendingGroupings.push({ labels, depth, metrics: [] });
        else {
          // Postfix form: the argument was the parenthesis just closed; attach to the latest metrics seen.
          groupings.push({ labels, metrics: [...metrics] });
        }
      }
      continue;
    }
    if (t.kind === 'ident' && t.text === 'offset') {
      i++; // the duration
      continue;
    }
    if (t.kind === 'punct' && t.text === '{') {
      // A selector without a name: {__name__="x"} is not used here; skip to the closing brace.
      let j = i + 1;
      for (; j < tokens.length && tokens[j]!.text !== '}'; j++);
      i = j;
      continue;
    }
    if (t.kind !== 'ident' || KEYWORDS.has(t.text)) continue;
    if (next && (next.text === '(' || next.text === 'by' || next.text === 'without')) continue; // a function or aggregation
    metrics.add(t.text);
    for (const pg of pendingGroupings) pg.metrics.push(t.text);
    if (next?.text === '{') {
      const names = matchers.get(t.text) ?? new Set<string>();
      let j = i + 2;
      for (; j < tokens.length && tokens[j]!.text !== '}'; j++) {
        const tok = tokens[j]!;
        if (tok.kind === 'ident' && tokens[j + 1]?.kind === 'op') names.add(tok.text);
      }
      matchers.set(t.text, names);
      i = j;
    }
  }
  return { metrics, matchers, groupings };
}

// ---------------------------------------------------------------------------------------------------
// Workloads

/** A container of a pod template, as far as the checks read it. */
export interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: {
      secretKeyRef?: { name: string; key: string; optional?: boolean };
      fieldRef?: { fieldPath: string };
      configMapKeyRef?: { name: string; key: string };
    };
  }[];
  [key: string]: unknown;
}

/** The pod template of a Deployment or StatefulSet. */
export interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    containers: Container[];
    volumes?: { name: string; secret?: { secretName: string; optional?: boolean } }[];
    [key: string]: unknown;
  };
}

/** Workloads (Deployments, StatefulSets) of a build. */
export const workloads = (objects: readonly K8sObject[]) =>
  objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');

/** The pod template of a workload. */
export const podTemplate = (w: K8sObject) => (w.spec as { template: PodTemplate }).template;

/** A Switchboard container (the image runs a role given as its first argument), and which role. */
export function switchboardRole(c: Container): 'edge' | 'session' | 'start' | null {
  const role = c.args?.[0];
  return /(^|\/)switchboard(:|@|$)/.test(c.image) &&
    (role === 'edge' || role === 'session' || role === 'start')
    ? role
    : null;
}

/**
 * Stand-in for a value that comes from a Secret: a URL for `*_URL` options, otherwise a string long
 * enough for every secret option's minimum length.
 */
export const secretPlaceholder = (name: string): string =>
  name.endsWith('_URL')
    ? 'redis://user:password@redis.invalid:6379'
    : 'secret-from-a-kubernetes-secret-0123456789';

/**
 * The environment a container gets: its ConfigMaps (envFrom) overlaid by its `env` entries. Values from
 * Secrets become {@link secretPlaceholder}, downward-API fields the field path.
 */
export function containerEnv(
  objects: readonly K8sObject[],
  c: Container,
): Map<string, { value: string; from: 'configmap' | 'literal' | 'secret' | 'field' }> {
  const env = new Map<string, { value: string; from: 'configmap' | 'literal' | 'secret' | 'field' }>();
  for (const src of c.envFrom ?? []) {
    if (!src.configMapRef) throw new Error(`${c.name}: envFrom other than a ConfigMap is not expected`);
    const cm = find(objects, 'ConfigMap', src.configMapRef.name);
    for (const [k, v] of Object.entries((cm.data ?? {}) as Record<string, string>))
      env.set(k, { value: v, from: 'configmap' });
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env.set(e.name, { value: e.value, from: 'literal' });
    else if (e.valueFrom?.secretKeyRef) env.set(e.name, { value: secretPlaceholder(e.name), from: 'secret' });
    else if (e.valueFrom?.fieldRef) env.set(e.name, { value: e.valueFrom.fieldRef.fieldPath, from: 'field' });
    else throw new Error(`${c.name}: env ${e.name} has a source the checks do not know`);
  }
  return env;
}

/** Whether `labels` has every pair of `selector`. */
export const selects = (
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
