/**
 * The edges' control plane: one bus channel every edge reads (through a hub tap, so it has offsets, gap
 * repair and the bus's delivery to every interested node), for what must happen on whichever edge holds a
 * connection — close the connections indexed under a key (a session resumed elsewhere, and, published by
 * the session service, a revoked session or user) — and for questions every live edge answers (cluster-wide admin views).
 * Edges announce themselves on it every `helloMs`: an edge silent for three intervals is gone, so a
 * question never waits for it.
 */
import { randomBytes } from 'node:crypto';
import { CLOSE_CODES, isPlainObject, parseJsonGuarded, type CloseCodeName, type Envelope, type Logger } from '@switchboard/core';
import type { Bus } from '@switchboard/bus';
import type { ConnectionRegistry } from './conn.js';
import type { Hub } from './hub.js';
import { closeConn } from './listeners.js';

/** The channel every edge reads. No dialect is named `switchboard`, so no client can reach it. */
export const CONTROL_CHANNEL = 'switchboard:cluster:control';

/** How long {@link ClusterControl.closeWhere} waits for its close to come back through the control channel. */
export const CLOSE_APPLIED_TIMEOUT_MS = 2000;

/** Keys one revocation message may name. */
const MAX_REVOKED_KEYS = 1000;

/**
 * The control message that closes, on every edge, the connections indexed under `keys` with 4012
 * (`session_revoked`): what the session service publishes on {@link CONTROL_CHANNEL} when it revokes
 * sessions or users.
 */
export function revocationMessage(keys: readonly string[], from: string): string {
  return JSON.stringify({ t: 'revoke', keys: keys.slice(0, MAX_REVOKED_KEYS), node: from });
}

/** Where an edge receives answers to its questions. */
const replyChannel = (nodeId: string) => `switchboard:cluster:reply.${nodeId}`;

/** Answers of every live edge to one question. */
export interface ClusterAnswers<T = unknown> {
  readonly answers: readonly { readonly node: string; readonly result: T }[];
  /** Live edges that did not answer before the deadline (gone, or too slow). */
  readonly missing: readonly string[];
}

/** What dialects and the HTTP API use of the control plane. */
export interface ClusterControl {
  /**
   * Closes, on every edge, the connections indexed under `key` (`ConnectionRegistry.index`), except one.
   * Resolves once this edge has applied the close itself — so every close published before it has been
   * applied here too (the control channel is read in order) — or after {@link CLOSE_APPLIED_TIMEOUT_MS}.
   * A connection indexed only then is never closed by an earlier close: of two registrations racing on
   * two edges, the later one stays.
   */
  closeWhere(key: string, reason: CloseCodeName, exceptConnId?: string): Promise<void>;
  /** Answers questions of `kind` from other edges (and this one). */
  onAsk(kind: string, handler: (payload: unknown) => unknown): void;
  /** Asks every live edge; resolves when all answered or at the deadline, whichever is first. */
  ask<T = unknown>(kind: string, payload: unknown, deadlineMs: number): Promise<ClusterAnswers<T>>;
  /** Edges heard from within three hello intervals (this one included). */
  liveNodes(): string[];
}

interface Pending {
  readonly answers: { node: string; result: unknown }[];
  readonly expected: Set<string>;
  resolve(): void;
}

/** Options of {@link ControlPlane}. */
export interface ControlPlaneOptions {
  readonly bus: Bus;
  readonly hub: Hub;
  readonly conns: ConnectionRegistry;
  readonly nodeId: string;
  readonly logger: Logger;
  readonly helloMs: number;
}

/** The control plane of one edge. */
export class ControlPlane implements ClusterControl {
  private readonly log: Logger;
  private readonly seen = new Map<string, number>();
  private readonly handlers = new Map<string, (payload: unknown) => unknown>();
  private readonly pending = new Map<string, Pending>();
  /** Closes this edge published, until they come back through the control channel. */
  private readonly closing = new Map<string, () => void>();
  private readonly untaps: (() => void)[] = [];
  private helloTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  private readonly prefix = randomBytes(4).toString('hex');

  constructor(private readonly o: ControlPlaneOptions) {
    this.log = o.logger.child({ component: 'cluster' });
  }

  /** Starts reading the control and reply channels, and announcing this edge. */
  async start(): Promise<void> {
    this.untaps.push(await this.o.hub.tap(CONTROL_CHANNEL, (env) => this.onControl(env)));
    this.untaps.push(await this.o.hub.tap(replyChannel(this.o.nodeId), (env) => this.onReply(env)));
    this.seen.set(this.o.nodeId, Date.now());
    this.hello();
    this.helloTimer = setInterval(() => this.hello(), this.o.helloMs);
    this.helloTimer.unref();
  }

  /** Stops announcing and reading; pending questions resolve with what they have. */
  stop(): void {
    if (this.helloTimer) clearInterval(this.helloTimer);
    this.helloTimer = null;
    for (const u of this.untaps.splice(0)) u();
    for (const p of this.pending.values()) p.resolve();
    for (const done of this.closing.values()) done();
  }

  async closeWhere(key: string, reason: CloseCodeName, exceptConnId?: string): Promise<void> {
    const id = `${this.prefix}-${++this.seq}`;
    let done!: () => void;
    const applied = new Promise<void>((r) => (done = r));
    this.closing.set(id, done);
    const timer = setTimeout(done, CLOSE_APPLIED_TIMEOUT_MS);
    try {
      await this.send(CONTROL_CHANNEL, { t: 'close', id, key, reason, ...(exceptConnId !== undefined ? { except: exceptConnId } : {}) });
      await applied;
    } finally {
      clearTimeout(timer);
      this.closing.delete(id);
    }
  }

  onAsk(kind: string, handler: (payload: unknown) => unknown): void {
    this.handlers.set(kind, handler);
  }

  async ask<T = unknown>(kind: string, payload: unknown, deadlineMs: number): Promise<ClusterAnswers<T>> {
    const id = `${this.prefix}-${++this.seq}`;
    const expected = new Set(this.liveNodes());
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const pending: Pending = { answers: [], expected, resolve };
    this.pending.set(id, pending);
    const timer = setTimeout(resolve, deadlineMs);
    try {
      await this.send(CONTROL_CHANNEL, { t: 'ask', id, kind, payload, replyTo: this.o.nodeId });
      await done;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
    const answered = new Set(pending.answers.map((a) => a.node));
    return {
      answers: pending.answers as { node: string; result: T }[],
      missing: [...expected].filter((n) => !answered.has(n)),
    };
  }

  liveNodes(): string[] {
    const cutoff = Date.now() - this.o.helloMs * 3;
    const out: string[] = [];
    for (const [node, at] of this.seen) {
      if (at >= cutoff || node === this.o.nodeId) out.push(node);
      else this.seen.delete(node);
    }
    return out.sort();
  }

  private hello(): void {
    this.send(CONTROL_CHANNEL, { t: 'hello' }).catch((err: unknown) => this.log.warn({ err }, 'cluster hello not sent'));
  }

  private async send(channel: string, msg: Record<string, unknown>): Promise<void> {
    await this.o.bus.publish({ channel, attrs: {}, data: JSON.stringify({ ...msg, node: this.o.nodeId }) });
  }

  private parse(env: Envelope): Record<string, unknown> | null {
    const parsed = parseJsonGuarded(env.data, 32);
    if (!parsed.ok || !isPlainObject(parsed.value) || typeof parsed.value.node !== 'string') {
      this.log.warn({ channel: env.channel, offset: env.offset }, 'unreadable control message ignored');
      return null;
    }
    return parsed.value;
  }

  private onControl(env: Envelope): void {
    const msg = this.parse(env);
    if (!msg) return;
    if (msg.t === 'revoke') {
      // From the session service (not an edge: it answers no questions, so it is not recorded as seen).
      if (Array.isArray(msg.keys)) for (const key of msg.keys.slice(0, MAX_REVOKED_KEYS)) if (typeof key === 'string') this.closeLocal(key, 'session_revoked', undefined);
      return;
    }
    const node = msg.node as string;
    this.seen.set(node, Date.now());
    switch (msg.t) {
      case 'close':
        if (typeof msg.key === 'string' && typeof msg.reason === 'string' && Object.prototype.hasOwnProperty.call(CLOSE_CODES, msg.reason))
          this.closeLocal(msg.key, msg.reason as CloseCodeName, typeof msg.except === 'string' ? msg.except : undefined);
        if (node === this.o.nodeId && typeof msg.id === 'string') this.closing.get(msg.id)?.();
        return;
      case 'ask':
        if (typeof msg.id === 'string' && typeof msg.kind === 'string' && typeof msg.replyTo === 'string') void this.answer(msg.id, msg.kind, msg.payload, msg.replyTo);
        return;
      default:
        return;
    }
  }

  private closeLocal(key: string, reason: CloseCodeName, except: string | undefined): void {
    for (const conn of this.o.conns.byKey(key)) if (conn.connId !== except) closeConn(conn, reason);
  }

  private async answer(id: string, kind: string, payload: unknown, replyTo: string): Promise<void> {
    const handler = this.handlers.get(kind);
    if (!handler) return;
    try {
      const result = await handler(payload);
      await this.send(replyChannel(replyTo), { t: 'reply', id, result });
    } catch (err) {
      this.log.warn({ err, kind }, 'cluster question not answered');
    }
  }

  private onReply(env: Envelope): void {
    const msg = this.parse(env);
    if (!msg || typeof msg.id !== 'string') return;
    const pending = this.pending.get(msg.id);
    if (!pending) return;
    const node = msg.node as string;
    pending.answers.push({ node, result: msg.result });
    pending.expected.add(node);
    if (pending.answers.length >= pending.expected.size && [...pending.expected].every((n) => pending.answers.some((a) => a.node === n))) pending.resolve();
  }
}
