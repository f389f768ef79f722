/** The Rpc contract: one suite for the memory and the Redis Streams implementations. */
import { afterEach, describe, expect, it } from 'vitest';
import { SwitchboardError } from '@switchboard/core';
import type { RpcClient, RpcHandler, RpcServer } from './rpc.js';

/** What an implementation gives the contract. */
export interface RpcWorld {
  serve(handler: RpcHandler): Promise<RpcServer>;
  client(timeoutMs: number): Promise<RpcClient>;
  close(): Promise<void>;
}

/** Runs the Rpc contract against worlds made by `make`. */
export function runRpcContract(name: string, make: () => Promise<RpcWorld>): void {
  describe(`Rpc contract: ${name}`, () => {
    let world: RpcWorld | null = null;
    afterEach(async () => {
      await world?.close();
      world = null;
    });

    it('answers a call with the handler result, params and result as JSON', async () => {
      world = await make();
      await world.serve((method, params) => Promise.resolve({ method, params, n: 1 }));
      const c = await world.client(3000);
      expect(await c.call('echo', { a: [1, 'ü'], b: null })).toEqual({ method: 'echo', params: { a: [1, 'ü'], b: null }, n: 1 });
    });

    it('carries registered errors back with code and message; hides other failures', async () => {
      world = await make();
      await world.serve((method) =>
        method === 'refuse' ? Promise.reject(new SwitchboardError('connection_limit', 'too many')) : Promise.reject(new Error('secret detail')),
      );
      const c = await world.client(3000);
      await expect(c.call('refuse', {})).rejects.toMatchObject({ code: 'connection_limit', message: 'too many' });
      const other = await c.call('boom', {}).catch((e: unknown) => e);
      expect(other).toBeInstanceOf(SwitchboardError);
      expect(other).toMatchObject({ code: 'internal_error' });
      expect((other as Error).message).not.toContain('secret detail');
    });

    it('rejects with unavailable when no answer comes in time', async () => {
      world = await make();
      await world.serve(() => new Promise(() => {}));
      const c = await world.client(300);
      const t0 = Date.now();
      await expect(c.call('slow', {})).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - t0).toBeLessThan(2000);
    });

    it('keeps concurrent calls of several clients apart', async () => {
      world = await make();
      await world.serve(async (_m, p) => {
        await new Promise((r) => setTimeout(r, Math.random() * 20));
        return p;
      });
      const clients = await Promise.all([world.client(5000), world.client(5000)]);
      const calls = Array.from({ length: 100 }, (_, i) => clients[i % 2]!.call('id', { i }));
      expect(await Promise.all(calls)).toEqual(Array.from({ length: 100 }, (_, i) => ({ i })));
    });
  });
}
