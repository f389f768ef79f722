import { Counter, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SEC } from '@switchboard/core';

/** The session service's Prometheus metrics. Labels are bounded (outcomes, rules, method names). */
export class SessionMetrics {
  readonly logins: Counter<'outcome'>;
  readonly loginDuration: Histogram;
  readonly admissions: Counter<'outcome'>;
  readonly rpcDuration: Histogram<'method' | 'outcome'>;
  readonly reaped: Counter;
  readonly sessions: Counter<'outcome'>;
  readonly resumeLookups: Counter<'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.logins = new Counter({
      name: 'switchboard_session_logins_total',
      help: 'Login attempts by outcome (ok, invalid_credentials, locked_out, invalid_message).',
      labelNames: ['outcome'],
      registers,
    });
    this.loginDuration = new Histogram({
      name: 'switchboard_session_login_duration_seconds',
      help: 'Time to answer a login (scrypt included).',
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    });
    this.admissions = new Counter({
      name: 'switchboard_session_admissions_total',
      help: 'Connection admissions by outcome: ok, or the rule that refused (user_concurrent, total_concurrent, user_rate, ip_rate).',
      labelNames: ['outcome'],
      registers,
    });
    this.rpcDuration = new Histogram({
      name: 'switchboard_session_rpc_duration_seconds',
      help: 'Time to serve an edge request, by method and outcome (ok, error).',
      labelNames: ['method', 'outcome'],
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    });
    this.reaped = new Counter({
      name: 'switchboard_session_reaped_connections_total',
      help: 'Connections released because their edge stopped sending heartbeats.',
      registers,
    });
    this.sessions = new Counter({
      name: 'switchboard_session_sessions_total',
      help: 'Sessions opened by outcome: new, resumed (an earlier connection\'s subscriptions came back), continued (an existing session with none, e.g. the first connection with a login token).',
      labelNames: ['outcome'],
      registers,
    });
    this.resumeLookups = new Counter({
      name: 'switchboard_session_resume_lookups_total',
      help: 'Sessions looked up by id alone (a Fleet Freedom ghostId) by outcome (found, unknown).',
      labelNames: ['outcome'],
      registers,
    });
  }
}
