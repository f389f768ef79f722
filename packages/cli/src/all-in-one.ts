import { createMetricsRegistry, type Config, type Logger } from '@switchboard/core';
import { EdgeServer } from '@switchboard/edge';
import { MemoryAdmission, createHmacVerifier } from '@switchboard/session';
import { createBus } from './backends.js';

/** A running node and how to stop it. */
export interface RunningNode {
  readonly edge: EdgeServer;
  readonly port: number;
  /** Which bus it uses. */
  readonly backend: string;
  /** Drains clients (1012), stops listening and releases the backends. */
  stop(): Promise<void>;
}

/**
 * Composes an edge with the session logic in the same process: embedded in-memory backends, or the
 * Redis Streams bus when `REDIS_URL` is set (then several such processes form a cluster).
 */
export async function startNode(config: Config, logger: Logger): Promise<RunningNode> {
  const registry = createMetricsRegistry({ defaultLabels: { node: config.nodeId } });
  const backend = await createBus(config, logger, registry);
  const edge = new EdgeServer({
    config,
    bus: backend.bus,
    verifier: createHmacVerifier({ secret: config.jwtSecret, issuer: config.jwtIssuer, audience: config.jwtAudience }),
    admission: new MemoryAdmission(config),
    logger,
    registry,
  });
  let port: number;
  try {
    port = await edge.listen();
  } catch (err) {
    await backend.close();
    throw err;
  }
  return {
    edge,
    port,
    backend: backend.kind,
    async stop() {
      await edge.drain();
      edge.close();
      await backend.close();
    },
  };
}
