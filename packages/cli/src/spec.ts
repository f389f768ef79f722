/**
 * One option spec per command: the same table parses the command line (node:util parseArgs), validates
 * values, names the flag in every error, and renders `--help` and docs/cli.md. A flag may fall back to
 * an environment variable; its help line says which, with the default.
 */
import { parseArgs } from 'node:util';
import { CONFIG_SPEC, type ConfigKey } from '@switchboard/core';

/** Turns the raw text of a flag into its value, or says what was expected. */
export type FlagParser = (raw: string) => { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly expected: string };

/** One `--flag`. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** Placeholder of the value in help (`N`, `URL`); string flags only. */
  readonly value?: string;
  readonly doc: string;
  /** May be given more than once (the values are collected in order). */
  readonly multiple?: boolean;
  readonly required?: boolean;
  /** The default, as text: parsed like a given value. */
  readonly default?: string;
  /** Shown instead of `default` where the default is computed or needs words. */
  readonly defaultText?: string;
  /** Environment variable read when the flag is absent (its errors name the variable, not the flag). */
  readonly env?: string;
  /**
   * The core option this flag sets. Its env var and default are the option's (shown in help), and they are
   * resolved by the config loader, not here: the flag is left undefined when absent and the command passes
   * it as an override, so production refusals apply to a flag's value too.
   */
  readonly config?: ConfigKey;
  readonly parse?: FlagParser;
}

/** A positional argument. */
export interface PositionalSpec {
  readonly name: string;
  readonly doc: string;
  /** May be left out (the command says when it is needed); shown as `[NAME]`. */
  readonly optional?: boolean;
}

/** One command (or sub-command, `user add`). */
export interface CommandSpec {
  /** As typed after `switchboard`, e.g. `user add`. */
  readonly name: string;
  readonly summary: string;
  readonly positionals?: readonly PositionalSpec[];
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Other environment variables the command reads, with what they do. */
  readonly env?: readonly (readonly [name: string, doc: string])[];
  /** Lines printed after the options (what it needs, where it looks). */
  readonly notes?: readonly string[];
  readonly example: string;
}

/** A mistake on the command line: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose `--help` helps, when known. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The outcome of {@link parseCommand}. */
export type Parsed =
  | { readonly help: true }
  | { readonly help: false; readonly values: Readonly<Record<string, unknown>>; readonly positionals: readonly string[] };

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/**
 * Parses `argv` (after the command's own words) against `spec`. Flags absent from the command line take
 * their environment variable, then their default. `--help`/`-h` wins over everything else.
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Parsed {
  if (argv.includes('--help') || argv.includes('-h')) return { help: true };
  const options: ParseArgsOptions = {};
  for (const [name, f] of Object.entries(spec.flags)) options[name] = { type: f.type, ...(f.multiple ? { multiple: true } : {}) };
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err, spec), spec.name);
  }
  const positionals = spec.positionals ?? [];
  if (parsed.positionals.length > positionals.length) {
    const extra = parsed.positionals.slice(positionals.length).map((p) => `"${p}"`).join(', ');
    throw new UsageError(
      positionals.length === 0 ? `\`switchboard ${spec.name}\` takes no arguments; got ${extra}` : `unexpected argument ${extra} after ${positionals.map((p) => p.name).join(' ')}`,
      spec.name,
    );
  }
  const needed = positionals.filter((p) => !p.optional).length;
  if (parsed.positionals.length < needed)
    throw new UsageError(`missing ${positionals.slice(parsed.positionals.length, needed).map((p) => p.name).join(' ')}`, spec.name);
  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    const given = parsed.values[name];
    if (f.type === 'boolean') {
      values[name] = given === true;
      continue;
    }
    if (given !== undefined) {
      const list = (Array.isArray(given) ? given : [given]).map(String);
      const out = list.map((raw) => parseValue(f, raw, `--${name}`, spec.name));
      values[name] = f.multiple ? out : out[0];
      continue;
    }
    const fromEnv = f.env !== undefined && f.config === undefined ? env[f.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') values[name] = parseValue(f, fromEnv, f.env!, spec.name, true);
    else if (f.default !== undefined && f.config === undefined) values[name] = parseValue(f, f.default, `--${name}`, spec.name);
    else if (f.required) throw new UsageError(`--${name} ${f.value ?? ''} is required`.replace(/ +is/, ' is'), spec.name);
    else values[name] = f.multiple ? [] : undefined;
  }
  return { help: false, values, positionals: parsed.positionals };
}

function parseValue(f: FlagSpec, raw: string, where: string, command: string, fromEnv = false): unknown {
  if (!f.parse) return raw;
  const r = f.parse(raw);
  if (r.ok) return r.value;
  throw new UsageError(fromEnv ? `${where}="${raw}" is not ${r.expected}` : `${where} "${raw}" is not ${r.expected}`, command);
}

/** node:util's parse errors, said in the command's terms. */
function parseArgsMessage(err: unknown, spec: CommandSpec): string {
  const code = err instanceof Error && 'code' in err ? String((err as { code: unknown }).code) : '';
  const text = err instanceof Error ? err.message : String(err);
  const flag = /'(-{1,2}[^' ]+)/.exec(text)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) {
    const near = closest(flag.replace(/^-+/, ''), Object.keys(spec.flags));
    return `unknown option ${flag} for \`switchboard ${spec.name}\`${near ? ` (did you mean --${near}?)` : ''}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
    const name = flag.replace(/^-+/, '');
    const f = spec.flags[name];
    if (f?.type === 'string') return `--${name} needs a value (${f.value ?? 'VALUE'})`;
    return `--${name} takes no value`;
  }
  return text;
}

/** The name nearest to `typed` (edit distance ≤ 2), for "did you mean". */
export function closest(typed: string, names: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const n of names) {
    const d = distance(typed, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

const HELP_FLAG: FlagSpec = { type: 'boolean', doc: 'print this help' };

/** The `--help` text of a command, from its spec. */
export function renderHelp(spec: CommandSpec): string {
  const required = Object.entries(spec.flags).filter(([, f]) => f.required);
  const usage = [
    `switchboard ${spec.name}`,
    ...(spec.positionals ?? []).map((p) => (p.optional ? `[${p.name}]` : p.name)),
    ...required.map(([n, f]) => `--${n} ${f.value ?? ''}`.trim()),
    ...(Object.keys(spec.flags).length > required.length ? ['[options]'] : []),
  ].join(' ');
  const lines = [`switchboard ${spec.name}: ${spec.summary}`, '', `Usage: ${usage}`];
  if (spec.positionals?.length) {
    lines.push('', 'Arguments:');
    const width = Math.max(...spec.positionals.map((p) => p.name.length));
    for (const p of spec.positionals) lines.push(`  ${p.name.padEnd(width)}  ${p.doc}`);
  }
  lines.push('', 'Options:');
  const flags: [string, FlagSpec][] = [...Object.entries(spec.flags), ['help', HELP_FLAG]];
  const label = (n: string, f: FlagSpec) => (n === 'help' ? '-h, --help' : `--${n}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`);
  const width = Math.max(...flags.map(([n, f]) => label(n, f).length));
  for (const [n, f] of flags) {
    lines.push(`  ${label(n, f).padEnd(width)}  ${f.doc}${f.multiple ? ' (repeatable)' : ''}`);
    const { defaultText, envName } = flagMeta(f);
    const meta = [f.required ? 'required' : null, defaultText !== undefined ? `default: ${defaultText}` : null, envName !== undefined ? `env: ${envName}` : null].filter(
      (x): x is string => x !== null,
    );
    if (meta.length > 0) lines.push(`  ${''.padEnd(width)}  ${meta.join(' · ')}`);
  }
  if (spec.env?.length) {
    lines.push('', 'Environment:');
    const w = Math.max(...spec.env.map(([n]) => n.length));
    for (const [n, doc] of spec.env) lines.push(`  ${n.padEnd(w)}  ${doc}`);
  }
  if (spec.notes?.length) lines.push('', ...spec.notes);
  lines.push('', 'Example:', `  ${spec.example}`);
  return lines.join('\n') + '\n';
}

/**
 * A configuration error said in the terms the user typed: a problem with a core option that came from a
 * flag names the flag, not the environment variable it would otherwise have come from.
 */
export function flagProblems(problems: readonly string[], spec: CommandSpec, values: Readonly<Record<string, unknown>>): string[] {
  return problems.map((p) => {
    for (const [name, f] of Object.entries(spec.flags)) {
      if (f.config === undefined || values[name] === undefined) continue;
      const env = CONFIG_SPEC[f.config].env;
      if (p.startsWith(`${env}:`) || p.startsWith(`${env}=`)) return `--${name}${p.slice(env.length)}`;
    }
    return p;
  });
}

/** A flag's default and environment variable as help shows them (a core option's come from its spec). */
export function flagMeta(f: FlagSpec): { defaultText: string | undefined; envName: string | undefined } {
  if (f.config !== undefined) {
    const o = CONFIG_SPEC[f.config];
    const d: unknown = typeof o.default === 'function' ? undefined : o.default;
    const text =
      f.defaultText ??
      (o.devDefault !== undefined
        ? `dev mode: ${o.devDefault} (refused in production)`
        : Array.isArray(d)
          ? d.join(',')
          : typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean'
            ? String(d)
            : undefined);
    return { defaultText: text, envName: o.env };
  }
  return { defaultText: f.defaultText ?? f.default, envName: f.env };
}

/** Parsers shared by the commands' flags. */
export const parsers = {
  /** A TCP port; `min` 0 allows "pick a free one". */
  port(min = 0): FlagParser {
    return (raw) => {
      const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
      return Number.isInteger(n) && n >= min && n <= 65535 ? { ok: true, value: n } : { ok: false, expected: `a port number (${min}-65535)` };
    };
  },
  int(min: number, max: number): FlagParser {
    return (raw) => {
      const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
      return Number.isInteger(n) && n >= min && n <= max ? { ok: true, value: n } : { ok: false, expected: `an integer from ${min} to ${max}` };
    };
  },
  url: ((raw) => {
    try {
      const u = new URL(raw);
      // The text as typed (errors quote it back), once it is known to be a URL.
      return u.protocol === 'http:' || u.protocol === 'https:' ? { ok: true, value: raw } : { ok: false, expected: 'an http(s) URL' };
    } catch {
      return { ok: false, expected: 'a URL such as http://127.0.0.1:8000' };
    }
  }) satisfies FlagParser,
  list: ((raw) => ({
    ok: true,
    value: raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  })) satisfies FlagParser,
  nonEmpty: ((raw) => (raw.length > 0 ? { ok: true, value: raw } : { ok: false, expected: 'a non-empty value' })) satisfies FlagParser,
};

/** docs/cli.md: every command's help, generated from the same specs (`npm run docs`). */
export function renderCliMarkdown(commands: readonly CommandSpec[], overviewText: string): string {
  const lines = [
    '# The `switchboard` command',
    '',
    '<!-- Generated from packages/cli/src/commands/specs.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'From the repository root run it as `npx switchboard …`. Every command prints what is below with',
    '`--help`. Mistakes on the command line exit with 2, failures of the command with 1.',
    '',
    '```text',
    overviewText.trimEnd(),
    '```',
  ];
  for (const c of commands) lines.push('', `## \`switchboard ${c.name}\``, '', '```text', renderHelp(c).trimEnd(), '```');
  return lines.join('\n') + '\n';
}
