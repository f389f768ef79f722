/**
 * A connection as the edge keeps it, whatever its dialect: the shared parts (identity, tenant, session,
 * limits, the request queue, hub subscriptions) and the dialect's own state.
 */
import { DEFAULT_TENANT, type Identity, type TokenBucket } from '@switchboard/core';
import type { ListenerInfo } from './dialect.js';
import type { Group, HubConnection, TopicPublisher } from './hub.js';
import type { WebSocket } from './uws.js';

/** Rate-limit strikes of a connection within a window. */
export interface Strikes {
  count: number;
  windowStartMs: number;
}

/** One WebSocket connection. `S` is the dialect's own state. */
export interface Conn<S = unknown> extends HubConnection {
  /** Cluster-unique id (`<nodeId>:<n>`): admission and admin queries use it. */
  readonly connId: string;
  readonly dialect: string;
  /** Set in the `open` handler; valid until `closed`. */
  ws: WebSocket<Conn<S>>;
  /** The uWS app the socket belongs to (topics are per app). */
  readonly app: TopicPublisher;
  closed: boolean;
  /** Hub subscriptions by subscription id (the dialect's key: a channel name, a subscription type, a query). */
  readonly subs: Map<string, Group>;
  readonly ip: string;
  readonly openedAtMs: number;
  readonly listener: ListenerInfo;
  identity: Identity | null;
  /** The tenant its channels live in: the identity's, or `default`. */
  tenant: string;
  /** Whether admission counted this connection (and must release it on close). */
  admitted: boolean;
  /** The session this connection belongs to, once authenticated. */
  sessionId: string | null;
  /**
   * When the token the client authenticated with expires (ms; 0: no client token, e.g. a Fleet Freedom
   * session): the connection is closed a little after it unless a fresh token comes first.
   */
  tokenExpMs: number;
  /** Shared limits: the message rate bucket and abuse strikes. */
  readonly bucket: TokenBucket;
  /** Rate-limit strikes in the current window; null until the first (most connections never get one). */
  strikes: Strikes | null;
  /** When the client last sent anything (application-level keep-alive). */
  lastRecvMs: number;
  /** When uWS last reported the send buffer draining (ms; 0: never): evidence that the client reads. */
  drainedAtMs: number;
  /**
   * When the connection was last seen keeping up (ms): a drain, or an empty buffer at a sweep. A reader with a
   * buffer that has not kept up for long enough has stopped reading.
   */
  keptUpAtMs: number;
  /** Work waiting while an asynchronous request runs; null when idle. */
  queue: unknown[] | null;
  readonly state: S;
}

/** The connections of this node, for sweeps (auth deadlines, slow consumers, silence) and drain. */
export class ConnectionRegistry {
  readonly all = new Set<Conn>();
  /** The same connections by dialect (sweeps that concern one dialect only). */
  readonly byDialect = new Map<string, Set<Conn>>();
  /**
   * Connections still waiting for auth, by deadline, one map per dialect: each dialect has one timeout,
   * so each map's insertion order is its deadline order.
   */
  readonly unauthenticated = new Map<string, Map<Conn, number>>();
  /** Open connections by `connId` (the hub's sender exclusion, admin answers). */
  private readonly byConnId = new Map<string, Conn>();
  /**
   * Connections by index key (`oisp:<tenant>/<device>`, …) for cluster-wide closes. A key usually names one
   * connection (a device), held as is; a Set only when several share it. Likewise a connection's keys: one
   * string, or an array. Indexed connections are many and idle, so each costs a Map entry, not a Set.
   */
  private readonly keyed = new Map<string, Conn | Set<Conn>>();
  private readonly keysOf = new Map<Conn, string | string[]>();
  /** Connections still waiting for auth, by client address (the per-address cap at upgrade). */
  private readonly unauthByIp = new Map<string, number>();
  private unauthTotal = 0;
  private seq = 0;

  constructor(readonly nodeId: string) {}

  /** Indexes an open connection under `key` (until it closes). */
  index(conn: Conn, key: string): void {
    if (conn.closed) return;
    const held = this.keyed.get(key);
    if (held === undefined) this.keyed.set(key, conn);
    else if (held instanceof Set) held.add(conn);
    else if (held !== conn) this.keyed.set(key, new Set([held, conn]));
    const keys = this.keysOf.get(conn);
    if (keys === undefined) this.keysOf.set(conn, key);
    else if (typeof keys === 'string') this.keysOf.set(conn, [keys, key]);
    else keys.push(key);
  }

  /** The connections indexed under `key` (a copy: closing them changes the index). */
  byKey(key: string): Conn[] {
    const held = this.keyed.get(key);
    return held === undefined ? [] : held instanceof Set ? [...held] : [held];
  }

  /** The open connection with this `connId` on this node. */
  get(connId: string): Conn | undefined {
    return this.byConnId.get(connId);
  }

  /** A new cluster-unique connection id. */
  nextId(): string {
    return `${this.nodeId}:${(++this.seq).toString(36)}`;
  }

  /** Registers an open connection; `authDeadlineMs` 0 means it needs no authentication in time. */
  add(conn: Conn, authDeadlineMs: number): void {
    this.all.add(conn);
    this.byConnId.set(conn.connId, conn);
    let set = this.byDialect.get(conn.dialect);
    if (!set) this.byDialect.set(conn.dialect, (set = new Set()));
    set.add(conn);
    if (authDeadlineMs > 0 && !conn.identity) {
      let pending = this.unauthenticated.get(conn.dialect);
      if (!pending) this.unauthenticated.set(conn.dialect, (pending = new Map<Conn, number>()));
      pending.set(conn, authDeadlineMs);
      this.unauthTotal++;
      this.unauthByIp.set(conn.ip, (this.unauthByIp.get(conn.ip) ?? 0) + 1);
    }
  }

  /** Connections waiting for auth: on this node, and from `ip`. */
  unauthenticatedCount(ip: string): { readonly total: number; readonly fromIp: number } {
    return { total: this.unauthTotal, fromIp: this.unauthByIp.get(ip) ?? 0 };
  }

  /** Takes a connection out of the waiting-for-auth counts (authenticated, timed out or closed). */
  private settled(conn: Conn): void {
    const pending = this.unauthenticated.get(conn.dialect);
    if (!pending?.delete(conn)) return;
    this.unauthTotal--;
    const n = (this.unauthByIp.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.unauthByIp.delete(conn.ip);
    else this.unauthByIp.set(conn.ip, n);
  }

  /** Forgets a closed connection. */
  remove(conn: Conn): void {
    this.all.delete(conn);
    this.byConnId.delete(conn.connId);
    const keys = this.keysOf.get(conn);
    if (keys !== undefined) {
      this.keysOf.delete(conn);
      if (typeof keys === 'string') this.unindex(conn, keys);
      else for (const k of keys) this.unindex(conn, k);
    }
    this.byDialect.get(conn.dialect)?.delete(conn);
    this.settled(conn);
  }

  private unindex(conn: Conn, key: string): void {
    const held = this.keyed.get(key);
    if (held === conn) this.keyed.delete(key);
    else if (held instanceof Set) {
      held.delete(conn);
      if (held.size === 1) this.keyed.set(key, held.values().next().value!);
    }
  }

  /** The connection authenticated: it no longer has a deadline. */
  authenticated(conn: Conn): void {
    this.settled(conn);
  }

  /** The auth deadline passed (the sweep closes it). */
  timedOut(conn: Conn): void {
    this.settled(conn);
  }
}

/** Sets a connection's identity and the tenant that follows from it. */
export function setIdentity(conn: Conn, identity: Identity): void {
  conn.identity = identity;
  conn.tenant = identity.tenant ?? DEFAULT_TENANT;
}
