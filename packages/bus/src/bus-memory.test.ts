import { MemoryBroker } from './bus-memory.js';
import { runBusContract } from './bus.contract.js';

runBusContract('memory', () => {
  const broker = new MemoryBroker({ historySize: 10, historyTtlSec: 1, idempotencyWindowSec: 1 });
  const nodes: { close(): Promise<void> }[] = [];
  return Promise.resolve({
    historySize: 10,
    historyTtlSec: 1,
    idempotencyWindowSec: 1,
    node: () => {
      const n = broker.node();
      nodes.push(n);
      return Promise.resolve(n);
    },
    loseData: () => {
      broker.flush();
      return Promise.resolve();
    },
    close: async () => {
      for (const n of nodes) await n.close();
      broker.close();
    },
  });
});
