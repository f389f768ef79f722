/**
 * deploy/k8s and deploy/grafana as `kubectl kustomize` builds them: every object valid against the
 * Kubernetes schemas (kubernetes-models 4.5.1, Kubernetes 1.27) and prometheus-operator's CRDs
 * (@kubernetes-models/prometheus-operator 4.4.4, operator v0.65.1) with unknown fields refused, and the
 * deployment policy: probes, resources, non-root, read-only root, PDBs, HPA, no secret values, drain
 * timing, and every configuration key a real option that the process accepts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@switchboard/core';
import {
  DEPLOY,
  ROOT,
  containerEnv,
  documentedOptions,
  find,
  kustomizations,
  kustomize,
  parseDocs,
  parseYamlText,
  podTemplate,
  readRepo,
  selects,
  switchboardRole,
  validateStrict,
  workloads,
  type Container,
  type K8sObject,
} from './support.js';

/**
 * Environment variables the manifests already set for options that are being added (TLS for the edges'
 * own listener, the dialects' dedicated ports). The process ignores them until they exist. Remove a name
 * here when its option lands in docs/configuration.md: the test fails until then to say so.
 */
const PENDING_ENV: string[] = [];

/** Names whose value is a secret: they may come from a Secret only, never a ConfigMap or a literal. */
const SECRET_NAME = /(SECRET|TOKEN|API_KEYS|PASSWORD)$/;

const dirs = [...kustomizations(join(DEPLOY, 'k8s')), ...kustomizations(join(DEPLOY, 'grafana'))];
const builds = new Map<string, K8sObject[]>();
const options = documentedOptions();
const optionNames = new Set(options.map((o) => o.env));

beforeAll(() => {
  for (const dir of dirs) builds.set(dir, kustomize(dir));
});

const build = (dir: string) => {
  const b = builds.get(dir);
  if (!b) throw new Error(`${dir} was not built`);
  return b;
};
/** The builds that deploy Switchboard workloads (base, overlays, examples on top of them). */
const deployments = () => [...builds].filter(([, objs]) => objs.some((o) => o.kind === 'Deployment'));

describe('kustomize', () => {
  it('finds the base, both overlays, the examples and the Grafana dashboards', () => {
    expect(dirs).toEqual(
      expect.arrayContaining([
        'deploy/k8s/base',
        'deploy/k8s/overlays/dev',
        'deploy/k8s/overlays/production',
        'deploy/k8s/examples/ingress-nginx',
        'deploy/k8s/examples/dedicated-ports',
        'deploy/grafana',
      ]),
    );
  });

  it('keeps to the kustomization fields of kubectl 1.20 (kustomize v2.0.3)', () => {
    // Newer fields are silently unknown to the old kustomize or fail its strict parsing.
    const allowed = new Set([
      'apiVersion',
      'kind',
      'namespace',
      'resources',
      'bases',
      'patchesStrategicMerge',
      'patchesJson6902',
      'configMapGenerator',
      'generatorOptions',
      'images',
    ]);
    for (const dir of dirs) {
      const k = parseYamlText(readRepo(join(dir, 'kustomization.yaml'))) as Record<string, unknown>;
      expect(
        Object.keys(k).filter((key) => !allowed.has(key)),
        dir,
      ).toEqual([]);
      for (const r of (k.resources ?? []) as string[])
        expect(r.endsWith('.yaml'), `${dir}: resources lists files only (directories go in bases)`).toBe(
          true,
        );
      for (const g of (k.configMapGenerator ?? []) as Record<string, unknown>[])
        expect(g.envs, `${dir}: configMapGenerator takes \`env\` (one file), not \`envs\``).toBeUndefined();
    }
  });

  it('builds objects that are valid against their schemas, unknown fields refused', async () => {
    const problems: string[] = [];
    for (const [dir, objects] of builds)
      for (const o of objects)
        for (const p of await validateStrict(o)) problems.push(`${dir}: ${o.kind}/${o.metadata.name}: ${p}`);
    expect(problems).toEqual([]);
  });

  it('the strict validation refuses a misspelt field and a wrong type (the check itself works)', async () => {
    const dev = build('deploy/k8s/overlays/dev');
    const edge = structuredClone(find(dev, 'Deployment', 'switchboard-edge'));
    const c = podTemplate(edge).spec.containers[0]!;
    (c as Record<string, unknown>).readinesProbe = c.readinessProbe;
    (podTemplate(edge).spec as Record<string, unknown>).terminationGracePeriodSeconds = '30';
    const problems = await validateStrict(edge);
    expect(
      problems.some((p) => p.includes('unknown field /spec/template/spec/containers/0/readinesProbe')),
    ).toBe(true);
    expect(problems.some((p) => p.includes('terminationGracePeriodSeconds'))).toBe(true);
    const rule = structuredClone(find(dev, 'PrometheusRule', 'switchboard'));
    (rule.spec as { groups: Record<string, unknown>[] }).groups[0]!.interval_ = '1m';
    expect(await validateStrict(rule)).toEqual(['unknown field /spec/groups/0/interval_']);
  });

  it('every object of an overlay lands in the overlay namespace', () => {
    for (const [dir, objects] of deployments()) {
      if (dir === 'deploy/k8s/base') continue;
      for (const o of objects)
        expect(o.metadata.namespace, `${dir}: ${o.kind}/${o.metadata.name}`).toMatch(/^switchboard/);
    }
  });

  it('generated files are up to date (node deploy/generate.js)', () => {
    expect(() =>
      execFileSync(process.execPath, [join(DEPLOY, 'generate.js'), '--check'], { stdio: 'pipe' }),
    ).not.toThrow();
  });
});

describe('workload policy', () => {
  it('every container: probes, resources, non-root, no privilege escalation, read-only root, capabilities dropped', () => {
    const problems: string[] = [];
    for (const [dir, objects] of deployments())
      for (const w of workloads(objects)) {
        const t = podTemplate(w);
        const where = `${dir}: ${w.kind}/${w.metadata.name}`;
        const pod = t.spec.securityContext as Record<string, unknown> | undefined;
        if (pod?.runAsNonRoot !== true)
          problems.push(`${where}: pod securityContext.runAsNonRoot is not true`);
        if (typeof pod?.runAsUser !== 'number' || pod.runAsUser === 0)
          problems.push(`${where}: pod runs without a non-zero runAsUser`);
        if ((pod?.seccompProfile as { type?: string } | undefined)?.type !== 'RuntimeDefault')
          problems.push(`${where}: seccompProfile is not RuntimeDefault`);
        if (t.spec.automountServiceAccountToken !== false)
          problems.push(`${where}: the service account token is mounted`);
        for (const c of t.spec.containers) {
          const sc = (c.securityContext ?? {}) as {
            allowPrivilegeEscalation?: boolean;
            readOnlyRootFilesystem?: boolean;
            privileged?: boolean;
            capabilities?: { drop?: string[] };
          };
          const at = `${where} container ${c.name}`;
          if (sc.allowPrivilegeEscalation !== false)
            problems.push(`${at}: allowPrivilegeEscalation is not false`);
          if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem is not true`);
          if (sc.privileged === true) problems.push(`${at}: privileged`);
          if (!sc.capabilities?.drop?.includes('ALL')) problems.push(`${at}: capabilities do not drop ALL`);
          const res = (c.resources ?? {}) as {
            requests?: Record<string, string>;
            limits?: Record<string, string>;
          };
          if (!res.requests?.cpu || !res.requests.memory) problems.push(`${at}: no cpu/memory requests`);
          if (!res.limits?.memory) problems.push(`${at}: no memory limit`);
          if (!c.readinessProbe) problems.push(`${at}: no readinessProbe`);
          if (!c.livenessProbe) problems.push(`${at}: no livenessProbe`);
          // The base names the image without a tag; every overlay pins one (`images:`).
          if (dir !== 'deploy/k8s/base' && (!/:[\w.-]+$/.test(c.image) || c.image.endsWith(':latest')))
            problems.push(`${at}: image ${c.image} has no fixed tag`);
        }
      }
    expect(problems).toEqual([]);
  });

  it('Switchboard containers: /healthz liveness and startup, /readyz readiness, on the port the process listens on', () => {
    let seen = 0;
    for (const [dir, objects] of deployments())
      for (const w of workloads(objects))
        for (const c of podTemplate(w).spec.containers) {
          const role = switchboardRole(c);
          if (!role) continue;
          seen++;
          const env = containerEnv(objects, c);
          const listenPort = Number(env.get(role === 'session' ? 'SESSION_PORT' : 'PORT')?.value);
          const at = `${dir}: ${w.metadata.name}`;
          const probe = (name: string) =>
            (c[name] as { httpGet?: { path: string; port: string | number } } | undefined)?.httpGet;
          expect(probe('livenessProbe')?.path, at).toBe('/healthz');
          expect(probe('startupProbe')?.path, at).toBe('/healthz');
          expect(probe('readinessProbe')?.path, at).toBe('/readyz');
          for (const name of ['livenessProbe', 'startupProbe', 'readinessProbe']) {
            const port = probe(name)!.port;
            const number =
              typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;
            expect(number, `${at}: ${name} port`).toBe(listenPort);
          }
        }
    expect(seen).toBeGreaterThanOrEqual(2 * deployments().length);
  });

  it('preStop and terminationGracePeriodSeconds cover the drain window and the shutdown timeout', () => {
    for (const [dir, objects] of deployments())
      for (const w of workloads(objects)) {
        const t = podTemplate(w);
        for (const c of t.spec.containers) {
          const role = switchboardRole(c);
          if (!role) continue;
          const at = `${dir}: ${w.metadata.name}`;
          const env = containerEnv(objects, c);
          const shutdownMs = Number(env.get('SWITCHBOARD_SHUTDOWN_TIMEOUT_MS')?.value);
          expect(shutdownMs, `${at}: SWITCHBOARD_SHUTDOWN_TIMEOUT_MS is set`).toBeGreaterThan(0);
          const preStop = (c.lifecycle as { preStop?: { exec?: { command: string[] } } } | undefined)?.preStop
            ?.exec?.command;
          expect(
            preStop?.[0],
            `${at}: preStop sleeps so the endpoint removal propagates before SIGTERM`,
          ).toBe('sleep');
          const preStopSec = Number(preStop![1]);
          expect(preStopSec).toBeGreaterThanOrEqual(1);
          const graceSec = (t.spec.terminationGracePeriodSeconds as number | undefined) ?? 30;
          // The kubelet counts preStop inside the grace period, then SIGTERM; node must finish its
          // graceful stop (bounded by the shutdown timeout) with a margin before SIGKILL.
          expect(
            graceSec,
            `${at}: grace ${graceSec}s >= preStop ${preStopSec}s + shutdown ${shutdownMs / 1000}s + 5s`,
          ).toBeGreaterThanOrEqual(preStopSec + Math.ceil(shutdownMs / 1000) + 5);
          if (role === 'edge') {
            const drainMs = Number(env.get('SWITCHBOARD_DRAIN_MS')?.value);
            expect(drainMs, `${at}: SWITCHBOARD_DRAIN_MS is set`).toBeGreaterThan(0);
            expect(
              drainMs + 1000,
              `${at}: the drain window fits in the shutdown timeout with 1 s to spare`,
            ).toBeLessThanOrEqual(shutdownMs);
          }
        }
      }
  });

  it('a PodDisruptionBudget covers every Deployment', () => {
    for (const [dir, objects] of deployments()) {
      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
      for (const d of objects.filter((o) => o.kind === 'Deployment')) {
        const labels = podTemplate(d).metadata.labels;
        const covering = pdbs.filter((p) =>
          selects(
            (p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels,
            labels,
          ),
        );
        expect(covering.length, `${dir}: PDB for ${d.metadata.name}`).toBe(1);
        const spec = covering[0]!.spec as { maxUnavailable?: number; minAvailable?: number };
        // minAvailable on a one-replica Deployment would block every node drain.
        expect(spec.maxUnavailable, `${dir}: ${covering[0]!.metadata.name} uses maxUnavailable`).toBe(1);
      }
    }
  });

  it('the HPA scales the edges on CPU and on connections per pod, and the edge Deployment leaves replicas to it', () => {
    for (const [dir, objects] of deployments()) {
      const hpa = find(objects, 'HorizontalPodAutoscaler', 'switchboard-edge');
      const spec = hpa.spec as {
        scaleTargetRef: { kind: string; name: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: HpaMetric[];
      };
      const target = find(objects, spec.scaleTargetRef.kind, spec.scaleTargetRef.name);
      expect(
        (target.spec as { replicas?: number }).replicas,
        `${dir}: a replicas field would fight the HPA`,
      ).toBeUndefined();
      expect(spec.minReplicas).toBeGreaterThanOrEqual(2);
      expect(spec.maxReplicas).toBeGreaterThan(spec.minReplicas);
      expect(spec.metrics.find((m) => m.type === 'Resource')?.resource).toMatchObject({
        name: 'cpu',
        target: { type: 'Utilization' },
      });
      const pods = spec.metrics.find((m) => m.type === 'Pods')?.pods;
      expect(pods?.metric.name).toBe(adapterMetric().name);
      expect(pods?.target.type).toBe('AverageValue');
    }
  });

  it('topology spread over zones and hosts for edges and session replicas', () => {
    for (const [dir, objects] of deployments())
      for (const d of objects.filter((o) => o.kind === 'Deployment')) {
        const spread = (podTemplate(d).spec.topologySpreadConstraints ?? []) as {
          topologyKey: string;
          labelSelector: { matchLabels: Record<string, string> };
        }[];
        expect(spread.map((s) => s.topologyKey).sort(), `${dir}: ${d.metadata.name}`).toEqual([
          'kubernetes.io/hostname',
          'topology.kubernetes.io/zone',
        ]);
        for (const s of spread)
          expect(selects(s.labelSelector.matchLabels, podTemplate(d).metadata.labels)).toBe(true);
      }
  });

  it('Services, Ingress backends and ServiceMonitors point at ports that exist', () => {
    const dev = build('deploy/k8s/overlays/dev');
    const check = (objects: K8sObject[], dir: string) => {
      for (const svc of objects.filter((o) => o.kind === 'Service')) {
        const spec = svc.spec as {
          selector: Record<string, string>;
          ports: { name: string; targetPort: string | number }[];
        };
        const pods = workloads(objects).filter((w) => selects(spec.selector, podTemplate(w).metadata.labels));
        expect(pods.length, `${dir}: Service ${svc.metadata.name} selects a workload`).toBeGreaterThan(0);
        for (const p of spec.ports)
          for (const w of pods)
            expect(
              podTemplate(w).spec.containers.some((c) =>
                c.ports?.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort),
              ),
              `${dir}: Service ${svc.metadata.name} port ${p.name} -> ${p.targetPort}`,
            ).toBe(true);
      }
      for (const sm of objects.filter((o) => o.kind === 'ServiceMonitor')) {
        const spec = sm.spec as {
          selector: { matchLabels: Record<string, string> };
          endpoints: { port: string }[];
        };
        const svcs = objects.filter(
          (o) => o.kind === 'Service' && selects(spec.selector.matchLabels, o.metadata.labels),
        );
        // One Service each: the job label is the Service's name, and the alert rules select on it.
        expect(
          svcs.map((s) => s.metadata.name),
          `${dir}: ServiceMonitor ${sm.metadata.name}`,
        ).toEqual([sm.metadata.name]);
        for (const e of spec.endpoints)
          expect((svcs[0]!.spec as { ports: { name: string }[] }).ports.map((p) => p.name)).toContain(e.port);
      }
    };
    for (const [dir, objects] of deployments()) check(objects, dir);
    // The ingress example goes with the dev overlay's Services.
    const ingress = find(build('deploy/k8s/examples/ingress-nginx'), 'Ingress', 'switchboard');
    const rules = (
      ingress.spec as {
        rules: {
          http: { paths: { path: string; backend: { service: { name: string; port: { name: string } } } }[] };
        }[];
      }
    ).rules;
    const paths = rules.flatMap((r) => r.http.paths);
    expect(paths.map((p) => p.path).sort()).toEqual([
      '/admin',
      '/api/publish',
      '/fleetfreedom',
      '/fme',
      '/gooduncle',
      '/oisp',
      '/v1/login',
      '/ws',
    ]);
    for (const p of paths) {
      const svc = find(dev, 'Service', p.backend.service.name);
      expect((svc.spec as { ports: { name: string }[] }).ports.map((x) => x.name)).toContain(
        p.backend.service.port.name,
      );
    }
    const annotations = ingress.metadata.annotations ?? {};
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
  });

  it('the dedicated-ports example exposes each dialect port on the edges and lets it through the NetworkPolicy', () => {
    const objects = build('deploy/k8s/examples/dedicated-ports');
    const edge = find(objects, 'Deployment', 'switchboard-edge');
    const c = podTemplate(edge).spec.containers[0]!;
    const env = containerEnv(objects, c);
    const np = find(objects, 'NetworkPolicy', 'switchboard-edge').spec as {
      ingress: { ports: { port: number }[] }[];
    };
    const open = np.ingress.flatMap((r) => r.ports.map((p) => p.port));
    for (const [name, port] of [
      ['FLEETFREEDOM_PORT', 40000],
      ['FME_PORT', 7078],
      ['OISP_PORT', 5000],
      ['GOODUNCLE_PORT', 9000],
    ] as const) {
      expect(Number(env.get(name)?.value)).toBe(port);
      expect(c.ports?.some((p) => p.containerPort === port)).toBe(true);
      expect(open).toContain(port);
    }
  });
});

describe('network policies', () => {
  it('session: reachable only from the edges, the admin network and monitoring; edges reach Redis and the session service', () => {
    for (const [dir, objects] of deployments()) {
      const session = find(objects, 'NetworkPolicy', 'switchboard-session').spec as NetworkPolicySpec;
      expect(session.policyTypes).toEqual(['Ingress', 'Egress']);
      const peers = session.ingress.flatMap((r) => {
        expect(r.from, `${dir}: a session ingress rule without \`from\` admits everyone`).toBeDefined();
        return r.from ?? [];
      });
      for (const p of peers) {
        const labels = p.podSelector?.matchLabels ?? p.namespaceSelector?.matchLabels ?? {};
        const ok =
          (p.namespaceSelector === undefined && labels['app.kubernetes.io/component'] === 'edge') ||
          labels['switchboard.io/admin'] === 'true' ||
          (p.podSelector === undefined && labels['switchboard.io/monitoring'] === 'true');
        expect(ok, `${dir}: session ingress peer ${JSON.stringify(p)}`).toBe(true);
      }
      const edge = find(objects, 'NetworkPolicy', 'switchboard-edge').spec as NetworkPolicySpec;
      const egressPorts = edge.egress.flatMap((r) => r.ports.map((p) => p.port));
      expect(egressPorts).toEqual(expect.arrayContaining([6379, 8100, 53]));
    }
    const redis = find(build('deploy/k8s/overlays/dev'), 'NetworkPolicy', 'switchboard-redis')
      .spec as NetworkPolicySpec;
    expect(redis.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'switchboard' } } }],
        ports: [{ port: 6379, protocol: 'TCP' }],
      },
    ]);
  });
});

describe('configuration and secrets', () => {
  it('docs/configuration.md lists the options (the source of the names below)', () => {
    expect(optionNames.size).toBeGreaterThan(30);
    for (const name of [
      'PORT',
      'REDIS_URL',
      'SWITCHBOARD_DRAIN_MS',
      'SWITCHBOARD_SHUTDOWN_TIMEOUT_MS',
      'SESSION_PORT',
    ])
      expect(optionNames).toContain(name);
  });

  it('every ConfigMap key and env name of a Switchboard container is a documented option (or declared pending)', () => {
    const unknown: string[] = [];
    for (const [dir, objects] of deployments())
      for (const w of workloads(objects))
        for (const c of podTemplate(w).spec.containers) {
          if (!switchboardRole(c)) continue;
          for (const name of containerEnv(objects, c).keys())
            if (!optionNames.has(name) && !PENDING_ENV.includes(name))
              unknown.push(`${dir}: ${w.metadata.name}: ${name}`);
        }
    expect(unknown).toEqual([]);
  });

  it('the pending list holds only names that are not options yet', () => {
    const landed = PENDING_ENV.filter((n) => optionNames.has(n));
    expect(landed, 'these options exist now: remove them from PENDING_ENV in this file').toEqual([]);
  });

  it('the base accounts for every option: set in config/*.env, named there with the reason it is not, set by the Deployments, or a dialect option following an accounted core option', () => {
    const text = readdirSync(join(DEPLOY, 'k8s/base/config'))
      .map((f) => readFileSync(join(DEPLOY, 'k8s/base/config', f), 'utf8'))
      .join('\n');
    const base = build('deploy/k8s/base');
    const inDeployments = new Set(
      workloads(base).flatMap((w) =>
        podTemplate(w).spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name)),
      ),
    );
    const accounted = (n: string) => new RegExp(`\\b${n}\\b`).test(text) || inDeployments.has(n);
    const fallbackOf = new Map(options.map((o) => [o.env, o.fallback]));
    const missing = [...optionNames].filter((n) => {
      if (accounted(n)) return false;
      // A dialect's standard limit (VALTRONICS_MESSAGES_PER_SEC, …) follows its core option when unset.
      const fb = fallbackOf.get(n);
      return !(fb && accounted(fb));
    });
    expect(
      missing,
      'add these options to deploy/k8s/base/config/*.env (a value, or a comment saying why not)',
    ).toEqual([]);
  });

  it('each role accepts its environment: loadConfig passes for every Switchboard container of every deployable build', () => {
    const problems: string[] = [];
    // The base alone is not deployable (no REDIS_URL, no signing keys): its overlays are.
    for (const [dir, objects] of deployments().filter(([d]) => d !== 'deploy/k8s/base'))
      for (const w of workloads(objects))
        for (const c of podTemplate(w).spec.containers) {
          const role = switchboardRole(c);
          if (!role) continue;
          const env = Object.fromEntries([...containerEnv(objects, c)].map(([k, v]) => [k, v.value]));
          try {
            loadConfig(env, {}, role === 'start' ? 'all' : role);
          } catch (err) {
            problems.push(`${dir}: ${w.metadata.name}: ${(err as Error).message}`);
          }
        }
    expect(problems).toEqual([]);
  });

  it('session-only options never reach an edge, and the edges get the secrets they need only', () => {
    const sessionOnly = new Set(options.filter((o) => o.only === 'session').map((o) => o.env));
    expect(sessionOnly.size).toBeGreaterThan(3);
    for (const [dir, objects] of deployments()) {
      const edge = podTemplate(find(objects, 'Deployment', 'switchboard-edge')).spec.containers[0]!;
      const env = containerEnv(objects, edge);
      expect(
        [...env.keys()].filter((k) => sessionOnly.has(k)),
        dir,
      ).toEqual([]);
      expect(
        env.has('SWITCHBOARD_JWT_SECRET'),
        `${dir}: edges verify with the JWKS and hold no signing secret`,
      ).toBe(false);
      const vols = podTemplate(find(objects, 'Deployment', 'switchboard-edge')).spec.volumes ?? [];
      expect(vols.map((v) => v.secret?.secretName).filter(Boolean)).not.toContain('switchboard-jwt-keys');
    }
  });

  it('no secret values: no Secret objects with data, no secret option set to a literal, no password in REDIS_URL', () => {
    const problems: string[] = [];
    for (const [dir, objects] of builds) {
      for (const o of objects)
        if (o.kind === 'Secret') problems.push(`${dir}: Secret ${o.metadata.name} is in the build`);
      for (const w of workloads(objects))
        for (const c of podTemplate(w).spec.containers) {
          if (!switchboardRole(c)) continue;
          for (const [name, v] of containerEnv(objects, c)) {
            if (SECRET_NAME.test(name) && v.from !== 'secret')
              problems.push(`${dir}: ${w.metadata.name}: ${name} is not from a Secret`);
            if (name === 'REDIS_URL' && v.from !== 'secret' && /\/\/[^/]*@/.test(v.value))
              problems.push(`${dir}: REDIS_URL with credentials in a ConfigMap`);
          }
        }
    }
    // Nor in any YAML file of deploy/, built or not.
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : /\.ya?ml$/.test(e.name) ? [join(d, e.name)] : [],
      );
    for (const file of walk(DEPLOY))
      for (const doc of parseDocs(readFileSync(file, 'utf8')) as Record<string, unknown>[])
        if (
          doc &&
          typeof doc === 'object' &&
          doc.kind === 'Secret' &&
          (doc.data !== undefined || doc.stringData !== undefined)
        )
          problems.push(`${file.slice(ROOT.length + 1)}: a Secret with values`);
    expect(problems).toEqual([]);
  });

  it('production requires every Secret it references; dev runs without any', () => {
    const refs = (objects: K8sObject[]) =>
      workloads(objects).flatMap((w) => {
        const t = podTemplate(w);
        return [
          ...t.spec.containers.flatMap((c: Container) =>
            (c.env ?? []).flatMap((e) =>
              e.valueFrom?.secretKeyRef
                ? [{ name: e.valueFrom.secretKeyRef.name, optional: e.valueFrom.secretKeyRef.optional }]
                : [],
            ),
          ),
          ...(t.spec.volumes ?? []).flatMap((v) =>
            v.secret ? [{ name: v.secret.secretName, optional: v.secret.optional }] : [],
          ),
        ];
      });
    const prod = refs(build('deploy/k8s/overlays/production'));
    expect(new Set(prod.map((r) => r.name))).toEqual(
      new Set([
        'switchboard-api-keys',
        'switchboard-admin',
        'switchboard-jwt-keys',
        'switchboard-redis',
        'switchboard-edge-tls',
      ]),
    );
    expect(prod.filter((r) => r.optional === true)).toEqual([]);
    const dev = refs(build('deploy/k8s/overlays/dev'));
    expect(dev.filter((r) => r.optional !== true)).toEqual([]);
    const devEdge = containerEnv(
      build('deploy/k8s/overlays/dev'),
      podTemplate(find(build('deploy/k8s/overlays/dev'), 'Deployment', 'switchboard-edge')).spec
        .containers[0]!,
    );
    expect(devEdge.get('SWITCHBOARD_MODE')?.value).toBe('dev');
  });

  it('production: Redis Cluster, TLS files of the mounted Secret, signing keys of the mounted Secret', () => {
    const objects = build('deploy/k8s/overlays/production');
    const edge = podTemplate(find(objects, 'Deployment', 'switchboard-edge'));
    const edgeEnv = containerEnv(objects, edge.spec.containers[0]!);
    expect(edgeEnv.get('REDIS_CLUSTER')?.value).toBe('true');
    expect(edgeEnv.get('REDIS_URL')?.from).toBe('secret');
    const mountOf = (t: typeof edge, volumeSecret: string) => {
      const vol = t.spec.volumes!.find((v) => v.secret?.secretName === volumeSecret)!;
      return (t.spec.containers[0]!.volumeMounts as { name: string; mountPath: string }[]).find(
        (m) => m.name === vol.name,
      )!.mountPath;
    };
    const tlsDir = mountOf(edge, 'switchboard-edge-tls');
    expect(edgeEnv.get('SWITCHBOARD_TLS_CERT_FILE')?.value).toBe(`${tlsDir}/tls.crt`);
    expect(edgeEnv.get('SWITCHBOARD_TLS_KEY_FILE')?.value).toBe(`${tlsDir}/tls.key`);
    const session = podTemplate(find(objects, 'Deployment', 'switchboard-session'));
    const sessionEnv = containerEnv(objects, session.spec.containers[0]!);
    const keyDir = mountOf(session, 'switchboard-jwt-keys');
    const files = sessionEnv.get('SESSION_JWT_KEY_FILES')!.value.split(',');
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f.startsWith(`${keyDir}/`), f).toBe(true);
    expect(files.map((f) => f.slice(keyDir.length + 1).replace(/\.pem$/, ''))).toContain(
      sessionEnv.get('SESSION_JWT_ACTIVE_KID')?.value,
    );
  });
});

describe('alert rules in the cluster', () => {
  it('the PrometheusRule of every build is deploy/prometheus/rules.yaml, with the admission limit of that build', () => {
    const file = parseYamlText(readRepo('deploy/prometheus/rules.yaml')) as {
      groups: { rules: { alert?: string; expr: string }[] }[];
    };
    for (const [dir, objects] of deployments()) {
      const rule = find(objects, 'PrometheusRule', 'switchboard');
      const groups = structuredClone((rule.spec as { groups: typeof file.groups }).groups);
      const session = podTemplate(find(objects, 'Deployment', 'switchboard-session')).spec.containers[0]!;
      const limit = Number(containerEnv(objects, session).get('SWITCHBOARD_MAX_CONNECTIONS_TOTAL')?.value);
      const near = groups.flatMap((g) => g.rules).find((r) => r.alert === 'SwitchboardAdmissionNearLimit')!;
      expect(
        near.expr,
        `${dir}: the alert's limit is this build's SWITCHBOARD_MAX_CONNECTIONS_TOTAL`,
      ).toContain(`> ${limit} * 0.8`);
      // Apart from that number, the cluster runs exactly the rule file.
      near.expr = near.expr.replace(`> ${limit} * 0.8`, '> LIMIT * 0.8');
      const expected = structuredClone(file.groups);
      const fileNear = expected
        .flatMap((g) => g.rules)
        .find((r) => r.alert === 'SwitchboardAdmissionNearLimit')!;
      fileNear.expr = fileNear.expr.replace(/> \d+ \* 0\.8/, '> LIMIT * 0.8');
      expect(groups, dir).toEqual(expected);
    }
  });
});

/** The parts of an HPA metric the checks read. */
interface HpaMetric {
  type: string;
  resource?: { name: string; target: { type: string } };
  pods?: { metric: { name: string }; target: { type: string } };
}

/** A NetworkPolicy peer: pods and/or namespaces by labels. */
interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
}

/** The parts of a NetworkPolicy spec the checks read. */
interface NetworkPolicySpec {
  policyTypes: string[];
  ingress: { from?: Peer[]; ports: { port: number }[] }[];
  egress: { to?: Peer[]; ports: { port: number }[] }[];
}

/** The custom metric the prometheus-adapter rule serves. */
function adapterMetric(): { name: string; seriesQuery: string; metricsQuery: string } {
  const values = parseYamlText(readRepo('deploy/k8s/prometheus-adapter/values.yaml')) as {
    rules: { custom: { seriesQuery: string; metricsQuery: string; name: { as: string } }[] };
  };
  expect(values.rules.custom).toHaveLength(1);
  const r = values.rules.custom[0]!;
  return { name: r.name.as, seriesQuery: r.seriesQuery, metricsQuery: r.metricsQuery };
}
