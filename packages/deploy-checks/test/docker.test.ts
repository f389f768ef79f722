/**
 * deploy/docker: there is no Docker engine on the test machines, so the Dockerfile is checked by reading
 * it (the image policy), and its entry point and health check are run for real against this checkout.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@switchboard/testkit';
import { ROOT, readRepo } from './support.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly name: string;
  readonly from: string;
  readonly instructions: Instruction[];
}

/** Parses a Dockerfile into stages of instructions (line continuations joined, comments dropped). */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const start = i + 1;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = line.slice(0, -1) + ' ';
      i++;
      while (i < lines.length && /^\s*#/.test(lines[i]!)) i++; // comments inside a continuation
      line += lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot read ${line}`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      stages.push({ from: f[1]!, name: f[2] ?? String(stages.length), instructions: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      args.set(k!, v ?? '');
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile line ${start}: ${op} before FROM`);
      stages.at(-1)!.instructions.push({ op, args: rest, line: start });
    }
  }
  return { args, stages };
}

/** Whether `.dockerignore` keeps `path` (relative to the context root) out of the build context. */
function dockerIgnored(path: string, patterns: readonly string[]): boolean {
  const toRegex = (p: string) =>
    new RegExp(
      '^' +
        p
          .replace(/^\/+|\/+$/g, '')
          .split(/(\*\*\/?|\*|\?)/)
          .map((part) =>
            part === '**/'
              ? '(?:.*/)?'
              : part === '**'
                ? '.*'
                : part === '*'
                  ? '[^/]*'
                  : part === '?'
                    ? '[^/]'
                    : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
          )
          .join('') +
        '$',
    );
  const parents = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRegex(negate ? raw.slice(1) : raw);
    // A pattern that matches a directory excludes (or re-includes) everything under it.
    if (parents.some((p) => re.test(p))) ignored = !negate;
  }
  return ignored;
}

const dockerfile = parseDockerfile(readRepo('deploy/docker/Dockerfile'));
const ignore = readRepo('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const final = dockerfile.stages.at(-1)!;
const all = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);
const jsonArgs = (i: Instruction | undefined) => JSON.parse(i?.args ?? 'null') as string[] | null;

describe('Dockerfile policy', () => {
  it('passes the Dockerfile linter of the VS Code Docker language server (dockerfile-utils), every check an error', () => {
    const strict = ValidationSeverity.ERROR;
    const diagnostics = validate(readRepo('deploy/docker/Dockerfile'), {
      deprecatedMaintainer: strict,
      directiveCasing: strict,
      emptyContinuationLine: strict,
      instructionCasing: strict,
      instructionCmdMultiple: strict,
      instructionEntrypointMultiple: strict,
      instructionHealthcheckMultiple: strict,
      instructionJSONInSingleQuotes: strict,
      instructionWorkdirRelative: strict,
    });
    expect(
      diagnostics.map(
        (d) =>
          `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
      ),
    ).toEqual([]);
    // It does find problems (the check itself works).
    expect(validate('FROM node:20\nHEALTHCHECK --bogus=1 CMD true\nEXPOSE http\n').length).toBe(2);
  });

  it('is multi-stage on a pinned base image, and the final stage builds nothing', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(3);
    for (const s of dockerfile.stages) {
      const image = s.from.replace(/^\$\{(\w+)\}$/, (_, a: string) => dockerfile.args.get(a) ?? '');
      expect(image, `stage ${s.name}`).toMatch(/^[\w./-]+:[\w.-]+$/);
      expect(image.endsWith(':latest')).toBe(false);
    }
    const runs = all(final, 'RUN').map((i) => i.args);
    expect(runs.filter((r) => /\bnpm\b|\bnpx\b|\btsc\b|\bturbo\b/.test(r))).toEqual([]);
  });

  it('installs production dependencies only, from the lockfile, into what the final stage runs', () => {
    const everyRun = dockerfile.stages.flatMap((s) => all(s, 'RUN').map((i) => i.args));
    expect(
      everyRun.filter((r) => /npm (install|i)\b/.test(r)),
      'npm install ignores the lockfile; use npm ci',
    ).toEqual([]);
    const prodStages = dockerfile.stages.filter((s) =>
      all(s, 'RUN').some((i) => /npm ci\b[^&]*--omit=dev/.test(i.args)),
    );
    expect(prodStages.length).toBe(1);
    // node_modules of the final image come from that stage only (never from the stage with dev tools).
    const copies = all(final, 'COPY').map((i) => ({ from: /--from=(\S+)/.exec(i.args)?.[1], args: i.args }));
    const fromProd = copies.filter((c) => c.from === prodStages[0]!.name);
    expect(fromProd.length).toBe(1);
    const devStages = dockerfile.stages
      .filter((s) => all(s, 'RUN').some((i) => /npm ci\b(?![^&]*--omit=dev)/.test(i.args)))
      .map((s) => s.name);
    expect(devStages.length).toBeGreaterThan(0);
    for (const c of copies.filter((x) => x.from !== undefined && devStages.includes(x.from))) {
      const sources = c.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1);
      for (const s of sources) {
        expect(s, 'no node_modules from a stage with dev dependencies').not.toMatch(/node_modules/);
        expect(s, 'not the whole work tree of a stage with dev dependencies').not.toMatch(
          /^\/app\/?$|^\.\/?$/,
        );
      }
    }
  });

  it('runs as a numeric non-root user, with tini as PID 1 and the entry point script', () => {
    const user = all(final, 'USER').at(-1)?.args ?? '';
    const [uid, gid] = user.split(':');
    expect(uid, 'numeric, so runAsNonRoot can verify it').toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(gid === undefined || Number(gid) > 0).toBe(true);
    // Nothing runs as root after the switch except what the image was built with.
    const userIndex = final.instructions.findIndex((i) => i.op === 'USER');
    expect(final.instructions.slice(userIndex).filter((i) => i.op === 'RUN')).toEqual([]);
    const entry = jsonArgs(all(final, 'ENTRYPOINT').at(-1));
    expect(entry?.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(all(final, 'RUN').some((i) => /apt-get install[^&]*\btini\b/.test(i.args))).toBe(true);
    expect(entry?.[2]).toBe('/usr/local/lib/switchboard/entrypoint.sh');
    expect(jsonArgs(all(final, 'CMD').at(-1))).toEqual(['start']);
  });

  it('checks the native uWS binary at build time, has a HEALTHCHECK, exposes both ports, production defaults', () => {
    expect(
      all(final, 'RUN').some((i) => i.args.includes('/usr/local/lib/switchboard/entrypoint.sh help')),
    ).toBe(true);
    const hc = all(final, 'HEALTHCHECK').at(-1)?.args ?? '';
    expect(hc).toMatch(/--interval=\d+s/);
    expect(hc).toContain('CMD ["node", "/usr/local/lib/switchboard/healthcheck.cjs"]');
    expect(all(final, 'EXPOSE').flatMap((i) => i.args.split(/\s+/))).toEqual(
      expect.arrayContaining(['8000', '8100']),
    );
    const env = all(final, 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toContain('NODE_ENV=production');
    expect(env).toContain('SWITCHBOARD_MODE=production');
  });

  it('every file copied from the build context exists and is not excluded by .dockerignore', () => {
    const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n'));
    const sources = dockerfile.stages.flatMap((s) =>
      all(s, 'COPY')
        .filter((i) => !i.args.includes('--from='))
        .flatMap((i) => i.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1)),
    );
    expect(sources).toContain('deploy/docker/entrypoint.sh');
    for (const src of sources) {
      if (src === '.') continue;
      expect(tracked.has(src), `${src} is tracked by git`).toBe(true);
      expect(dockerIgnored(src, ignore), `${src} is excluded by .dockerignore`).toBe(false);
    }
    for (const path of [
      'node_modules/x',
      'packages/core/node_modules/x',
      'packages/core/dist/index.js',
      '.git/HEAD',
      'deploy/k8s/base/edge.yaml',
      'docs/configuration.md',
      'keys/signing.pem',
      '.env',
    ])
      expect(dockerIgnored(path, ignore), path).toBe(true);
    for (const path of [
      'package.json',
      'package-lock.json',
      'packages/core/src/index.ts',
      'packages/bus/lua/publish.lua',
      'packages/cli/bin/switchboard.js',
    ])
      expect(dockerIgnored(path, ignore), path).toBe(false);
  });

  it('the entry point script is executable in git', () => {
    const mode = execFileSync('git', ['ls-files', '-s', 'deploy/docker/entrypoint.sh'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).split(' ')[0];
    expect(mode).toBe('100755');
  });
});

describe('entry point and health check, run for real', () => {
  const entrypoint = join(ROOT, 'deploy/docker/entrypoint.sh');
  const tmp = mkdtempSync(join(tmpdir(), 'sb-entry-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('loads the native uWS binary and runs the CLI', () => {
    const r = spawnSync('sh', [entrypoint, 'help'], {
      env: { ...process.env, SWITCHBOARD_HOME: ROOT },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: switchboard <command>/);
  });

  it('refuses to start, exit 70, when uWebSockets.js is the pure-JS fallback', () => {
    // A home whose packages/edge resolves a uWebSockets.js without getParts, as the fallback is.
    const mod = join(tmp, 'packages/edge/node_modules/uWebSockets.js');
    mkdirSync(mod, { recursive: true });
    writeFileSync(join(mod, 'package.json'), JSON.stringify({ name: 'uWebSockets.js', main: 'index.js' }));
    writeFileSync(join(mod, 'index.js'), 'module.exports = { App() {} };\n');
    mkdirSync(join(tmp, 'packages/cli/bin'), { recursive: true });
    // A stand-in CLI that leaves a mark when it runs: it must not.
    writeFileSync(
      join(tmp, 'packages/cli/bin/switchboard.js'),
      `require('node:fs').writeFileSync(${JSON.stringify(join(tmp, 'ran'))}, '');\n`,
    );
    const r = spawnSync('sh', [entrypoint, 'start'], {
      env: { ...process.env, SWITCHBOARD_HOME: tmp },
      encoding: 'utf8',
    });
    expect(r.status).toBe(70);
    expect(r.stderr).toContain('native uWebSockets.js binary did not load');
    expect(existsSync(join(tmp, 'ran'))).toBe(false);
  });

  it('the health check fails when neither port answers', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const r = spawnSync(process.execPath, [join(ROOT, 'deploy/docker/healthcheck.cjs')], {
      env: { ...process.env, PORT: String(a), SESSION_PORT: String(b) },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
  });
});
