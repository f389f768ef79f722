/**
 * Application-level keep-alive: a dialect that declares a keep-alive frame gets it sent to every one of
 * its connections every interval, as one `app.publish` per tick to a topic its connections join on open
 * (uWS fans it out natively) — never a timer or a send per connection.
 */
import type { Conn } from './conn.js';
import type { MountedDialect } from './listeners.js';

/** The keep-alive topic of a dialect (not a group topic: those are `g<n>`). */
export function keepaliveTopic(dialect: string): string {
  return `~ka:${dialect}`;
}

/** Keep-alive ticks of every dialect that has them. */
export class KeepAlive {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly dialects: readonly MountedDialect[]) {}

  /** Joins a new connection to its dialect's keep-alive topic. */
  joined(d: MountedDialect, conn: Conn): void {
    if (d.def.keepalive) conn.ws.subscribe(keepaliveTopic(d.name));
  }

  /** Starts the ticks. */
  start(): void {
    for (const d of this.dialects) {
      const ka = d.def.keepalive;
      if (!ka) continue;
      const topic = keepaliveTopic(d.name);
      const t = setInterval(() => {
        for (const app of d.apps) app.publish(topic, ka.frame, false, false);
      }, ka.intervalMs);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Stops the ticks. */
  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }
}
