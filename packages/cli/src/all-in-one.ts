import { MemoryBroker, type Bus } from '@switchboard/bus';
import { createMetricsRegistry, type Config, type Logger } from '@switchboard/core';
import { EdgeServer } from '@switchboard/edge';
import { MemoryAdmission, createHmacVerifier } from '@switchboard/session';

/** A running all-in-one node and how to stop it. */
export interface RunningNode {
  readonly edge: EdgeServer;
  readonly port: number;
  /** Drains clients (1012), stops listening and releases the backends. */
  stop(): Promise<void>;
}

/**
 * Composes the all-in-one process: edge + session logic with embedded in-memory backends. No Redis is
 * needed; state lives as long as the process.
 */
export async function startAllInOne(config: Config, logger: Logger): Promise<RunningNode> {
  const registry = createMetricsRegistry({ defaultLabels: { node: config.nodeId } });
  const broker = new MemoryBroker({ historySize: config.historySize, historyTtlSec: config.historyTtlSec });
  const bus: Bus = broker.node();
  const edge = new EdgeServer({
    config,
    bus,
    verifier: createHmacVerifier({ secret: config.jwtSecret, issuer: config.jwtIssuer, audience: config.jwtAudience }),
    admission: new MemoryAdmission(config),
    logger,
    registry,
  });
  const port = await edge.listen();
  return {
    edge,
    port,
    async stop() {
      await edge.drain();
      edge.close();
      await bus.close();
      broker.close();
    },
  };
}
