/**
 * The persistent publish channel: a WebSocket at `/api/publish/ws` for backends that publish at a high
 * rate. The API key is checked in the upgrade (`Authorization: Bearer <key>`), before `res.upgrade`.
 * Each text frame is one publish or a batch, in the body form of `POST /api/publish` (plus an optional
 * `id`), and is acknowledged with its position(s) — `{"id","channel","offset","epoch"}` or
 * `{"id","results":[…]}` — or refused with `{"id","error","message"}`. Frames are not held for each
 * other's acknowledgements: many are in flight, the bus coalesces them, and acks of one channel come back
 * in the order its frames were sent. An idempotency key per message makes a retry after a reconnect safe.
 *
 * Flow control: uWS cannot stop reading a WebSocket, so a publisher faster than the bus is held back by
 * refusal — a frame that would take the socket past `publishSocketMaxInFlight` unacknowledged messages is
 * answered `too_many_in_flight` and nothing of it is published — and a publisher that does not read its
 * acknowledgements is closed with 4008 (`slow_consumer`) when they pass the socket's backpressure limit,
 * where uWS would start dropping them silently.
 */
import { CLOSE_CODES, isPlainObject, parseJsonGuarded, type Logger } from '@switchboard/core';
import type { Bus, PublishResult } from '@switchboard/bus';
import type { ApiKeys } from './api-keys.js';
import type { EdgeMetrics } from './metrics.js';
import { parsePublishValue, publishFailure, renderPublishAnswer, type ParsedPublish, type PublishNormalizer, type PublishParseOptions } from './publish.js';
import { uWS, type TemplatedApp, type WebSocket } from './uws.js';

/** The path of the persistent publish channel on the main listener. */
export const PUBLISH_SOCKET_PATH = '/api/publish/ws';

/** A publishing connection. */
interface Publisher {
  /** How its frames are checked: made once per connection, not per frame. */
  readonly parse: PublishParseOptions;
  closed: boolean;
  /** Answers waiting for this turn's flush (one cork and write for all of them). */
  out: string[];
  /** Messages handed to the bus and not acknowledged yet. */
  inFlight: number;
  /** What every socket of the mount shares (one object, not fields per socket). */
  readonly shared: SocketShared;
}

/** What the answer path needs from the mount. */
interface SocketShared {
  /** Unread acknowledgements past this many bytes close the socket (uWS would drop what follows). */
  readonly ackLimitBytes: number;
  readonly metrics: EdgeMetrics;
}

/** What the publish socket needs. */
export interface PublishSocketDeps {
  readonly bus: Bus;
  readonly apiKeys: ApiKeys;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  readonly normalizer: PublishNormalizer;
  readonly limits: {
    readonly maxDepth: number;
    readonly publishMaxBatch: number;
    readonly publishMaxBodyBytes: number;
    readonly maxBackpressureBytes: number;
    readonly publishSocketMaxInFlight: number;
  };
  draining(): boolean;
}

/**
 * Counts acknowledged messages into `published{source="socket"}` once per turn instead of once per frame
 * (a frame is often one message): the acks of one bus flush resolve in one turn.
 */
class PublishedCount {
  private unreported = 0;

  constructor(private readonly metrics: EdgeMetrics) {}

  add(messages: number): void {
    if (this.unreported === 0) queueMicrotask(this.report);
    this.unreported += messages;
  }

  private readonly report = (): void => {
    const messages = this.unreported;
    this.unreported = 0;
    this.metrics.published.inc({ source: 'socket' }, messages);
  };
}

/** Mounts the persistent publish channel on an app. */
export function mountPublishSocket(app: TemplatedApp, deps: PublishSocketDeps): void {
  const count = new PublishedCount(deps.metrics);
  const shared: SocketShared = { ackLimitBytes: deps.limits.maxBackpressureBytes * 4, metrics: deps.metrics };
  app.ws<Publisher>(PUBLISH_SOCKET_PATH, {
    maxPayloadLength: deps.limits.publishMaxBodyBytes,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    // No uWS limit (it would drop acknowledgements silently): flushReplies closes the socket past shared.ackLimitBytes,
    // so its buffer holds at most that plus one turn's acknowledgements (bounded by the in-flight limit).
    maxBackpressure: 0,
    closeOnBackpressureLimit: 0,
    compression: uWS.DISABLED,
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const auth = req.getHeader('authorization');
      if (deps.draining()) {
        deps.metrics.upgradeRejections.inc({ reason: 'draining' });
        res.writeStatus('503 Service Unavailable').end('draining');
        return;
      }
      const scope = deps.apiKeys.authorize(auth);
      if (scope === null) {
        deps.metrics.upgradeRejections.inc({ reason: 'refused' });
        res.writeStatus('401 Unauthorized').end(auth ? 'the API key was refused' : 'send Authorization: Bearer <api key>');
        return;
      }
      // No subprotocol is spoken: answer none, whatever the client offers.
      void protocol;
      const parse: PublishParseOptions = { maxDepth: deps.limits.maxDepth, maxBatch: deps.limits.publishMaxBatch, scope, normalizer: deps.normalizer };
      res.upgrade<Publisher>({ parse, closed: false, out: [], inFlight: 0, shared }, key, '', extensions, context);
    },
    message: (ws: WebSocket<Publisher>, message: ArrayBuffer, isBinary: boolean) => onFrame(deps, count, ws, message, isBinary),
    close: (ws: WebSocket<Publisher>) => {
      ws.getUserData().closed = true;
    },
  });
}

/**
 * Queues an answer (JSON text). The acks of one bus flush resolve in one turn, so they are written
 * together: the first schedules a microtask that runs after the others were queued, and sends them all in
 * one cork (one write instead of one per ack). Order is kept: every answer of a socket goes through this
 * queue. The publisher is the one read when the frame came: the socket may have closed since.
 */
function reply(ws: WebSocket<Publisher>, p: Publisher, text: string): void {
  if (p.closed) return;
  p.out.push(text);
  if (p.out.length === 1) queueMicrotask(() => flushReplies(ws, p));
}

function flushReplies(ws: WebSocket<Publisher>, p: Publisher): void {
  const out = p.out;
  p.out = [];
  if (p.closed) return;
  if (ws.getBufferedAmount() > p.shared.ackLimitBytes) {
    // The publisher stopped reading its acknowledgements: closing is the only way not to lose any silently.
    p.closed = true;
    p.shared.metrics.slowConsumerDisconnects.inc({ dialect: 'api', reader: 'slow' });
    ws.end(CLOSE_CODES.slow_consumer.code, 'slow_consumer');
    return;
  }
  ws.cork(() => {
    for (let i = 0; i < out.length; i++) ws.send(out[i]!, false, false);
  });
}

/** An error answer, with the frame's `id` first when it had one. */
function replyError(ws: WebSocket<Publisher>, p: Publisher, id: string | number | undefined, body: Record<string, unknown>): void {
  reply(ws, p, JSON.stringify(id === undefined ? body : { id, ...body }));
}

function onFrame(deps: PublishSocketDeps, count: PublishedCount, ws: WebSocket<Publisher>, message: ArrayBuffer, isBinary: boolean): void {
  const pub = ws.getUserData();
  if (isBinary) {
    replyError(ws, pub, undefined, { error: 'invalid_message', message: 'frames are JSON text' });
    return;
  }
  // Copied out of uWS's buffer by decoding, as the frame is only valid during this call.
  const parsed = parseJsonGuarded(Buffer.from(message).toString('utf8'), deps.limits.maxDepth + 3);
  if (!parsed.ok) {
    replyError(ws, pub, undefined, { error: parsed.code, message: parsed.message });
    return;
  }
  const raw = parsed.value;
  const id = isPlainObject(raw) && (typeof raw.id === 'string' || typeof raw.id === 'number') ? raw.id : undefined;
  const p = parsePublishValue(raw, pub.parse);
  if (!p.ok) {
    if (p.denied) deps.metrics.authzDenials.inc({ dialect: 'api', reason: p.denied });
    replyError(ws, pub, id, { error: p.code, message: p.message, ...(p.index !== undefined ? { index: p.index } : {}) });
    return;
  }
  const messages = p.requests.length;
  if (pub.inFlight + messages > deps.limits.publishSocketMaxInFlight) {
    deps.metrics.errors.inc({ dialect: 'api', code: 'too_many_in_flight' });
    replyError(ws, pub, id, {
      error: 'too_many_in_flight',
      message: `${pub.inFlight} messages of this socket are waiting for their acknowledgements (at most ${deps.limits.publishSocketMaxInFlight}): nothing of this frame was published; send it again once acknowledgements came`,
    });
    return;
  }
  pub.inFlight += messages;
  const failed = (err: unknown) => {
    pub.inFlight -= messages;
    deps.logger.warn({ err }, 'socket publish failed');
    const f = publishFailure(err);
    replyError(ws, pub, id, { error: f.code, message: f.message, ...f.extra });
  };
  if (p.batch) deps.bus.publishBatch(p.requests).then((results) => acknowledge(count, ws, pub, p, id, results), failed);
  else deps.bus.publish(p.requests[0]!).then((result) => acknowledge(count, ws, pub, p, id, [result]), failed);
}

function acknowledge(
  count: PublishedCount,
  ws: WebSocket<Publisher>,
  pub: Publisher,
  p: Extract<ParsedPublish, { ok: true }>,
  id: string | number | undefined,
  results: readonly PublishResult[],
): void {
  pub.inFlight -= p.requests.length;
  count.add(results.length);
  reply(ws, pub, renderPublishAnswer(p.names, results, p.batch, id));
}
