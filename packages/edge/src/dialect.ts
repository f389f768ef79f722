/**
 * The dialect seam: what a WebSocket API served by an edge is made of. A dialect is one folder
 * (`dialects/<name>/`) exporting one {@link DialectDefinition}; the registry (`dialects/index.ts`) lists
 * them and the server mounts whatever it holds, knowing no dialect by name. Everything every dialect needs
 * (listeners, the in-order request queue, rate and size limits, the session gate, keep-alive ticks,
 * sweeps, fan-out) is shared; a dialect brings its routes, limits, codec and request handling.
 */
import type { AuthzReason, CloseCodeName, Config, ErrorCode, Identity, Logger, PublishRequest, StreamPosition } from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import type { SessionApi, TokenVerifier } from '@switchboard/session';
import type { ObjectStore, ObjectStoreOptions } from '@switchboard/store';
import type { Counter } from 'prom-client';
import type { ChannelAdmin } from './channel-admin.js';
import type { ClusterControl } from './cluster.js';
import type { Conn, ConnectionRegistry } from './conn.js';
import type { DialectConfigSection, DialectLimits } from './dialect-config.js';
import type { GroupSpec, Hub, Renderer } from './hub.js';
import type { EdgeMetrics } from './metrics.js';
import type { SessionGate } from './session-gate.js';
import type { SubscriptionCaps } from './subscription-quota.js';
import type { SystemSampler } from './system-stats.js';

/** A route of a dialect: relative to its prefix on the main port, to `/` on its own port. */
export interface DialectRoute {
  /** `/`, `/telemetry`, `/:ghostId` (uWS patterns: `:name` is one path segment). */
  readonly path: string;
  /** Where it is served: both listeners (default), only the main port, or only the dialect's own port. */
  readonly on?: 'both' | 'main' | 'own';
}

/**
 * Subprotocol negotiation: the server answers with the first protocol the client offers that the dialect
 * accepts, or with none. `required` refuses an upgrade that offers none of them (before `res.upgrade`).
 */
export interface SubprotocolPolicy {
  readonly accept: readonly string[];
  readonly required: boolean;
}

/** Which listener a connection came through. */
export interface ListenerInfo {
  /** `main` (every dialect under its prefix) or the dialect's own port. */
  readonly kind: 'main' | 'own';
  readonly port: number;
}

/** An upgrade request as a dialect sees it: everything copied out of uWS's request synchronously. */
export interface UpgradeRequest {
  readonly url: string;
  /** The route as the dialect declared it (`/`, `/:ghostId`, …). */
  readonly route: string;
  /** Values of the route's `:name` segments (URL-decoded). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Request headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly ip: string;
  readonly listener: ListenerInfo;
  /** The subprotocol the server will answer with ('' for none). */
  readonly protocol: string;
}

/** What a dialect decides about an upgrade. */
export type UpgradeDecision<S> =
  | {
      readonly accept: true;
      readonly state: S;
      /** An identity established at upgrade (a token in the query string or `Authorization`). */
      readonly identity?: Identity;
    }
  | {
      readonly accept: false;
      /** HTTP status, e.g. 401, 403, 400. */
      readonly status: number;
      readonly message: string;
    };

/** A frame that passed the shared limits: text as a string, binary as a copied Buffer. */
export type Frame = { readonly binary: false; readonly text: string } | { readonly binary: true; readonly data: Buffer };

/** A request the shared limits refused; the dialect answers it in its own error form. */
export interface Refusal {
  readonly code: Extract<ErrorCode, 'rate_limited' | 'message_too_large' | 'internal_error' | 'unavailable'>;
  readonly message: string;
  /**
   * The first bytes (at most {@link REFUSAL_HEAD_BYTES}) of the refused text frame, decoded, so a dialect
   * can name the request it answers (a command name, a request id); absent for binary frames and for
   * internal errors.
   */
  readonly head?: string;
}

/** How much of a refused text frame {@link Refusal.head} carries. */
export const REFUSAL_HEAD_BYTES = 256;

/**
 * What a backend publishes to a dialect (`POST /api/publish` with `dialect`), normalised: the channel as
 * the bus names it within the tenant (`<dialect>:<tenant>:<name>` is built by the edge) and the payload as
 * JSON text ready for the dialect's renderers.
 */
export type NormalizedPublish =
  | { readonly ok: true; readonly name: string; readonly attrs: Readonly<Record<string, string | number | boolean>>; readonly data: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/**
 * What a publish's attrs can reach, judged by the dialect's filters before anything is sent (the CLI asks
 * it): `errors` no subscriber can ever match, `warnings` values that look like mistakes.
 */
export interface PublishAttrCheck {
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

/** Per-dialect metrics children (label `dialect` bound), so dialects record without label lookups. */
export interface DialectMetrics {
  readonly messagesIn: Counter.Internal;
  readonly messagesOut: Counter.Internal;
  /** Error replies by registered code. */
  error(code: ErrorCode): void;
  /** Requests refused by a rate or connection limit, by rule. */
  rateLimited(rule: string): void;
}

/** What the edge hands a dialect when it creates it. */
export interface DialectContext {
  readonly name: string;
  readonly config: Config;
  readonly limits: DialectLimits;
  readonly hub: Hub;
  readonly session: SessionApi;
  readonly verifier: TokenVerifier;
  readonly gate: SessionGate;
  readonly metrics: DialectMetrics;
  readonly edgeMetrics: EdgeMetrics;
  readonly logger: Logger;
  readonly conns: ConnectionRegistry;
  /** The edges' control plane: cluster-wide closes by index key, questions every live edge answers. */
  readonly cluster: ClusterControl;
  /** The cluster-wide channel view: subscribers per channel and edge, connections per edge (admin queries). */
  readonly admin: ChannelAdmin;
  readonly sampler: SystemSampler;
  /**
   * Reads a channel's position and history on the bus without subscribing (OISP finds where a device's
   * missed actuations start before it subscribes with `recover`).
   */
  readonly busReader: Pick<Bus, 'position' | 'history'>;
  /**
   * Opens an object store for this dialect's types (DESIGN §2 `ObjectStore`) on the node's backend
   * (memory or Redis); call it from `start`. Rejects when the edge was built without stores.
   */
  openStore(options: ObjectStoreOptions): Promise<ObjectStore>;
  /** Closes a connection with a registered close code (runs its close handler synchronously). */
  close(conn: Conn, reason: CloseCodeName): void;
  /**
   * Publishes messages its clients send to the bus (in order, pipelined), counted in
   * `switchboard_published_total{source=<dialect>}`; rejects when the bus is unavailable.
   */
  publish(reqs: readonly PublishRequest[]): Promise<StreamPosition[]>;
  /** Sends one frame to a connection, corked; nothing when it is closed. Counts `messagesOut`. */
  send(conn: Conn, frame: string | Uint8Array): void;
  /**
   * Takes `n` tokens of the connection's message rate limit (a batch pays per message). False when it is
   * over the limit: the strike is counted, and a connection that keeps flooding is closed with 4029.
   */
  takeRate(conn: Conn, n: number): boolean;
  /**
   * Whether the connection may subscribe to its dialect's channel `name` under the channel policy (by its
   * roles); a refusal is counted (`reason="role"`) and answered by the dialect with its `forbidden` error.
   */
  authorize(conn: Conn, name: string): boolean;
  /** Counts a denial the dialect decided itself (e.g. `device`: outside the token's devices claim). */
  denied(reason: AuthzReason): void;
  /**
   * The per-user subscription cap across the cluster (`SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER`): reserve
   * before subscribing, release after unsubscribing; anonymous connections are not counted.
   */
  readonly subscriptions: SubscriptionCaps;
}

/** A dialect on one edge: its request handling and renderers. `S` is its per-connection state. */
export interface DialectHandler<S> {
  /** Asynchronous set-up before the edge listens (opening its object store, say); a failure stops the start. */
  start?(): Promise<void>;
  /** Decides an upgrade (sync or async); may refuse with an HTTP status before `res.upgrade`. */
  upgrade(req: UpgradeRequest): UpgradeDecision<S> | Promise<UpgradeDecision<S>>;
  /** The socket is open (a dialect that speaks first sends here). */
  open?(conn: Conn<S>): void;
  /**
   * A frame that passed the shared limits. Returning a promise holds later frames of the connection until
   * it settles: requests are handled in order.
   */
  message(conn: Conn<S>, frame: Frame): Promise<void> | undefined;
  /** Answers a frame the shared limits refused, in the dialect's own error form. */
  refuse(conn: Conn<S>, refusal: Refusal): void;
  /** The connection closed (the shared parts — hub, admission, session — are already released). */
  close?(conn: Conn<S>): void;
  /** The renderer of a subscriber group's update frames. */
  renderer(spec: GroupSpec): Renderer;
  /** Normalises a backend publish to this dialect; absent when backends cannot publish to it. */
  normalizePublish?(name: string, attrs: Readonly<Record<string, string | number | boolean>>, data: unknown): NormalizedPublish;
}

/** A dialect as the registry lists it. */
export interface DialectDefinition<S = unknown> {
  /** In channel names, metric labels and config env prefixes (`VALTRONICS_…`). */
  readonly name: string;
  /** Where its routes live on the main port, e.g. `/ws`, `/fleetfreedom`. */
  readonly prefix: string;
  readonly routes: readonly DialectRoute[];
  readonly subprotocols?: SubprotocolPolicy;
  /** Its options: the standard limits (see `dialectSection`) and its own. */
  readonly config: DialectConfigSection;
  /** A frame every connection receives every `intervalMs` (one publish per tick for all connections). */
  readonly keepalive?: { readonly frame: string; readonly intervalMs: number };
  /** Checks the attrs of a backend publish to channel `name` against what its filters match (no handler needed). */
  checkPublishAttrs?(name: string, attrs: Readonly<Record<string, string | number | boolean>>): PublishAttrCheck;
  create(ctx: DialectContext): DialectHandler<S>;
}

/**
 * Declares a dialect: checks the definition against its own connection state `S` (its handler sees
 * `Conn<S>`), and gives it the registry's element type.
 */
export function defineDialect<S>(def: DialectDefinition<S>): DialectDefinition {
  return def;
}
