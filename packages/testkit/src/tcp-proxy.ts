/**
 * A TCP proxy a test controls, to put a network partition between one process and a server (an edge and
 * its Redis) without touching the others. `cut()` blackholes the link the way a partition does: no
 * connection is closed, nothing is refused, bytes in either direction simply stop arriving (held here,
 * as the kernels' buffers and retransmissions would hold them), and new connections are accepted but
 * not connected through. `heal()` lets everything through again, held bytes first, in order.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** A running proxy: its port, and the switch. */
export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (the proxy is protocol-agnostic; this is a convenience). */
  readonly url: string;
  /** Whether the link is cut now. */
  readonly isCut: boolean;
  /** Starts the partition. */
  cut(): void;
  /** Ends it: held bytes and held connections go through, in order. */
  heal(): void;
  /** Closes every connection and the listener. */
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  upstream: Socket | null;
  /** Bytes held while cut, per direction. */
  readonly toUpstream: Buffer[];
  readonly toClient: Buffer[];
}

/** Starts a proxy on a free port of 127.0.0.1 to `target`. */
export async function startTcpProxy(target: {
  readonly host: string;
  readonly port: number;
}): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let cut = false;

  const link = (p: Pair): void => {
    const up = connect(target.port, target.host);
    p.upstream = up;
    up.setNoDelay(true);
    up.on('data', (d: Buffer) => {
      if (cut) p.toClient.push(d);
      else p.client.write(d);
    });
    // The server side failing (Redis gone) is what the client must see: its connection closes with it.
    up.on('error', () => p.client.destroy());
    up.on('close', () => p.client.destroy());
    for (const d of p.toUpstream.splice(0)) up.write(d);
  };

  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    const p: Pair = { client, upstream: null, toUpstream: [], toClient: [] };
    pairs.add(p);
    client.on('data', (d: Buffer) => {
      if (cut || p.upstream === null) p.toUpstream.push(d);
      else p.upstream.write(d);
    });
    // A client that gives up (a reconnecting Redis client) ends its half; the pair goes with it.
    client.on('error', () => p.upstream?.destroy());
    client.on('close', () => {
      p.upstream?.destroy();
      pairs.delete(p);
    });
    if (!cut) link(p);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no port');
  const port = address.port;

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
    },
    heal() {
      cut = false;
      for (const p of pairs) {
        if (p.upstream === null) {
          link(p);
          continue;
        }
        for (const d of p.toUpstream.splice(0)) p.upstream.write(d);
        for (const d of p.toClient.splice(0)) p.client.write(d);
      }
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
