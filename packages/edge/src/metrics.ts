import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SEC } from '@switchboard/core';

/** The edge's Prometheus metrics (DESIGN §7). Label values are bounded: dialects, rules, error codes. */
export class EdgeMetrics {
  readonly connections: Gauge<'dialect'>;
  readonly connectionsOpened: Counter<'dialect'>;
  readonly connectionsClosed: Counter<'dialect' | 'code'>;
  readonly messagesIn: Counter<'dialect'>;
  readonly messagesOut: Counter<'dialect'>;
  readonly deliveries: Counter;
  readonly fanoutMessages: Counter;
  readonly fanoutLatency: Histogram;
  readonly rateLimitRejections: Counter<'dialect' | 'rule'>;
  readonly backpressureDrops: Counter<'dialect'>;
  readonly slowConsumerDisconnects: Counter<'dialect' | 'reader'>;
  readonly errors: Counter<'dialect' | 'code'>;
  readonly published: Counter<'source'>;
  readonly channels: Gauge;
  readonly groups: Gauge;
  readonly subscriptions: Gauge;
  readonly recoveries: Counter<'outcome'>;
  readonly recoveredMessages: Counter;
  readonly upgradeRejections: Counter<'reason'>;
  readonly gapRepairs: Counter<'outcome'>;
  readonly epochRollbacks: Counter;
  readonly authzDenials: Counter<'dialect' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connections = new Gauge({
      name: 'switchboard_connections',
      help: 'Open WebSocket connections by dialect.',
      labelNames: ['dialect'],
      registers,
    });
    this.authzDenials = new Counter({
      name: 'switchboard_authz_denials_total',
      help: 'Requests refused by authorization, by dialect (`api` for the publish API) and reason: role (the channel policy), device (the token\'s devices claim), tenant or channel (an API key\'s scope).',
      labelNames: ['dialect', 'reason'],
      registers,
    });
    this.connectionsOpened = new Counter({
      name: 'switchboard_connections_opened_total',
      help: 'WebSocket connections opened, by dialect.',
      labelNames: ['dialect'],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'switchboard_connections_closed_total',
      help: 'WebSocket connections closed, by dialect and close code (registered and standard codes; any other is "other").',
      labelNames: ['dialect', 'code'],
      registers,
    });
    this.messagesIn = new Counter({
      name: 'switchboard_messages_received_total',
      help: 'Client messages received (each message of a batch counts), by dialect.',
      labelNames: ['dialect'],
      registers,
    });
    this.messagesOut = new Counter({
      name: 'switchboard_messages_sent_total',
      help: 'Direct replies sent to clients (responses, errors, replays), by dialect; fan-out is counted in deliveries.',
      labelNames: ['dialect'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'switchboard_deliveries_total',
      help: 'Messages handed to subscriber sockets by fan-out (one per subscriber per message).',
      registers,
    });
    this.fanoutMessages = new Counter({
      name: 'switchboard_fanout_messages_total',
      help: 'Bus messages dispatched by the hub on this node.',
      registers,
    });
    this.fanoutLatency = new Histogram({
      name: 'switchboard_fanout_latency_seconds',
      help: 'Publish to hand-off to the sockets, from the publishing process\'s stamp (µs precision) to this edge\'s dispatch; one observation per dispatched batch, taken from its oldest message. Across processes it spans the bus and is as exact as the hosts\' clocks agree.',
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    });
    this.rateLimitRejections = new Counter({
      name: 'switchboard_rate_limit_rejections_total',
      help: 'Requests or connections refused by a rate or connection limit, by dialect and rule.',
      labelNames: ['dialect', 'rule'],
      registers,
    });
    this.backpressureDrops = new Counter({
      name: 'switchboard_backpressure_drops_total',
      help: 'Connections found over the uWS backpressure limit (where uWS silently skips publishes); each is closed as a slow consumer.',
      labelNames: ['dialect'],
      registers,
    });
    this.slowConsumerDisconnects = new Counter({
      name: 'switchboard_slow_consumer_disconnects_total',
      help: 'Connections closed because their send buffer passed the backpressure limit or the node budget: reader="slow" got 4008, reader="stalled" (read nothing for a sweep interval) was dropped without a close frame; dialect="api" is a publish socket whose publisher stopped reading its acknowledgements.',
      labelNames: ['dialect', 'reader'],
      registers,
    });
    this.errors = new Counter({
      name: 'switchboard_client_errors_total',
      help: 'Error replies sent to clients, by dialect and registered error code.',
      labelNames: ['dialect', 'code'],
      registers,
    });
    this.published = new Counter({
      name: 'switchboard_published_total',
      help: 'Messages published through this node, by source.',
      labelNames: ['source'],
      registers,
    });
    this.channels = new Gauge({
      name: 'switchboard_channels',
      help: 'Channels with subscribers on this node.',
      registers,
    });
    this.groups = new Gauge({
      name: 'switchboard_subscriber_groups',
      help: 'Subscriber groups (dialect, channel, filter, projection, frequency) on this node.',
      registers,
    });
    this.subscriptions = new Gauge({
      name: 'switchboard_subscriptions',
      help: 'Subscriptions held by connections on this node.',
      registers,
    });
    this.recoveries = new Counter({
      name: 'switchboard_recoveries_total',
      help: 'Subscribe requests that asked for recovery, by outcome (recovered, not_recovered).',
      labelNames: ['outcome'],
      registers,
    });
    this.upgradeRejections = new Counter({
      name: 'switchboard_upgrade_rejections_total',
      help: 'WebSocket upgrades refused before the handshake, by reason (origin, draining, subprotocol, refused by the dialect, unauthenticated_cap: too many connections waiting for auth, error).',
      labelNames: ['reason'],
      registers,
    });
    this.gapRepairs = new Counter({
      name: 'switchboard_gap_repairs_total',
      help: 'Channel gaps found by the hub (offset jump or bus gap report), by outcome: repaired from history, or insufficient_state (subscribers closed with 4010).',
      labelNames: ['outcome'],
      registers,
    });
    this.epochRollbacks = new Counter({
      name: 'switchboard_epoch_rollbacks_total',
      help: 'Channel epochs abandoned because their offsets went back (the backend lost acknowledged writes, e.g. a failover): subscribers closed with 4010 and told recovered:false.',
      registers,
    });
    this.recoveredMessages = new Counter({
      name: 'switchboard_recovered_messages_total',
      help: 'Messages replayed from history to recovering subscribers.',
      registers,
    });
  }
}
