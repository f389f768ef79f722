import { MemoryBroker } from '@switchboard/bus';
import { runStoreContract } from './store.contract.js';
import { MemoryObjectStore } from './store-memory.js';

runStoreContract('memory', () => {
  const broker = new MemoryBroker({ historySize: 1000, historyTtlSec: 60 });
  const nodes: { close(): Promise<void> }[] = [];
  return Promise.resolve({
    store: (options) => Promise.resolve(new MemoryObjectStore(broker, options)),
    bus: () => {
      const n = broker.node();
      nodes.push(n);
      return Promise.resolve(n);
    },
    close: async () => {
      for (const n of nodes) await n.close();
      broker.close();
    },
  });
});
