/**
 * The test harness around the SDK, the same code in Node and in Chromium: it creates clients by id,
 * subscribes, connects and disconnects them, and records everything they report (updates, recovery
 * events, state changes, errors, auths, token fetches) so that the test, in Node, can read it as
 * plain JSON. In the browser it runs inside the page (bundled by test/page.ts); in Node it is called
 * directly. It imports the SDK by its package name, i.e. the built `dist` that users get.
 */
import {
  SwitchboardClient,
  type AuthEvent,
  type Channel,
  type ChannelFilters,
  type RecoveryEvent,
  type ServerError,
  type StateChange,
  type WebSocketConstructor,
} from '@switchboard/client';

/** What the environment provides. */
export interface HarnessEnv {
  /** The WebSocket constructor (`ws` in Node); the global one when absent. */
  readonly WebSocket?: WebSocketConstructor;
  /** Mints a token for `sub` valid for `ttl` (the application's backend, in real life). */
  mintToken(sub: string, ttl: string): Promise<string>;
}

/** How to build one client. */
export interface ClientSpec {
  readonly urls: readonly string[];
  readonly user: string;
  /** TTL of minted tokens; default 10m. */
  readonly ttl?: string;
  /** A fixed token instead of the token function. */
  readonly staticToken?: string;
  /** Tokens the token function returns first, before it mints new ones. */
  readonly firstTokens?: readonly string[];
  readonly idlePingMs?: number;
  readonly pongTimeoutMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

/** One delivered update, reduced to what the tests compare. */
export interface Received {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  readonly seq: unknown;
}

/** Everything a client reported. */
export interface Recording {
  readonly updates: Received[];
  readonly recoveries: (RecoveryEvent & { readonly channel: string })[];
  readonly states: (StateChange & { readonly atMs: number })[];
  readonly errors: (ServerError & { readonly where: string })[];
  readonly auths: (AuthEvent & { readonly atMs: number })[];
  readonly subscribed: { readonly channel: string; readonly restored: boolean }[];
  tokenCalls: number;
  duplicatesDropped: number;
}

/** Creates the harness. */
export function createHarness(env: HarnessEnv) {
  const clients = new Map<string, { client: SwitchboardClient; rec: Recording }>();
  const get = (id: string) => {
    const c = clients.get(id);
    if (!c) throw new Error(`no client ${id}`);
    return c;
  };

  return {
    /** Creates (and connects) a client. */
    create(id: string, spec: ClientSpec): void {
      const rec: Recording = {
        updates: [],
        recoveries: [],
        states: [],
        errors: [],
        auths: [],
        subscribed: [],
        tokenCalls: 0,
        duplicatesDropped: 0,
      };
      const queued = [...(spec.firstTokens ?? [])];
      const client = new SwitchboardClient({
        url: spec.urls,
        ...(env.WebSocket ? { WebSocket: env.WebSocket } : {}),
        token:
          spec.staticToken ??
          (() => {
            rec.tokenCalls++;
            return queued.shift() ?? env.mintToken(spec.user, spec.ttl ?? '10m');
          }),
        ...(spec.idlePingMs !== undefined ? { idlePingMs: spec.idlePingMs } : {}),
        ...(spec.pongTimeoutMs !== undefined ? { pongTimeoutMs: spec.pongTimeoutMs } : {}),
        ...(spec.backoffInitialMs !== undefined ? { backoffInitialMs: spec.backoffInitialMs } : {}),
        ...(spec.backoffMaxMs !== undefined ? { backoffMaxMs: spec.backoffMaxMs } : {}),
      });
      client.on('state', (s) => rec.states.push({ ...s, atMs: Date.now() }));
      client.on('error', (e) => rec.errors.push({ ...e, where: 'client' }));
      client.on('auth', (a) => rec.auths.push({ ...a, atMs: Date.now() }));
      clients.set(id, { client, rec });
    },

    /** Subscribes client `id` to a channel and records what the subscription reports. */
    subscribe<C extends Channel>(id: string, channel: C, filters: ChannelFilters[C]): void {
      const { client, rec } = get(id);
      const sub = client.subscribe(channel, filters);
      sub.on('update', (u) => {
        const seq = (u as { seq?: unknown }).seq ?? (u as { telemetry?: { seq?: { value?: unknown } } }).telemetry?.seq?.value;
        rec.updates.push({ channel: u.channel, offset: u.offset, epoch: u.epoch, seq });
        rec.duplicatesDropped = sub.duplicatesDropped;
      });
      sub.on('recovered', (r) => rec.recoveries.push({ ...r, channel }));
      sub.on('subscribed', (s) => rec.subscribed.push({ channel, restored: s.restored }));
      sub.on('error', (e) => rec.errors.push({ ...e, where: channel }));
    },

    unsubscribe(id: string, channel: Channel): void {
      get(id).client.subscription(channel)?.unsubscribe();
    },
    connect(id: string): void {
      get(id).client.connect();
    },
    disconnect(id: string): void {
      get(id).client.disconnect();
    },
    close(id: string): void {
      get(id).client.close();
      clients.delete(id);
    },
    /** A JSON copy of what client `id` reported so far, plus its state. */
    snapshot(id: string): Recording & { state: string; sessionId: string | null } {
      const { client, rec } = get(id);
      return JSON.parse(JSON.stringify({ ...rec, state: client.state, sessionId: client.sessionId })) as Recording & {
        state: string;
        sessionId: string | null;
      };
    },
    closeAll(): void {
      for (const { client } of clients.values()) client.close();
      clients.clear();
    },
  };
}

/** The harness's methods, as the test drives them. */
export type Harness = ReturnType<typeof createHarness>;
