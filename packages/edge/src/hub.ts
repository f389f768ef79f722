/**
 * The fan-out hot path. Subscribers are grouped by (dialect, channel, filter, projection, frequency);
 * every group with more than one member is one uWS topic. A bus message is matched and rendered once
 * per group and handed to `app.publish`, so the loop over subscribers runs in native code: JS work per
 * message is O(groups), never O(subscribers). A group's only member gets the frame by `ws.send` instead
 * (no topic: a quiet node holds many one-subscriber channels) until a second joins. Nothing here
 * allocates a closure, spreads, stringifies or logs per subscriber, and metrics are recorded once per batch.
 */
import {
  SwitchboardError,
  wallClockMs,
  type Attrs,
  type Envelope,
  type Filter,
  type Logger,
  type StreamPosition,
} from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import type { EdgeMetrics } from './metrics.js';

/** A wire frame: text, or binary for dialects that speak it. */
export type Frame = string | Uint8Array;

/** What the hub needs of a uWS app (topics are per app: a node with several listeners has several). */
export interface TopicPublisher {
  publish(topic: string, message: Frame, isBinary?: boolean, compress?: boolean): boolean;
}

/** What the hub needs of a uWS socket. */
export interface HubSocket {
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  send(message: Frame, isBinary?: boolean, compress?: boolean): number;
  cork(cb: () => void): unknown;
  /** Bytes waiting in the socket's send buffer (uWS). */
  getBufferedAmount(): number;
  /** Publishes to a topic of the socket's app, skipping this socket (uWS `ws.publish`). */
  publish?(topic: string, message: Frame, isBinary?: boolean, compress?: boolean): boolean;
}

/** The hub's view of a connection: its socket, its app, and its subscriptions by subscription id. */
export interface HubConnection {
  readonly ws: HubSocket;
  readonly app: TopicPublisher;
  closed: boolean;
  readonly subs: Map<string, Group>;
}

/**
 * Renders one envelope into a wire frame for one render slot (dialect, channel, projection, context), or
 * null when the message means nothing to the slot's groups (a live query's event about an object that
 * was never in its result set): nothing is sent to them for it.
 */
export type Renderer = (env: Envelope) => Frame | null;

/**
 * Attribute naming the connection (`connId`) that sent a message: every other member of a group gets it,
 * the sender does not. A publish API attr cannot start with `~`, so only the edge sets it.
 */
export const SENDER_ATTR = '~from';

/** Makes the renderer of a group's frames (called when a render slot is created, never per message). */
export type RendererFactory = (spec: GroupSpec) => Renderer;

/** What a subscription asks of the hub. */
export interface GroupSpec {
  readonly dialect: string;
  readonly channel: string;
  readonly filter: Filter;
  readonly projection: readonly string[] | null;
  /** 0: real-time. Otherwise conflate: latest message per `conflateBy` value, flushed every interval. */
  readonly frequencyMs: number;
  /** Attribute that keys conflation (e.g. `device_id`); null conflates everything to the latest message. */
  readonly conflateBy: string | null;
  /**
   * What the renderer needs beyond channel and projection (e.g. the subscription type a frame is named
   * after, or the request it answers). Groups with different keys never share frames or topics.
   */
  readonly render?: { readonly key: string; readonly context: unknown };
}

/** What a subscribe achieved, handed to the dialect before any replayed message is sent. */
export interface SubscribeOutcome {
  /**
   * The channel's top when the subscription was made (null for node-local channels). Replayed messages
   * (offsets up to it, and any that arrived meanwhile) follow the response, then live ones.
   */
  readonly position: StreamPosition | null;
  /** Present when recovery was asked for. */
  readonly recovered?: boolean;
  /** Messages replayed to this subscriber before live delivery. */
  readonly replayed: number;
}

/**
 * Idle memory: a node holds many quiet channels with one subscriber each (devices, users), so per-channel
 * state allocates nothing it does not use. V8 gives an array its first push room for 17 elements and an
 * empty Map or Set a table of its own, a few hundred bytes per channel in all: what usually holds one
 * thing (a channel's groups, its first open group, a group's members and app) holds it as is, and a list
 * or map only from the second; lists start as shared frozen empties and get an exact-size array with
 * their first element ({@link append}); group and slot keys are channel-scoped and kept only by channels
 * with several groups (one group is compared by its spec), built flat (`join`) when they are.
 */
const NO_GROUPS: Group[] = Object.freeze([]) as unknown as Group[];
const NO_STRINGS: string[] = Object.freeze([]) as unknown as string[];

/** `list` with `x` added: a new one-element array when `list` is empty (never pushes onto a shared empty). */
function append<T>(list: T[], x: T): T[] {
  if (list.length === 0) return [x];
  list.push(x);
  return list;
}

/** `list` without `x` (the same array when it held more; a shared empty when `x` was the last). */
function remove<T>(list: T[], x: T, empty: T[]): T[] {
  const i = list.indexOf(x);
  if (i < 0) return list;
  if (list.length === 1) return empty;
  list.splice(i, 1);
  return list;
}

/**
 * A frame cache shared by every group with the same (dialect, channel, projection): groups that differ
 * only in their filter render a message once between them.
 */
class RenderSlot {
  private env: Envelope | null = null;
  private frame: Frame | null = '';
  /** Whether the last frame is binary (decided by the renderer's output, once per render). */
  binary = false;
  refs = 0;

  constructor(readonly render: Renderer) {}

  frameFor(env: Envelope): Frame | null {
    if (this.env !== env) {
      this.frame = this.render(env);
      this.binary = this.frame !== null && typeof this.frame !== 'string';
      this.env = env;
    }
    return this.frame;
  }
}

let nextGroupId = 0;

/** Members of a group on apps other than its first (rare: a node with several listeners). */
interface OtherApps {
  readonly apps: TopicPublisher[];
  /** Members per entry of {@link apps} (parallel arrays). */
  readonly counts: number[];
}

/** A group's filter, as the hot path reads it. */
interface GroupFilter {
  /** Attribute name and accepted values (as strings). */
  readonly matchers: readonly (readonly [string, ReadonlySet<string>])[];
  /**
   * The attribute the channel indexes the group by: the one with the fewest accepted values (the most
   * selective; ties by name).
   */
  readonly keyAttr: string;
  /** The accepted values of {@link keyAttr} (distinct). */
  readonly keyValues: ReadonlySet<string>;
}

/** Subscribers of one (dialect, channel, filter, projection, frequency): one uWS topic from its second member. */
export class Group {
  readonly topic: string;
  size = 0;
  /** Null for a group without a filter (one field, not three, on every unfiltered group). */
  readonly filter: GroupFilter | null;
  /** Conflation buffer, keyed by the `conflateBy` attribute. */
  pending: Map<string, Envelope> | null = null;
  timer: NodeJS.Timeout | null = null;
  /**
   * The group's connections, used only off the hot path (gap handling, admin queries) and for the sender
   * check: the only one as is (most groups of quiet channels have one), a Set from the second.
   */
  private members: HubConnection | Set<HubConnection> | null = null;
  /**
   * The app its members' sockets belong to (one publish per app per message): fields, not an array, for
   * the usual single app — two arrays per group cost more than the rest of an idle channel's group.
   */
  app: TopicPublisher | null = null;
  /** Members in {@link app}. */
  private appMembers = 0;
  /** Members on further apps; null when all are on {@link app}. */
  otherApps: OtherApps | null = null;
  /**
   * Whether the group delivers through its uWS topic. A group starts without one: its only member gets
   * frames by `ws.send` ({@link direct}), which spares the native topic (hundreds of bytes per idle
   * one-subscriber channel). Its second member moves it to the topic for good (the first member
   * subscribes to it then); conflated and local groups, published by timers, always use it.
   */
  viaTopic = false;
  /** The member frames are sent to while the group has no topic; null before it joins (or after it left). */
  direct: HubConnection | null = null;

  constructor(
    readonly spec: GroupSpec,
    readonly slot: RenderSlot,
    readonly channel: ChannelState,
  ) {
    this.topic = `g${(nextGroupId++).toString(36)}`;
    const entries = Object.entries(spec.filter);
    if (entries.length === 0) {
      this.filter = null;
      return;
    }
    const matchers = entries.map(([attr, values]) => [attr, new Set(values)] as const);
    let best = matchers[0]!;
    for (const m of matchers)
      if (m[1].size < best[1].size || (m[1].size === best[1].size && m[0] < best[0])) best = m;
    this.filter = { matchers, keyAttr: best[0], keyValues: best[1] };
  }

  /** Whether `conn` is a member (O(1), allocation-free: the hot path asks it for a message's sender). */
  hasMember(conn: HubConnection): boolean {
    const m = this.members;
    return m === conn || (m instanceof Set && m.has(conn));
  }

  /** Adds a member (the caller counts {@link size}). */
  addMember(conn: HubConnection): void {
    const m = this.members;
    if (m === null) this.members = conn;
    else if (m instanceof Set) m.add(conn);
    else if (m !== conn) this.members = new Set([m, conn]);
  }

  /** Removes a member. */
  removeMember(conn: HubConnection): void {
    const m = this.members;
    if (m === conn) this.members = null;
    else if (m instanceof Set) m.delete(conn);
  }

  /** Appends the members to `out`. */
  collectMembers(out: HubConnection[]): void {
    const m = this.members;
    if (m instanceof Set) for (const c of m) out.push(c);
    else if (m !== null) out.push(m);
  }

  /** Counts a member of `app`; the app is published to from its first member. */
  addApp(app: TopicPublisher): void {
    if (this.app === app) {
      this.appMembers++;
      return;
    }
    if (this.app === null) {
      this.app = app;
      this.appMembers = 1;
      return;
    }
    const o = (this.otherApps ??= { apps: [], counts: [] });
    const i = o.apps.indexOf(app);
    if (i >= 0) o.counts[i]!++;
    else {
      o.apps.push(app);
      o.counts.push(1);
    }
  }

  /** Uncounts a member of `app`; the app is no longer published to after its last member. */
  removeApp(app: TopicPublisher): void {
    if (this.app === app) {
      if (--this.appMembers > 0) return;
      // Another app's members take the first place.
      const o = this.otherApps;
      if (o === null) this.app = null;
      else {
        this.app = o.apps.shift()!;
        this.appMembers = o.counts.shift()!;
        if (o.apps.length === 0) this.otherApps = null;
      }
      return;
    }
    const o = this.otherApps;
    if (o === null) return;
    const i = o.apps.indexOf(app);
    if (i < 0 || --o.counts[i]! > 0) return;
    o.apps.splice(i, 1);
    o.counts.splice(i, 1);
    if (o.apps.length === 0) this.otherApps = null;
  }

  /** Publishes a frame to the group's topic in every app it has members in (null: nothing). */
  publish(frame: Frame | null, binary: boolean): void {
    if (frame === null) return;
    if (this.app !== null) this.app.publish(this.topic, frame, binary, false);
    if (this.otherApps !== null) this.publishToOtherApps(frame, binary);
  }

  /** Publishes a frame to the group's topic in the apps after the first. */
  publishToOtherApps(frame: Frame, binary: boolean): void {
    const apps = this.otherApps!.apps;
    for (let a = 0; a < apps.length; a++) apps[a]!.publish(this.topic, frame, binary, false);
  }

  /** True when the attributes pass every matcher. */
  matches(attrs: Attrs): boolean {
    if (this.filter === null) return true;
    const m = this.filter.matchers;
    for (let i = 0; i < m.length; i++) {
      const [attr, values] = m[i]!;
      const v = attrs[attr];
      if (v === undefined || !values.has(typeof v === 'string' ? v : String(v))) return false;
    }
    return true;
  }
}

interface Recovering {
  readonly buffer: Envelope[];
}
const NO_RECOVERING: Recovering[] = Object.freeze([]) as unknown as Recovering[];
const INTEREST_HELD: Promise<void> = Promise.resolve();

/** A subscriber that has everything up to `at` (replayed) and joins its group's topic after it. */
interface PendingJoin {
  readonly conn: HubConnection;
  readonly group: Group;
  readonly at: StreamPosition;
}

/** A channel's filtered groups by key attribute and value. */
interface ChannelIndex {
  readonly byAttr: Map<string, Map<string, Group[]>>;
  /** The keys of {@link byAttr}, as an array for the hot loop. */
  attrs: string[];
}

/** The groups of a channel that has more than one, by group key, and their render slots by slot key. */
interface ChannelGroups {
  readonly byKey: Map<string, Group>;
  readonly slots: Map<string, RenderSlot>;
}

/**
 * Per-channel state that few channels have, or have for a moment (a subscribe in progress): one field of
 * {@link ChannelState} for all of it.
 */
class ChannelRare {
  /** Subscribes in progress, collecting live messages while they fetch positions or history. */
  recovering: Recovering[] = NO_RECOVERING;
  /** Node-internal readers of the channel (the cluster control plane), null when none. */
  taps: ((env: Envelope) => void)[] | null = null;
  /**
   * Subscribers whose replay reached further than this node has dispatched (its bus reader lags the
   * history they were served from): they join their topics once dispatch passes their position, so
   * nothing up to it reaches them twice. Null when none.
   */
  joins: PendingJoin[] | null = null;
  /** An epoch found to reuse offsets: its messages are never delivered again (see `abandon`). */
  abandoned: string | null = null;
  /** The sample of a node-local channel (its groups publish on timers); null for a bus channel. */
  local: (() => Envelope) | null = null;
}

/** The channel's {@link ChannelRare}, created when first needed. */
function rareOf(ch: ChannelState): ChannelRare {
  return (ch.rare ??= new ChannelRare());
}

/** Drops the channel's {@link ChannelRare} once it holds nothing. */
function settleRare(ch: ChannelState): void {
  const r = ch.rare;
  if (r !== null && r.recovering.length === 0 && r.taps === null && r.joins === null && r.abandoned === null && r.local === null)
    ch.rare = null;
}

/** Per-channel state on this node. */
class ChannelState {
  /**
   * Every group of the channel (lookups, gap handling, stats): the only one as is — most channels have
   * one, and a channel needs no key strings or maps for it — and by key from the second. Dispatch reads
   * {@link solo}, {@link open} and {@link index}.
   */
  groups: Group | ChannelGroups | null = null;
  /** The first group without a filter (every message goes to it); further ones are in {@link open}. */
  solo: Group | null = null;
  /** Groups without a filter after {@link solo}. */
  open: Group[] = NO_GROUPS;
  /**
   * Filtered groups (null when none) indexed by their key attribute and each accepted value of it: a message visits only
   * the groups its own value of that attribute names, so its cost does not grow with the number of
   * groups that do not match (10,000 per-device groups cost one lookup, not 10,000 matches).
   */
  index: ChannelIndex | null = null;
  /** Subscriptions in groups plus subscribes in progress: interest is dropped when it reaches 0. */
  holders = 0;
  interest: Promise<void> | null = null;
  /**
   * Last envelope dispatched (or the baseline position): continuity and duplicate checks, the position of
   * a replaced subscription, and the write id that tells a redelivery from a reused offset.
   */
  last: (StreamPosition & { readonly writeId?: string }) | null = null;
  /** While a gap is being filled from history, live messages of the channel wait here. */
  repair: Envelope[] | null = null;
  /** What few channels have (subscribes in progress, taps, pending joins, …): null when none of it. */
  rare: ChannelRare | null = null;
  /** Whether {@link last} changed since the hub's last `takeMoved()` (the channel is in its moved list). */
  moved = false;

  constructor(
    readonly name: string,
    local: (() => Envelope) | null,
  ) {
    if (local !== null) rareOf(this).local = local;
  }

  /** The sample of a node-local channel; null for a bus channel. */
  get local(): (() => Envelope) | null {
    return this.rare === null ? null : this.rare.local;
  }
}

/** The groups of a channel, as a list (off the hot path). */
function groupsOf(ch: ChannelState): Group[] {
  const held = ch.groups;
  return held === null ? [] : held instanceof Group ? [held] : [...held.byKey.values()];
}

/** What tells a channel's groups apart (channel-scoped: the channel is not part of it). */
function groupKey(spec: GroupSpec): string {
  return [
    spec.dialect,
    filterKey(spec.filter),
    projectionKey(spec),
    spec.frequencyMs,
    spec.conflateBy ?? '',
    spec.render?.key ?? '',
  ].join('|');
}

/** What tells a channel's render slots apart (channel-scoped). */
function slotKey(spec: GroupSpec): string {
  return [spec.dialect, projectionKey(spec), spec.render?.key ?? ''].join('|');
}

function projectionKey(spec: GroupSpec): string {
  return spec.projection ? spec.projection.join(',') : '*';
}

/** Canonical text of a filter: sorted attributes and values. */
function filterKey(filter: Filter): string {
  const attrs = Object.keys(filter).sort();
  if (attrs.length === 0) return '';
  return attrs.map((a) => `${a}=${[...filter[a]!].sort().join(',')};`).join('');
}

/** Options of the {@link Hub}. */
export interface HubOptions {
  readonly bus: Bus;
  readonly renderer: RendererFactory;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  /**
   * Called for each subscriber of a channel whose continuity could not be restored (the gap is older
   * than the history, or the history was reset): the connection must be told, never left with a gap.
   */
  readonly onInsufficientState?: (conn: HubConnection, channel: string) => void;
  /** This node's connection of a `connId` ({@link SENDER_ATTR}); absent: senders are never excluded. */
  readonly connection?: (connId: string) => HubConnection | undefined;
}

/** Attempts to read history before giving up on a gap. */
const REPAIR_ATTEMPTS = 5;

/** The node's fan-out: groups, topics, interest in bus channels, recovery and conflation. */
export class Hub {
  private readonly channels = new Map<string, ChannelState>();
  private groupCount = 0;
  private readonly locals = new Map<string, () => Envelope>();
  private readonly bus: Bus;
  private readonly metrics: EdgeMetrics;
  private readonly log: Logger;
  private subscriptionCount = 0;
  /** Set when anything was published since the last slow-consumer sweep. */
  sentSinceSweep = false;
  /**
   * Payload bytes handed to uWS for all subscribers together since the last slow-consumer sweep (an
   * estimate: data length × deliveries): a flood this large may have filled send buffers, so the sweep
   * comes early.
   */
  bytesSinceSweep = 0;
  /** Set when a topic was published to since the last slow-consumer sweep: any socket may be backlogged. */
  topicSentSinceSweep = false;
  /**
   * Connections whose direct frames left bytes in their send buffer since the last slow-consumer sweep:
   * with only direct sends, the sweep looks at these instead of every connection.
   */
  readonly backlogged = new Set<HubConnection>();
  /** Channels whose position changed since the last {@link takeMoved}. */
  private movedList: ChannelState[] = [];
  /** The socket whose direct frames are queued ({@link sendDirect}), null when none are. */
  private runConn: HubConnection | null = null;
  private readonly runFrames: Frame[] = [];
  private readonly runBinary: boolean[] = [];
  private runLength = 0;

  constructor(private readonly options: HubOptions) {
    this.bus = options.bus;
    this.metrics = options.metrics;
    this.log = options.logger;
    this.bus.onDeliver(this.dispatch);
    this.bus.onGap((gap) => {
      for (const name of gap.channels) {
        const ch = this.channels.get(name);
        if (ch && ch.last !== null && ch.repair === null) this.startRepair(ch, ch.last);
      }
    });
  }

  /**
   * Reads a bus channel inside this node (no sockets): `handler` gets every message published after the
   * returned promise resolves, in order, with the same continuity and gap repair as subscribers. The
   * returned function stops it.
   */
  async tap(channel: string, handler: (env: Envelope) => void): Promise<() => void> {
    const ch = this.channelState(channel, null);
    ch.holders++;
    try {
      await this.ensureInterest(ch);
      if (ch.last === null) {
        ch.last = await this.bus.position(channel);
        this.markMoved(ch);
      }
    } catch (err) {
      ch.holders--;
      this.maybeDropChannel(ch);
      throw err;
    }
    (rareOf(ch).taps ??= []).push(handler);
    return () => {
      const taps = ch.rare?.taps;
      const i = taps?.indexOf(handler) ?? -1;
      if (i < 0) return;
      taps!.splice(i, 1);
      if (taps!.length === 0) {
        ch.rare!.taps = null;
        settleRare(ch);
      }
      ch.holders--;
      this.maybeDropChannel(ch);
    };
  }

  /** Declares a node-local channel whose messages come from `sample` at each group's frequency. */
  registerLocalChannel(channel: string, sample: () => Envelope): void {
    this.locals.set(channel, sample);
  }

  /**
   * Delivers a batch from the bus: per message, per matching group, one render and one `app.publish`.
   * This is the hot path.
   */
  readonly dispatch = (batch: readonly Envelope[]): void => {
    let deliveries = 0;
    let dispatched = 0;
    let bytes = 0;
    const channels = this.channels;
    for (let b = 0; b < batch.length; b++) {
      const env = batch[b]!;
      const ch = channels.get(env.channel);
      if (ch === undefined) continue;
      if (ch.repair !== null) {
        ch.repair.push(env);
        continue;
      }
      const last = ch.last;
      if (last !== null) {
        if (env.epoch === last.epoch) {
          if (env.offset <= last.offset) {
            // A redelivery (a reader resuming after a reconnect, a repair overlapping live delivery) is a
            // message already sent: drop it. A reused offset is a new message — its write id is newer than
            // the last one dispatched — and means the backend lost acknowledged writes (a failover).
            if (
              env.writeId !== undefined &&
              last.writeId !== undefined &&
              compareWriteIds(env.writeId, last.writeId) > 0
            )
              this.abandon(ch, env.epoch, `offset ${env.offset} reused (last dispatched ${last.offset})`);
            continue;
          }
          if (env.offset !== last.offset + 1) {
            this.startRepair(ch, last, env);
            continue;
          }
        } else if (ch.rare !== null && env.epoch === ch.rare.abandoned) {
          continue;
        } else if (env.offset !== 1) {
          // A new epoch that does not start at 1: its beginning is missing.
          this.startRepair(ch, { epoch: env.epoch, offset: 0 }, env);
          continue;
        }
      }
      ch.last = env;
      if (!ch.moved) this.markMoved(ch);
      dispatched++;
      const rare = ch.rare;
      if (rare !== null) {
        if (rare.joins !== null) this.admitJoins(ch, rare, env);
        const rec = rare.recovering;
        for (let r = 0; r < rec.length; r++) rec[r]!.buffer.push(env);
        if (rare.taps !== null) this.runTaps(rare.taps, env);
      }
      const from = env.attrs[SENDER_ATTR];
      const sender = from === undefined ? undefined : this.sender(from);
      const before = deliveries;
      const solo = ch.solo;
      if (solo !== null) deliveries += this.deliver(solo, env, sender);
      const open = ch.open;
      for (let i = 0; i < open.length; i++) deliveries += this.deliver(open[i]!, env, sender);
      const index = ch.index;
      const indexed = index === null ? NO_STRINGS : index.attrs;
      for (let k = 0; k < indexed.length; k++) {
        const attr = indexed[k]!;
        const v = env.attrs[attr];
        if (v === undefined) continue;
        const list = index!.byAttr.get(attr)!.get(typeof v === 'string' ? v : String(v));
        if (list === undefined) continue;
        for (let i = 0; i < list.length; i++) {
          const g = list[i]!;
          // The index matched the key attribute; a group filtering on more checks the rest.
          if (g.filter!.matchers.length > 1 && !g.matches(env.attrs)) continue;
          deliveries += this.deliver(g, env, sender);
        }
      }
      bytes += (deliveries - before) * env.data.length;
    }
    this.flushRun();
    if (dispatched > 0) {
      this.metrics.fanoutMessages.inc(dispatched);
      this.metrics.fanoutLatency.observe(Math.max(0, wallClockMs() - batch[0]!.ts) / 1000);
    }
    if (deliveries > 0) {
      this.metrics.deliveries.inc(deliveries);
      this.sentSinceSweep = true;
      this.bytesSinceSweep += bytes;
    }
  };

  /**
   * Queues a frame for a group's only member. Consecutive frames for one socket are written under one
   * cork (one write, as a topic's would be) when the run ends: at a frame for another socket, before any
   * topic publish, tap or close, and at the end of the batch. Order is exactly that of the calls.
   */
  private sendDirect(conn: HubConnection, frame: Frame, binary: boolean): void {
    if (this.runConn !== conn) {
      this.flushRun();
      this.runConn = conn;
    }
    const n = this.runLength++;
    this.runFrames[n] = frame;
    this.runBinary[n] = binary;
  }

  /**
   * Writes the queued run of direct frames, under a cork even when it is one frame: one write per run, as
   * a topic's drain does it (the many-channels scenario measured the same deliveries/s as with topics).
   * Nothing when no run is queued.
   */
  private flushRun(): void {
    const conn = this.runConn;
    if (conn === null) return;
    if (!conn.closed) {
      conn.ws.cork(this.sendRun);
      // What the kernel did not take now waits in uWS: the slow-consumer sweep looks at this socket.
      if (conn.ws.getBufferedAmount() > 0) this.backlogged.add(conn);
    }
    const frames = this.runFrames;
    for (let i = 0; i < this.runLength; i++) frames[i] = '';
    this.runLength = 0;
    this.runConn = null;
  }

  /** The cork callback of {@link flushRun} (bound once: no closure per run). */
  private readonly sendRun = (): void => {
    const ws = this.runConn!.ws;
    const frames = this.runFrames;
    const binary = this.runBinary;
    for (let i = 0; i < this.runLength; i++) ws.send(frames[i]!, binary[i], false);
  };

  /** Hands one message to one matching group: one render (shared per slot) and one publish per app. */
  private deliver(g: Group, env: Envelope, sender: HubConnection | undefined): number {
    if (g.pending !== null) {
      g.pending.set(conflationKey(g, env), env);
      return 0;
    }
    const slot = g.slot;
    const frame = slot.frameFor(env);
    if (frame === null) return 0;
    if (!g.viaTopic) {
      const m = g.direct;
      if (m === null || m === sender || m.closed) return 0;
      this.sendDirect(m, frame, slot.binary);
      return 1;
    }
    // A topic publish may reach a socket with direct frames waiting: those go first.
    this.flushRun();
    this.topicSentSinceSweep = true;
    if (sender !== undefined && g.hasMember(sender)) {
      this.publishExcept(g, sender, frame, slot.binary);
      return g.size - 1;
    }
    const app = g.app;
    if (app !== null) app.publish(g.topic, frame, slot.binary, false);
    if (g.otherApps !== null) g.publishToOtherApps(frame, slot.binary);
    return g.size;
  }

  /**
   * Subscribes a connection under `subId` (replacing its subscription of that id). `respond` is called
   * synchronously right before replayed messages and live delivery start, so the dialect's response
   * precedes every update. With `recover`, every message after that position is replayed in order
   * (`recovered: true`) or none is (`recovered: false`); either way live delivery follows with no gap
   * and no duplicate.
   */
  async subscribe(
    conn: HubConnection,
    subId: string,
    spec: GroupSpec,
    recover: StreamPosition | null,
    respond: (outcome: SubscribeOutcome) => void,
  ): Promise<void> {
    const local = this.locals.get(spec.channel) ?? null;
    const ch = this.channelState(spec.channel, local);
    // Held for the whole call: replacing the channel's only subscription (another filter, or recovery)
    // leaves the old group before the new one exists, and must not drop the channel's bus interest between.
    ch.holders++;
    try {
      await this.subscribeHeld(ch, local, conn, subId, spec, recover, respond);
    } finally {
      ch.holders--;
      this.maybeDropChannel(ch);
    }
  }

  private async subscribeHeld(
    ch: ChannelState,
    local: (() => Envelope) | null,
    conn: HubConnection,
    subId: string,
    spec: GroupSpec,
    recover: StreamPosition | null,
    respond: (outcome: SubscribeOutcome) => void,
  ): Promise<void> {
    let previous = conn.subs.get(subId);
    if (previous && previous.channel !== ch) {
      // The id moves to another channel: nothing carries over.
      this.leave(conn, subId, true);
      previous = undefined;
    }

    if (local !== null) {
      if (previous) this.leave(conn, subId, true);
      this.commit(conn, subId, ch, spec, [], null, () =>
        respond(
          recover ? { position: null, recovered: false, replayed: 0 } : { position: null, replayed: 0 },
        ),
      );
      return;
    }

    // A filter change on a live channel: switch groups in one step, nothing to fetch.
    if (previous && recover === null && ch.last !== null) {
      const position = ch.last;
      this.leave(conn, subId, true);
      this.commit(conn, subId, ch, spec, [], null, () =>
        respond({ position: { epoch: position.epoch, offset: position.offset }, replayed: 0 }),
      );
      return;
    }
    if (previous && recover !== null) this.leave(conn, subId, true);

    const rec: Recovering = { buffer: [] };
    try {
      await this.ensureInterest(ch);
      const rare = rareOf(ch);
      rare.recovering = append(rare.recovering, rec);
      let base: StreamPosition;
      let replay: Envelope[] = [];
      let recovered: boolean | undefined;
      if (recover !== null) {
        const res = await this.bus.history(spec.channel, recover);
        recovered = res.recovered;
        base = res.position;
        if (res.recovered) replay = res.messages.slice();
        this.metrics.recoveries.inc({ outcome: recovered ? 'recovered' : 'not_recovered' });
      } else {
        base = await this.bus.position(spec.channel);
      }
      if (conn.closed) return;
      const stillPrevious = conn.subs.get(subId);
      if (stillPrevious && stillPrevious.channel !== ch) this.leave(conn, subId, true);
      else if (stillPrevious) {
        // Replacing a subscription whose channel had not dispatched anything yet: the old group already
        // delivered whatever arrived meanwhile, so start right after the newest of the two positions.
        const last = ch.last;
        this.leave(conn, subId, true);
        const position = last ?? base;
        if (ch.last === null) {
          ch.last = base;
          this.markMoved(ch);
        }
        this.commit(conn, subId, ch, spec, [], null, () =>
          respond({ position: { epoch: position.epoch, offset: position.offset }, replayed: 0 }),
        );
        return;
      }
      // Live messages that arrived while we fetched: keep those after the fetched position.
      const top = replay.length > 0 ? replay[replay.length - 1]! : base;
      for (const env of rec.buffer) {
        if (env.epoch !== top.epoch || env.offset > top.offset) replay.push(env);
      }
      if (replay.length > 0) this.metrics.recoveredMessages.inc(replay.length);
      // Continuity checks need a baseline: everything up to here is accounted for.
      if (ch.last === null) {
        ch.last = replay.length > 0 ? replay[replay.length - 1]! : base;
        this.markMoved(ch);
      }
      const position = { epoch: base.epoch, offset: base.offset };
      const upTo = replay.length > 0 ? replay[replay.length - 1]! : base;
      this.commit(conn, subId, ch, spec, replay, { epoch: upTo.epoch, offset: upTo.offset }, (replayed) =>
        respond(recovered === undefined ? { position, replayed } : { position, recovered, replayed }),
      );
    } finally {
      const rare = ch.rare;
      if (rare !== null) {
        rare.recovering = remove(rare.recovering, rec, NO_RECOVERING);
        settleRare(ch);
      }
    }
  }

  /** Removes a connection's subscription `subId`; false when it had none. */
  unsubscribe(conn: HubConnection, subId: string): boolean {
    if (!conn.subs.has(subId)) return false;
    this.leave(conn, subId, !conn.closed);
    return true;
  }

  /** Forgets every subscription of a closed connection (uWS already dropped its topics). */
  removeConnection(conn: HubConnection): void {
    for (const subId of [...conn.subs.keys()]) this.leave(conn, subId, false);
  }

  /** Channels with subscribers on this node and their subscriber counts. */
  channelStats(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, ch] of this.channels) {
      let n = 0;
      for (const g of groupsOf(ch)) n += g.size;
      if (n > 0) out.set(name, n);
    }
    return out;
  }

  /**
   * The positions of the channels whose position changed since the previous call (checkpoints): the cost
   * follows the channels that moved, not every channel held — 100,000 mostly quiet channels are not
   * copied every second.
   */
  takeMoved(): Map<string, StreamPosition> {
    const list = this.movedList;
    this.movedList = [];
    const out = new Map<string, StreamPosition>();
    for (let i = 0; i < list.length; i++) {
      const ch = list[i]!;
      ch.moved = false;
      if (ch.local === null && ch.last !== null && this.channels.get(ch.name) === ch) out.set(ch.name, ch.last);
    }
    return out;
  }

  /**
   * Appends each subscription to `channel` here, as its connection and the connection's subscription id
   * for it (checkpoints: the work follows the channels that moved, not every subscription held).
   */
  subscriptionsOf(channel: string, out: { conn: HubConnection; subId: string }[]): void {
    const ch = this.channels.get(channel);
    if (ch === undefined) return;
    const members: HubConnection[] = [];
    for (const g of groupsOf(ch)) {
      members.length = 0;
      g.collectMembers(members);
      for (const conn of members) for (const [subId, group] of conn.subs) if (group === g) out.push({ conn, subId });
    }
  }

  private markMoved(ch: ChannelState): void {
    if (ch.moved) return;
    ch.moved = true;
    this.movedList.push(ch);
  }

  /** Stops conflation and local-channel timers. */
  close(): void {
    for (const ch of this.channels.values()) for (const g of groupsOf(ch)) if (g.timer) clearInterval(g.timer);
  }

  /**
   * Fills a gap in a channel from its history: live messages wait while the missing ones are fetched,
   * then both are dispatched in order. When the history cannot cover the gap, every subscriber of the
   * channel is handed to `onInsufficientState` instead of being left with a silent gap.
   */
  private startRepair(ch: ChannelState, since: StreamPosition, trigger?: Envelope): void {
    ch.repair = trigger ? [trigger] : [];
    this.repair(ch, since).catch((err: unknown) =>
      this.log.error({ err, channel: ch.name }, 'gap repair failed'),
    );
  }

  private async repair(ch: ChannelState, since: StreamPosition): Promise<void> {
    let recovered: Envelope[] | null = null;
    for (let attempt = 1; attempt <= REPAIR_ATTEMPTS && recovered === null; attempt++) {
      try {
        const res = await this.bus.history(ch.name, since);
        if (!res.recovered) {
          // The channel's top went back within the epoch: the backend lost what this node dispatched.
          if (res.position.epoch === since.epoch && res.position.offset < since.offset) {
            ch.repair = null;
            this.abandon(ch, since.epoch, `top ${res.position.offset} is behind ${since.offset}`);
            return;
          }
          break;
        }
        recovered = res.messages.slice();
      } catch (err) {
        this.log.warn({ err, channel: ch.name, attempt }, 'history unavailable for gap repair');
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
    const waiting = ch.repair ?? [];
    ch.repair = null;
    if (this.channels.get(ch.name) !== ch) return;
    if (recovered !== null) {
      this.metrics.gapRepairs.inc({ outcome: 'repaired' });
      this.log.info({ channel: ch.name, since, replayed: recovered.length }, 'gap repaired from history');
      this.dispatch(recovered.concat(waiting));
      return;
    }
    this.metrics.gapRepairs.inc({ outcome: 'insufficient_state' });
    this.log.warn({ channel: ch.name, since }, 'gap older than the history: subscribers must resubscribe');
    const members: HubConnection[] = [];
    for (const g of groupsOf(ch)) g.collectMembers(members);
    // Continue from what arrives next; those who stay (none, when the edge closes them) see no gap.
    const next = waiting[0];
    ch.last = next ? { epoch: next.epoch, offset: next.offset - 1 } : null;
    this.markMoved(ch);
    for (const conn of members) this.options.onInsufficientState?.(conn, ch.name);
    if (waiting.length > 0 && this.channels.get(ch.name) === ch) this.dispatch(waiting);
  }

  /**
   * The channel's epoch lost acknowledged messages: its offsets went back and are (or will be) reused.
   * Its subscribers here are handed to `onInsufficientState` (closed with 4010: they resubscribe with
   * `recover` and are told `recovered: false`), its messages are never delivered again, and the bus
   * starts a new epoch so that no position of this one is ever "recovered" from messages it did not
   * name. Every edge that notices does the same; only the first changes the channel.
   */
  private abandon(ch: ChannelState, epoch: string, why: string): void {
    const rare = rareOf(ch);
    if (rare.abandoned === epoch) return;
    // Its subscribers are closed below: what was dispatched to them before goes first.
    this.flushRun();
    rare.abandoned = epoch;
    this.metrics.epochRollbacks.inc();
    this.log.warn({ channel: ch.name, epoch, why }, 'epoch lost acknowledged messages: abandoning it');
    const members: HubConnection[] = [];
    for (const g of groupsOf(ch)) g.collectMembers(members);
    for (const conn of members) this.options.onInsufficientState?.(conn, ch.name);
    rare.joins = null;
    this.bus.abandonEpoch(ch.name, epoch).then(
      (pos) => {
        if (this.channels.get(ch.name) === ch && ch.last !== null && ch.last.epoch === epoch)
          ch.last = { epoch: pos.epoch, offset: pos.offset };
          this.markMoved(ch);
      },
      (err: unknown) =>
        this.log.error(
          { err, channel: ch.name, epoch },
          'could not start a new epoch; the next edge to notice will',
        ),
    );
  }

  /** Subscribers waiting for dispatch to pass their position join their topics before `env` is published. */
  private admitJoins(ch: ChannelState, rare: ChannelRare, env: Envelope): void {
    const waiting: PendingJoin[] = [];
    for (const j of rare.joins!) {
      if (env.epoch === j.at.epoch && env.offset <= j.at.offset) {
        waiting.push(j);
        continue;
      }
      if (!j.conn.closed) join(j.conn, j.group);
    }
    rare.joins = waiting.length > 0 ? waiting : null;
    settleRare(ch);
  }

  /** The local connection named by a message's {@link SENDER_ATTR}, if it is on this node. */
  private sender(from: string | number | boolean): HubConnection | undefined {
    const lookup = this.options.connection;
    return lookup === undefined || typeof from !== 'string' ? undefined : lookup(from);
  }

  /**
   * Publishes a group's frame to every member but the sender: in the sender's app through the sender's
   * own socket (uWS skips the publishing socket, still one native fan-out), in any other app as usual.
   */
  private publishExcept(g: Group, sender: HubConnection, frame: Frame, binary: boolean): void {
    if (g.app === null) return;
    this.publishExceptIn(g.app, g, sender, frame, binary);
    const o = g.otherApps;
    if (o !== null) for (let a = 0; a < o.apps.length; a++) this.publishExceptIn(o.apps[a]!, g, sender, frame, binary);
  }

  private publishExceptIn(app: TopicPublisher, g: Group, sender: HubConnection, frame: Frame, binary: boolean): void {
    const ws = sender.ws;
    if (app === sender.app && ws.publish !== undefined) ws.publish(g.topic, frame, binary, false);
    else app.publish(g.topic, frame, binary, false);
  }

  /** Hands a message to a channel's taps; a failing tap is logged and never stops the others. */
  private runTaps(taps: readonly ((env: Envelope) => void)[], env: Envelope): void {
    // A tap may close a connection: what was dispatched to it before goes first.
    this.flushRun();
    for (const tap of taps) {
      try {
        tap(env);
      } catch (err) {
        this.log.error({ err, channel: env.channel }, 'channel tap failed');
      }
    }
  }

  private channelState(name: string, local: (() => Envelope) | null): ChannelState {
    let ch = this.channels.get(name);
    if (!ch) {
      ch = new ChannelState(name, local);
      this.channels.set(name, ch);
      this.metrics.channels.set(this.channels.size);
    }
    return ch;
  }

  private ensureInterest(ch: ChannelState): Promise<void> {
    if (ch.interest === null) {
      ch.interest = this.bus.subscribe(ch.name).then(
        // Settled interest is a shared resolved promise: nothing per quiet channel stays allocated for it.
        () => {
          if (ch.interest !== null) ch.interest = INTEREST_HELD;
        },
        (err: unknown) => {
          ch.interest = null;
          this.log.warn({ err, channel: ch.name }, 'bus subscribe failed');
          throw new SwitchboardError('unavailable', 'the message bus is unavailable; retry');
        },
      );
    }
    return ch.interest;
  }

  /**
   * Sends the response, replays, and joins the group's topic in one synchronous step: no bus delivery
   * can fall between them. `upTo` is the position the subscriber now has everything up to: when this
   * node has not dispatched that far yet (its reader lags the history it was served from), the join
   * waits until dispatch passes it, so nothing up to it is delivered twice.
   */
  private commit(
    conn: HubConnection,
    subId: string,
    ch: ChannelState,
    spec: GroupSpec,
    replay: readonly Envelope[],
    upTo: StreamPosition | null,
    respond: (replayed: number) => void,
  ): void {
    const group = this.group(ch, spec);
    // Rendered before the response so that it can say how many frames follow (a renderer may decline).
    const frames: Frame[] = [];
    for (const env of replay) {
      if (!group.matches(env.attrs)) continue;
      const frame = group.slot.render(env);
      if (frame !== null) frames.push(frame);
    }
    const last = ch.last;
    // Conflated groups publish their latest messages on a timer: they join at once, as they always did.
    const defer =
      upTo !== null &&
      group.pending === null &&
      last !== null &&
      last.epoch === upTo.epoch &&
      last.offset < upTo.offset;
    // The second member: the group moves to its topic before this one joins it.
    if (!group.viaTopic && group.size > 0) toTopic(group);
    conn.ws.cork(() => {
      respond(frames.length);
      for (const frame of frames) conn.ws.send(frame, typeof frame !== 'string', false);
      if (!defer) join(conn, group);
    });
    if (frames.length > 0) {
      this.sentSinceSweep = true;
      if (conn.ws.getBufferedAmount() > 0) this.backlogged.add(conn);
    }
    if (defer) (rareOf(ch).joins ??= []).push({ conn, group, at: upTo });
    group.size++;
    group.addMember(conn);
    group.addApp(conn.app);
    ch.holders++;
    conn.subs.set(subId, group);
    this.subscriptionCount++;
    this.metrics.subscriptions.set(this.subscriptionCount);
  }

  private leave(conn: HubConnection, subId: string, socketOpen: boolean): void {
    const group = conn.subs.get(subId);
    if (!group) return;
    conn.subs.delete(subId);
    if (group.direct === conn) group.direct = null;
    if (socketOpen && group.viaTopic) conn.ws.unsubscribe(group.topic);
    const rare = group.channel.rare;
    if (rare !== null && rare.joins !== null) {
      rare.joins = rare.joins.filter((j) => j.conn !== conn || j.group !== group);
      if (rare.joins.length === 0) {
        rare.joins = null;
        settleRare(group.channel);
      }
    }
    group.size--;
    group.removeMember(conn);
    group.removeApp(conn.app);
    this.subscriptionCount--;
    this.metrics.subscriptions.set(this.subscriptionCount);
    const ch = group.channel;
    ch.holders--;
    if (group.size === 0) this.disposeGroup(group);
    this.maybeDropChannel(ch);
  }

  /** The channel's group for `spec`, created (with its render slot, unless one is shared) when new. */
  private group(ch: ChannelState, spec: GroupSpec): Group {
    const key = groupKey(spec);
    const held = ch.groups;
    if (held instanceof Group) {
      if (groupKey(held.spec) === key) return held;
    } else if (held !== null) {
      const g = held.byKey.get(key);
      if (g) return g;
    }
    const sk = slotKey(spec);
    let slot: RenderSlot | undefined;
    if (held instanceof Group) {
      if (slotKey(held.spec) === sk) slot = held.slot;
    } else if (held !== null) slot = held.slots.get(sk);
    slot ??= new RenderSlot(this.options.renderer(spec));
    slot.refs++;
    const g = new Group(spec, slot, ch);
    if (held === null) ch.groups = g;
    else {
      // The second group: from now on the channel's groups and slots are found by key.
      const many =
        held instanceof Group
          ? (ch.groups = {
              byKey: new Map([[groupKey(held.spec), held]]),
              slots: new Map([[slotKey(held.spec), held.slot]]),
            })
          : held;
      many.byKey.set(key, g);
      many.slots.set(sk, slot);
    }
    indexGroup(ch, g);
    this.groupCount++;
    this.metrics.groups.set(this.groupCount);
    if (ch.local !== null) {
      g.viaTopic = true;
      this.startLocalTimer(g, ch.local, spec.frequencyMs);
    } else if (spec.frequencyMs > 0) {
      g.viaTopic = true;
      this.startConflation(g, spec.frequencyMs);
    }
    return g;
  }

  private startConflation(g: Group, intervalMs: number): void {
    g.pending = new Map();
    g.timer = setInterval(() => {
      const pending = g.pending;
      if (pending === null || pending.size === 0) return;
      g.pending = new Map();
      let sent = 0;
      for (const env of pending.values()) {
        const frame = g.slot.frameFor(env);
        if (frame === null) continue;
        g.publish(frame, g.slot.binary);
        sent++;
      }
      this.metrics.deliveries.inc(sent * g.size);
      this.sentSinceSweep = true;
      this.topicSentSinceSweep = true;
    }, intervalMs);
  }

  private startLocalTimer(g: Group, sample: () => Envelope, intervalMs: number): void {
    g.timer = setInterval(() => {
      const frame = g.slot.frameFor(sample());
      if (frame === null) return;
      g.publish(frame, g.slot.binary);
      this.metrics.deliveries.inc(g.size);
      this.sentSinceSweep = true;
      this.topicSentSinceSweep = true;
    }, intervalMs);
  }

  private disposeGroup(g: Group): void {
    if (g.timer) clearInterval(g.timer);
    g.timer = null;
    g.pending = null;
    const ch = g.channel;
    unindexGroup(ch, g);
    const lastOfSlot = --g.slot.refs === 0;
    const held = ch.groups;
    if (held === g) ch.groups = null;
    else if (held !== null && !(held instanceof Group)) {
      held.byKey.delete(groupKey(g.spec));
      if (lastOfSlot) held.slots.delete(slotKey(g.spec));
      // Back to one group: held as is again.
      if (held.byKey.size === 1) ch.groups = held.byKey.values().next().value!;
    }
    this.groupCount--;
    this.metrics.groups.set(this.groupCount);
  }

  private maybeDropChannel(ch: ChannelState): void {
    if (ch.holders > 0 || ch.groups !== null || (ch.rare !== null && ch.rare.recovering.length > 0)) return;
    if (this.channels.get(ch.name) !== ch) return;
    this.channels.delete(ch.name);
    this.metrics.channels.set(this.channels.size);
    if (ch.local === null && ch.interest !== null) {
      this.bus
        .unsubscribe(ch.name)
        .catch((err: unknown) => this.log.warn({ err, channel: ch.name }, 'bus unsubscribe failed'));
    }
  }
}

/** A member starts receiving a group's frames: through its topic, or directly while it has none. */
function join(conn: HubConnection, g: Group): void {
  if (g.viaTopic) conn.ws.subscribe(g.topic);
  else g.direct = conn;
}

/**
 * Moves a group to its uWS topic for good (its second member is joining). Nothing of the first member's
 * is pending here (direct frames are written by the end of each batch), so what it gets next through the
 * topic follows what it got directly; a first member still waiting for its join subscribes when admitted.
 */
function toTopic(g: Group): void {
  g.viaTopic = true;
  const first = g.direct;
  g.direct = null;
  if (first !== null && !first.closed) first.ws.subscribe(g.topic);
}

/** Adds a group to its channel's dispatch index (open groups, or under each value of its key attribute). */
function indexGroup(ch: ChannelState, g: Group): void {
  const f = g.filter;
  if (f === null) {
    if (ch.solo === null) ch.solo = g;
    else ch.open = append(ch.open, g);
    return;
  }
  const index = (ch.index ??= { byAttr: new Map<string, Map<string, Group[]>>(), attrs: NO_STRINGS });
  let byValue = index.byAttr.get(f.keyAttr);
  if (!byValue) {
    index.byAttr.set(f.keyAttr, (byValue = new Map<string, Group[]>()));
    index.attrs = [...index.byAttr.keys()];
  }
  for (const value of f.keyValues) {
    const list = byValue.get(value);
    if (list) list.push(g);
    else byValue.set(value, [g]);
  }
}

/** Removes a group from its channel's dispatch index. */
function unindexGroup(ch: ChannelState, g: Group): void {
  const f = g.filter;
  if (f === null) {
    if (ch.solo !== g) ch.open = remove(ch.open, g, NO_GROUPS);
    else if (ch.open.length === 0) ch.solo = null;
    else {
      // The next open group takes the first place (the order of delivery among groups is kept).
      ch.solo = ch.open[0]!;
      ch.open = remove(ch.open, ch.solo, NO_GROUPS);
    }
    return;
  }
  const index = ch.index;
  if (index === null) return;
  const byValue = index.byAttr.get(f.keyAttr);
  if (!byValue) return;
  for (const value of f.keyValues) {
    const list = byValue.get(value);
    if (!list) continue;
    const i = list.indexOf(g);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) byValue.delete(value);
  }
  if (byValue.size === 0) {
    index.byAttr.delete(f.keyAttr);
    if (index.byAttr.size === 0) ch.index = null;
    else index.attrs = [...index.byAttr.keys()];
  }
}

/** Orders write ids (`<µs>-<index>`): negative when a < b. Off the hot path (offset reuse checks). */
function compareWriteIds(a: string, b: string): number {
  const ai = a.indexOf('-');
  const bi = b.indexOf('-');
  const dm = Number(a.slice(0, ai)) - Number(b.slice(0, bi));
  return dm !== 0 ? dm : Number(a.slice(ai + 1)) - Number(b.slice(bi + 1));
}

function conflationKey(g: Group, env: Envelope): string {
  const by = g.spec.conflateBy;
  if (by === null) return '';
  const v = env.attrs[by];
  return v === undefined ? '' : typeof v === 'string' ? v : String(v);
}
