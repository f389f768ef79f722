import type { Identity } from '@switchboard/core';
import type { Group, HubConnection } from './hub.js';
import type { WebSocket } from './uws.js';

/** State every connection carries, whatever its dialect; dialects extend it. */
export interface BaseConn extends HubConnection {
  /** Cluster-unique id (`<nodeId>:<n>`): admission and admin queries use it. */
  readonly connId: string;
  readonly dialect: string;
  /** Set in the `open` handler; valid until `closed`. */
  ws: WebSocket<BaseConn>;
  closed: boolean;
  readonly subs: Map<string, Group>;
  readonly ip: string;
  readonly openedAtMs: number;
  identity: Identity | null;
  /** Whether admission counted this connection (and must release it on close). */
  admitted: boolean;
  /** The session this connection belongs to, once authenticated. */
  sessionId: string | null;
}

/** The connections of this node, for sweeps (auth timeout, slow consumers) and drain. */
export class ConnectionRegistry {
  readonly all = new Set<BaseConn>();
  /** Connections still waiting for auth, by deadline. */
  readonly unauthenticated = new Map<BaseConn, number>();
  private seq = 0;

  constructor(readonly nodeId: string) {}

  /** A new cluster-unique connection id. */
  nextId(): string {
    return `${this.nodeId}:${(++this.seq).toString(36)}`;
  }
}
