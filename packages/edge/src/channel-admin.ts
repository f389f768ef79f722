/**
 * The cluster-wide view of channels, for admin queries: per channel its subscribers and the edges they are
 * on, per edge its connections by dialect, and (on request) the subscribers themselves. It is gathered on
 * demand: an admin query asks every live edge over the control plane (`ClusterControl.ask`), each answers
 * from its own connections, and the asker merges what arrived before the deadline. Nothing is written per
 * subscribe, unsubscribe or message; an edge that is gone is simply not in the answers (and named
 * `missing` while the others still count it as live). docs/architecture.md records why this is on demand
 * rather than kept in Redis, with the measurements.
 *
 * Every query is counted in `switchboard_admin_queries_total{query,outcome}` and timed in
 * `switchboard_admin_query_duration_seconds{query}`; the cluster gauges (`switchboard_cluster_*`) are
 * gathered the same way when `/metrics` is scraped, with the per-channel one limited to the busiest N.
 */
import { LATENCY_BUCKETS_SEC, isPlainObject, splitBusChannel, type Logger } from '@switchboard/core';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ClusterControl } from './cluster.js';
import type { Conn, ConnectionRegistry } from './conn.js';

/** The role a token must carry for channel admin queries (HTTP `/admin/*`, dialect admin ops). */
export const ADMIN_ROLE = 'admin';

/** The question kind on the control plane. */
const ASK_KIND = 'switchboard.channels';

/** What a query looks at. */
export interface ChannelQuery {
  /** Only this tenant's connections and channels; null: every tenant (and node-local channels). */
  readonly tenant: string | null;
  /** Only this dialect's connections and channels; null: every dialect. */
  readonly dialect: string | null;
  /** Only this bus channel; null: every channel. */
  readonly channel: string | null;
  /** How many subscribers to list (0: none, counts only). */
  readonly members: number;
  /** Only bus channels whose name starts with this (the admin page's search); absent or null: all. */
  readonly prefix?: string | null;
}

/** One subscriber of a channel: a (connection, channel) pair. */
export interface ChannelMember {
  readonly channel: string;
  readonly node: string;
  /** The client's address. */
  readonly host: string;
  /** The listener port the connection came through. */
  readonly port: number;
  /** Open and under its dialect's backpressure limit. */
  readonly writable: boolean;
}

/** One channel across the cluster. */
export interface ChannelEntry {
  readonly channel: string;
  /** Connections subscribed to it (a connection counts once per channel). */
  readonly subscribers: number;
  /** Subscribers per edge. */
  readonly nodes: Readonly<Record<string, number>>;
}

/** One edge as it answered. */
export interface NodeEntry {
  readonly node: string;
  /** Open connections by dialect (within the query's tenant and dialect). */
  readonly connections: Readonly<Record<string, number>>;
  readonly channels: number;
  readonly subscriptions: number;
}

/** The merged answer of every edge that answered in time. */
export interface ChannelView {
  /** Busiest first (then by name); complete unless `truncated`. */
  readonly channels: readonly ChannelEntry[];
  /** Distinct channels with subscribers (a lower bound when `truncated`). */
  readonly channelCount: number;
  /** (connection, channel) pairs: exact whatever the caps. */
  readonly subscriptions: number;
  readonly members: readonly ChannelMember[];
  /** Subscribers there are to list: exact; `members` holds at most the query's `members` of them. */
  readonly memberCount: number;
  readonly nodes: readonly NodeEntry[];
  /** Edges counted as live that did not answer before the deadline. */
  readonly missing: readonly string[];
  /** An edge had more channels than `SWITCHBOARD_ADMIN_MAX_CHANNELS`: `channels` is incomplete. */
  readonly truncated: boolean;
}

/** One edge's answer, as it travels on the bus (arrays, not objects: compact and no key injection). */
interface LocalAnswer {
  readonly connections: Record<string, number>;
  /** [channel, subscribers], busiest first, at most `maxChannels`. */
  readonly channels: [string, number][];
  readonly channelCount: number;
  readonly subscriptions: number;
  /** [channel, host, port, writable 0|1]. */
  readonly members: [string, string, number, number][];
  readonly memberCount: number;
}

/** Outcomes of an admin query (a bounded label). */
export type AdminOutcome = 'ok' | 'partial' | 'not_found' | 'invalid' | 'unauthorized' | 'forbidden' | 'rate_limited' | 'error';

/** The admin query metrics. */
export class AdminMetrics {
  readonly queries: Counter<'query' | 'outcome'>;
  readonly duration: Histogram<'query'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.queries = new Counter({
      name: 'switchboard_admin_queries_total',
      help: 'Channel admin queries answered by this edge (HTTP /admin, dialect admin ops, cluster gauges), by query and outcome (ok, partial: an edge did not answer in time, not_found, invalid, unauthorized, forbidden, rate_limited, error).',
      labelNames: ['query', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'switchboard_admin_query_duration_seconds',
      help: 'Time to answer a channel admin query (asking every live edge and merging), by query.',
      labelNames: ['query'],
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    });
  }

  /** Makes a query's series exist from the start (a dashboard shows 0 rather than no data). */
  declare(query: string): void {
    this.queries.inc({ query, outcome: 'ok' }, 0);
    this.duration.zero({ query });
  }

  /** Counts one query. */
  count(query: string, outcome: AdminOutcome, startedMs?: number): void {
    this.queries.inc({ query, outcome });
    if (startedMs !== undefined) this.duration.observe({ query }, (performance.now() - startedMs) / 1000);
  }
}

/** What {@link ChannelAdmin} needs. */
export interface ChannelAdminOptions {
  readonly nodeId: string;
  readonly cluster: ClusterControl;
  readonly conns: ConnectionRegistry;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly deadlineMs: number;
  /** Most channels and listed subscribers in one edge's answer. */
  readonly maxChannels: number;
  /** Channels in the top-N gauge (0: none). */
  readonly topChannels: number;
  /** A dialect's send-buffer limit: a subscriber over it is not `writable`. */
  backpressureLimit(dialect: string): number;
}

/** The cluster-wide channel view of one edge: answers other edges' questions and asks its own. */
export class ChannelAdmin {
  readonly metrics: AdminMetrics;
  private readonly log: Logger;
  /** Identical queries in flight share one round of questions (a flood costs one). */
  private readonly inFlight = new Map<string, Promise<ChannelView>>();
  private gauges: Promise<void> | null = null;

  constructor(private readonly o: ChannelAdminOptions) {
    this.log = o.logger.child({ component: 'channel-admin' });
    this.metrics = new AdminMetrics(o.registry);
    o.cluster.onAsk(ASK_KIND, (payload) => this.answer(payload));
    this.registerGauges(o.registry);
  }

  /**
   * Asks every live edge and merges the answers; resolves by the deadline whatever happens to the edges.
   * Counts the query under `query` (a constant of the caller: the label stays bounded).
   */
  async view(q: ChannelQuery, query: string): Promise<ChannelView> {
    const started = performance.now();
    try {
      const v = await this.gather(q);
      this.metrics.count(query, v.missing.length > 0 ? 'partial' : 'ok', started);
      return v;
    } catch (err) {
      this.metrics.count(query, 'error', started);
      throw err;
    }
  }

  /** The merged view without counting it (the caller counts). */
  gather(q: ChannelQuery): Promise<ChannelView> {
    const key = JSON.stringify([q.tenant, q.dialect, q.channel, q.members, q.prefix ?? null]);
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.ask(q).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    return p;
  }

  private async ask(q: ChannelQuery): Promise<ChannelView> {
    const res = await this.o.cluster.ask<unknown>(ASK_KIND, q, this.o.deadlineMs);
    const answers: { node: string; a: LocalAnswer }[] = [];
    const missing = [...res.missing];
    for (const { node, result } of res.answers) {
      const a = readAnswer(result);
      if (a) answers.push({ node, a });
      else {
        this.log.warn({ node }, 'unreadable channel admin answer ignored');
        missing.push(node);
      }
    }
    return merge(answers, missing, q.members, this.o.maxChannels);
  }

  /** This edge's answer to a question (another edge's or its own). */
  private answer(payload: unknown): LocalAnswer {
    const q = readQuery(payload);
    if (!q) throw new Error('malformed channel admin question');
    return this.local(q);
  }

  /**
   * This edge's connections and subscriptions within the query. O(subscriptions in scope): it reads what
   * the connections hold (`conn.subs`), so there is nothing to keep up to date elsewhere.
   */
  local(q: ChannelQuery): LocalAnswer {
    const conns: Iterable<Conn> = q.dialect === null ? this.o.conns.all : (this.o.conns.byDialect.get(q.dialect) ?? []);
    const connections: Record<string, number> = Object.create(null) as Record<string, number>;
    const counts = new Map<string, number>();
    const members: [string, string, number, number][] = [];
    let memberCount = 0;
    const seen = new Set<string>();
    const prefix = q.prefix ?? null;
    for (const conn of conns) {
      if (conn.closed || (q.tenant !== null && conn.tenant !== q.tenant)) continue;
      connections[conn.dialect] = (connections[conn.dialect] ?? 0) + 1;
      if (conn.subs.size === 0) continue;
      seen.clear();
      let writable: number | null = null;
      for (const group of conn.subs.values()) {
        const channel = group.spec.channel;
        if (seen.has(channel)) continue;
        seen.add(channel);
        if (q.channel !== null ? channel !== q.channel : q.tenant !== null && splitBusChannel(channel)?.tenant !== q.tenant) continue;
        if (prefix !== null && !channel.startsWith(prefix)) continue;
        counts.set(channel, (counts.get(channel) ?? 0) + 1);
        memberCount++;
        if (members.length < Math.min(q.members, this.o.maxChannels)) {
          writable ??= this.writable(conn) ? 1 : 0;
          members.push([channel, conn.ip, conn.listener.port, writable]);
        }
      }
    }
    let subscriptions = 0;
    for (const n of counts.values()) subscriptions += n;
    const channels = [...counts].sort(busiestFirst).slice(0, this.o.maxChannels);
    return { connections, channels, channelCount: counts.size, subscriptions, members, memberCount };
  }

  private writable(conn: Conn): boolean {
    if (conn.closed) return false;
    return conn.ws.getBufferedAmount() < this.o.backpressureLimit(conn.dialect);
  }

  /**
   * Cluster gauges, gathered when `/metrics` is scraped (one round of questions per scrape, shared by the
   * gauges). Each edge reports the whole cluster as it sees it: aggregate with `max`, not `sum`.
   */
  private registerGauges(registry: Registry): void {
    const registers = [registry];
    const refresh = () => this.refreshGauges();
    const nodes = new Gauge({
      name: 'switchboard_cluster_nodes',
      help: 'Edges that answered the cluster-wide channel view gathered at this scrape (aggregate across edges with max).',
      registers,
      collect: refresh,
    });
    const missing = new Gauge({
      name: 'switchboard_cluster_nodes_missing',
      help: 'Edges counted as live that did not answer the channel view before the deadline, at this scrape.',
      registers,
      collect: refresh,
    });
    const connections = new Gauge({
      name: 'switchboard_cluster_connections',
      help: 'Open connections across the cluster by dialect, as gathered at this scrape (aggregate with max).',
      labelNames: ['dialect'],
      registers,
      collect: refresh,
    });
    const channels = new Gauge({
      name: 'switchboard_cluster_channels',
      help: 'Channels with subscribers across the cluster, as gathered at this scrape (aggregate with max).',
      registers,
      collect: refresh,
    });
    const subscriptions = new Gauge({
      name: 'switchboard_cluster_subscriptions',
      help: '(connection, channel) subscriptions across the cluster, as gathered at this scrape (aggregate with max).',
      registers,
      collect: refresh,
    });
    const top = new Gauge({
      name: 'switchboard_cluster_top_channel_subscribers',
      help: 'Subscribers of the busiest channels across the cluster (SWITCHBOARD_ADMIN_TOP_CHANNELS of them, so the series stay bounded).',
      labelNames: ['channel'],
      registers,
      collect: refresh,
    });
    this.setGauges = (v) => {
      nodes.set(v.nodes.length);
      missing.set(v.missing.length);
      connections.reset();
      const byDialect = new Map<string, number>();
      for (const n of v.nodes) for (const [d, c] of Object.entries(n.connections)) byDialect.set(d, (byDialect.get(d) ?? 0) + c);
      for (const [d, c] of byDialect) connections.set({ dialect: d }, c);
      channels.set(v.channelCount);
      subscriptions.set(v.subscriptions);
      top.reset();
      for (const c of v.channels.slice(0, this.o.topChannels)) top.set({ channel: c.channel }, c.subscribers);
    };
  }

  private setGauges: (v: ChannelView) => void = () => undefined;

  private refreshGauges(): Promise<void> {
    // The six gauges collect concurrently within one scrape: they share this round.
    this.gauges ??= this.view({ tenant: null, dialect: null, channel: null, members: 0 }, 'cluster_gauges')
      .then(
        (v) => this.setGauges(v),
        (err: unknown) => this.log.warn({ err }, 'cluster gauges not refreshed (previous values kept)'),
      )
      .finally(() => {
        this.gauges = null;
      });
    return this.gauges;
  }
}

function busiestFirst(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** A question off the bus, checked (only edges publish there, but a bad one must not throw later). */
function readQuery(p: unknown): ChannelQuery | null {
  if (!isPlainObject(p)) return null;
  const { tenant, dialect, channel, members, prefix } = p;
  const str = (v: unknown): v is string | null => v === null || typeof v === 'string';
  if (!str(tenant) || !str(dialect) || !str(channel) || !isCount(members) || (prefix !== undefined && !str(prefix))) return null;
  return { tenant, dialect, channel, members, prefix: prefix ?? null };
}

/** An answer off the bus, checked. */
function readAnswer(r: unknown): LocalAnswer | null {
  if (!isPlainObject(r) || !isPlainObject(r.connections) || !Array.isArray(r.channels) || !Array.isArray(r.members)) return null;
  if (!isCount(r.channelCount) || !isCount(r.subscriptions) || !isCount(r.memberCount)) return null;
  const connections: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [d, n] of Object.entries(r.connections)) {
    if (!isCount(n)) return null;
    connections[d] = n;
  }
  for (const c of r.channels as unknown[]) if (!Array.isArray(c) || typeof c[0] !== 'string' || !isCount(c[1])) return null;
  for (const m of r.members as unknown[])
    if (!Array.isArray(m) || typeof m[0] !== 'string' || typeof m[1] !== 'string' || !isCount(m[2]) || (m[3] !== 0 && m[3] !== 1)) return null;
  return {
    connections,
    channels: r.channels as [string, number][],
    channelCount: r.channelCount,
    subscriptions: r.subscriptions,
    members: r.members as [string, string, number, number][],
    memberCount: r.memberCount,
  };
}

/** The same record with its keys in name order (answers arrive in any order; output should not vary). */
function byName(nodes: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const k of Object.keys(nodes).sort()) out[k] = nodes[k]!;
  return out;
}

/** Merges the edges' answers into the cluster view. */
function merge(answers: readonly { node: string; a: LocalAnswer }[], missing: string[], maxMembers: number, maxChannels: number): ChannelView {
  const byChannel = new Map<string, { subscribers: number; nodes: Record<string, number> }>();
  const members: ChannelMember[] = [];
  const nodes: NodeEntry[] = [];
  let subscriptions = 0;
  let memberCount = 0;
  let truncated = false;
  for (const { node, a } of answers) {
    nodes.push({ node, connections: a.connections, channels: a.channelCount, subscriptions: a.subscriptions });
    subscriptions += a.subscriptions;
    memberCount += a.memberCount;
    if (a.channels.length < a.channelCount) truncated = true;
    for (const [channel, n] of a.channels) {
      let e = byChannel.get(channel);
      if (!e) byChannel.set(channel, (e = { subscribers: 0, nodes: Object.create(null) as Record<string, number> }));
      e.subscribers += n;
      e.nodes[node] = n;
    }
    for (const [channel, host, port, writable] of a.members) {
      if (members.length >= maxMembers) break;
      members.push({ channel, node, host, port, writable: writable === 1 });
    }
  }
  const channels = [...byChannel]
    .map(([channel, e]) => ({ channel, subscribers: e.subscribers, nodes: byName(e.nodes) }))
    .sort((x, y) => y.subscribers - x.subscribers || (x.channel < y.channel ? -1 : x.channel > y.channel ? 1 : 0));
  if (channels.length > maxChannels) truncated = true;
  nodes.sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
  return {
    channels: channels.slice(0, maxChannels),
    channelCount: channels.length,
    subscriptions,
    members,
    memberCount,
    nodes,
    missing: missing.sort(),
    truncated,
  };
}
