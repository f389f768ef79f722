import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CONFIG_SPEC, ConfigError, DEV_ADMIN_TOKEN, DEV_API_KEY, DEV_JWT_SECRET, configSchemas, defineConfigSection, loadConfig, loadOptions, renderConfigMarkdown, sectionOption } from './config.js';

describe('config', () => {
  it('has defaults for everything: an empty environment gives a dev server on 8000', () => {
    const c = loadConfig({});
    expect(c.mode).toBe('dev');
    expect(c.port).toBe(8000);
    expect(c.jwtSecret).toBe(DEV_JWT_SECRET);
    expect(c.apiKeys).toEqual([DEV_API_KEY]);
    expect(c.maxMessageBytes).toBe(16 * 1024);
    expect(c.messagesPerSec).toBe(100);
    expect(c.maxConnectionsPerUser).toBe(100);
    expect(c.maxConnectionsTotal).toBe(1000);
    expect(c.newConnectionsPerUserPerMin).toBe(10);
    expect(c.newConnectionsPerIpPerMin).toBe(0);
    expect(c.redisUrl).toBeUndefined();
  });

  it('reads environment variables with their types', () => {
    const c = loadConfig({ PORT: '9001', SWITCHBOARD_ALLOWED_ORIGINS: 'https://a.example, https://b.example', LOG_LEVEL: 'debug' });
    expect(c.port).toBe(9001);
    expect(c.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(c.logLevel).toBe('debug');
  });

  it('lets overrides win over the environment', () => {
    expect(loadConfig({ PORT: '9001' }, { port: 0 }).port).toBe(0);
  });

  it('fails fast listing every bad value, never printing secrets', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', SWITCHBOARD_MESSAGES_PER_SEC: '0', SWITCHBOARD_JWT_SECRET: 'short-secret' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toContain('PORT');
    expect(problems.join('\n')).toContain('SWITCHBOARD_MESSAGES_PER_SEC');
    expect(problems.join('\n')).not.toContain('short-secret');
  });

  it('an edge cannot even be given a session-only option (private keys, admin token settings)', () => {
    expect(() => loadConfig({ SESSION_JWT_KEY_FILES: '/keys/k.pem' }, {}, 'edge')).toThrow(/SESSION_JWT_KEY_FILES: a session-service option/);
    expect(() => loadConfig({ SESSION_PORT: '9000' }, {}, 'edge')).toThrow(/SESSION_PORT/);
    expect(loadConfig({ SESSION_JWT_KEY_FILES: '/keys/k.pem' }, {}, 'session').jwtKeyFiles).toEqual(['/keys/k.pem']);
    expect(loadConfig({}, {}, 'edge').adminToken).toBeUndefined();
  });

  it('loadOptions checks only the options a tool reads (and mode), with the same dev defaults and refusals', () => {
    const prod = { SWITCHBOARD_MODE: 'production', SWITCHBOARD_ADMIN_TOKEN: 'a-real-admin-token-1234' };
    // The whole configuration refuses the dev API key in production; a tool that never reads it does not.
    expect(() => loadConfig(prod)).toThrow(/SWITCHBOARD_API_KEYS/);
    const o = loadOptions(['sessionUrl', 'adminToken'], { ...prod, PORT: 'not-a-port' });
    expect(o).toMatchObject({ mode: 'production', adminToken: 'a-real-admin-token-1234', sessionUrl: 'http://127.0.0.1:8100' });
    expect(() => loadOptions(['adminToken'], { SWITCHBOARD_MODE: 'production', SWITCHBOARD_ADMIN_TOKEN: DEV_ADMIN_TOKEN })).toThrow(/dev admin token is refused/);
    expect(() => loadOptions(['apiKeys'], { SWITCHBOARD_MODE: 'production' })).toThrow(/SWITCHBOARD_API_KEYS/);
    expect(() => loadOptions(['sessionUrl'], { SWITCHBOARD_SESSION_URL: 'nope' })).toThrow(/SWITCHBOARD_SESSION_URL="nope"/);
    expect(loadOptions(['adminToken'], {}).adminToken).toBe(DEV_ADMIN_TOKEN);
  });

  it('the docs print every built-in dev secret next to its option, and that production refuses it', () => {
    const md = renderConfigMarkdown();
    for (const [key, value] of [['jwtSecret', DEV_JWT_SECRET], ['apiKeys', DEV_API_KEY], ['adminToken', DEV_ADMIN_TOKEN]] as const) {
      expect(CONFIG_SPEC[key].devDefault).toBe(value);
      const row = md.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
      expect(row).toContain(`dev mode: \`${value}\` (refused in production)`);
    }
  });

  it('in production an edge holds no secret and the session service needs signing keys', () => {
    const prod = { SWITCHBOARD_MODE: 'production', SWITCHBOARD_API_KEYS: 'k', SWITCHBOARD_ALLOWED_ORIGINS: 'https://app.example' };
    expect(() => loadConfig({ ...prod, SWITCHBOARD_JWT_SECRET: 'x'.repeat(40) }, {}, 'edge')).toThrow(/holds no secrets/);
    expect(loadConfig(prod, {}, 'edge').jwtSecret).toBeUndefined();
    expect(() => loadConfig(prod, {}, 'session')).toThrow(/SESSION_JWT_KEY_FILES/);
    expect(loadConfig({ ...prod, SESSION_JWT_KEY_FILES: '/k.pem' }, {}, 'session').jwtKeyFiles).toEqual(['/k.pem']);
  });

  it('refuses the dev secret and API key in production mode', () => {
    expect(() => loadConfig({ SWITCHBOARD_MODE: 'production', SWITCHBOARD_JWT_SECRET: DEV_JWT_SECRET })).toThrow(/dev secret[\s\S]*dev API key/);
    expect(() => loadConfig({ SWITCHBOARD_MODE: 'production', SWITCHBOARD_API_KEYS: 'k', SWITCHBOARD_ADMIN_TOKEN: DEV_ADMIN_TOKEN })).toThrow(/dev admin token/);
    const ok = loadConfig({
      SWITCHBOARD_MODE: 'production',
      SWITCHBOARD_JWT_SECRET: 'a-real-production-secret-of-enough-length',
      SWITCHBOARD_API_KEYS: 'k1,k2',
      SWITCHBOARD_ALLOWED_ORIGINS: '*',
    });
    expect(ok.apiKeys).toEqual(['k1', 'k2']);
  });

  it('production mode refuses to start an edge without an explicit Origin list (an explicit `*` is accepted)', () => {
    const prod = { SWITCHBOARD_MODE: 'production', SWITCHBOARD_API_KEYS: 'k' };
    expect(() => loadConfig(prod, {}, 'edge')).toThrow(/SWITCHBOARD_ALLOWED_ORIGINS: production mode needs an explicit list/);
    expect(() => loadConfig({ ...prod, SWITCHBOARD_JWT_SECRET: 'x'.repeat(40) }, {}, 'all')).toThrow(/SWITCHBOARD_ALLOWED_ORIGINS/);
    expect(loadConfig({ ...prod, SWITCHBOARD_ALLOWED_ORIGINS: '*' }, {}, 'edge').allowedOrigins).toEqual(['*']);
    expect(loadConfig({ ...prod, SWITCHBOARD_ALLOWED_ORIGINS: 'https://a.example' }, {}, 'edge').allowedOrigins).toEqual(['https://a.example']);
    // The session service serves no WebSockets: it is not asked for one.
    expect(loadConfig({ ...prod, SESSION_JWT_KEY_FILES: '/k.pem' }, {}, 'session').mode).toBe('production');
    expect(loadConfig({ SWITCHBOARD_API_KEYS: 'k' }, {}, 'edge').allowedOrigins).toEqual(['*']);
  });

  it('declares a distinct env var, a type and documentation for every option', () => {
    const envs = new Set<string>();
    for (const [key, spec] of Object.entries(CONFIG_SPEC)) {
      expect(spec.doc.length, key).toBeGreaterThan(10);
      expect(spec.type.length, key).toBeGreaterThan(2);
      expect(envs.has(spec.env), spec.env).toBe(false);
      envs.add(spec.env);
    }
  });

  it('refuses a scoped dev API key in production too', () => {
    expect(() =>
      loadConfig({ SWITCHBOARD_MODE: 'production', SWITCHBOARD_JWT_SECRET: 'x'.repeat(40), SWITCHBOARD_API_KEYS: `acme=${DEV_API_KEY}`, SWITCHBOARD_ALLOWED_ORIGINS: '*' }),
    ).toThrow(/dev API key/);
  });
});

describe('config sections (one per dialect)', () => {
  const { int } = configSchemas;
  const section = defineConfigSection({
    name: 'demo',
    title: 'Dialect demo',
    options: {
      messagesPerSec: sectionOption({ schema: int(1), env: 'DEMO_MESSAGES_PER_SEC', type: 'integer', default: 7, doc: 'Messages per second of demo.' }),
      maxMessageBytes: sectionOption({
        schema: int(64),
        env: 'DEMO_MAX_MESSAGE_BYTES',
        type: 'integer',
        default: undefined as unknown as number,
        doc: 'Largest demo message.',
      }),
      greeting: sectionOption({ schema: z.string().min(1), env: 'DEMO_GREETING', type: 'string', default: 'hi', doc: 'What demo says first.' }),
    },
    fallback: { messagesPerSec: 'messagesPerSec', maxMessageBytes: 'maxMessageBytes' },
  });

  it('resolves: own env, then the core option when set explicitly, then its own default, then the core default', () => {
    expect(section.of(loadConfig({}, {}, 'all', [section]))).toEqual({ messagesPerSec: 7, maxMessageBytes: 16 * 1024, greeting: 'hi' });
    expect(section.of(loadConfig({ SWITCHBOARD_MESSAGES_PER_SEC: '50' }, {}, 'all', [section])).messagesPerSec).toBe(50);
    expect(section.of(loadConfig({ SWITCHBOARD_MESSAGES_PER_SEC: '50', DEMO_MESSAGES_PER_SEC: '9' }, {}, 'all', [section])).messagesPerSec).toBe(9);
    expect(section.of(loadConfig({}, { messagesPerSec: 40 }, 'all', [section])).messagesPerSec).toBe(40);
    expect(section.of(loadConfig({}, { sections: { demo: { greeting: 'yo' } } }, 'all', [section])).greeting).toBe('yo');
  });

  it('a configuration loaded without the section still answers it, from defaults and core values', () => {
    expect(section.of(loadConfig({ SWITCHBOARD_MAX_MESSAGE_BYTES: '2048' }))).toEqual({ messagesPerSec: 7, maxMessageBytes: 2048, greeting: 'hi' });
  });

  it('lists bad section values with the core ones, at start-up', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'x', DEMO_MESSAGES_PER_SEC: '0', DEMO_GREETING: '' }, {}, 'all', [section]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).problems.join('\n');
    expect(text).toContain('PORT');
    expect(text).toContain('DEMO_MESSAGES_PER_SEC');
    // An empty value counts as unset, like every option.
    expect(text).not.toContain('DEMO_GREETING');
  });

  it('documents each section under its own heading, with its fallbacks', () => {
    const md = renderConfigMarkdown([section]);
    expect(md).toContain('## Core');
    expect(md).toContain('## Dialect demo');
    expect(md).toMatch(/\| `demo.messagesPerSec` \| `DEMO_MESSAGES_PER_SEC` \| integer \| `7` \| .*Falls back to `SWITCHBOARD_MESSAGES_PER_SEC` when that is set/);
    expect(md).toMatch(/\| `demo.maxMessageBytes` \| `DEMO_MAX_MESSAGE_BYTES` \| integer \| `\$SWITCHBOARD_MAX_MESSAGE_BYTES` \|/);
  });
});
