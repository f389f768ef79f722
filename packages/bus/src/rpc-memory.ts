import { SwitchboardError } from '@switchboard/core';
import { rpcTimeout, toRpcError, type RpcClient, type RpcHandler, type RpcServer } from './rpc.js';

/**
 * In-process Rpc for the all-in-one server: calls reach the handler directly, with the same error and
 * timeout semantics as over Redis (params and results are copied through JSON, as they would be).
 */
export class MemoryRpc {
  private handler: RpcHandler | null = null;

  /** Registers the serving handler (one at a time, like one service). */
  serve(handler: RpcHandler): RpcServer {
    this.handler = handler;
    return {
      close: () => {
        if (this.handler === handler) this.handler = null;
        return Promise.resolve();
      },
    };
  }

  /** A client of this in-process service. */
  client(defaultTimeoutMs = 5000): RpcClient {
    return {
      call: <T>(method: string, params: unknown, timeoutMs = defaultTimeoutMs): Promise<T> => {
        const handler = this.handler;
        return new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => reject(rpcTimeout(method, timeoutMs)), timeoutMs);
          if (!handler) return;
          handler(method, JSON.parse(JSON.stringify(params ?? null)) as unknown).then(
            (result) => {
              clearTimeout(timer);
              resolve(JSON.parse(JSON.stringify(result ?? null)) as T);
            },
            (err: unknown) => {
              clearTimeout(timer);
              const e = toRpcError(err);
              reject(new SwitchboardError(e.code, e.message));
            },
          );
        });
      },
      close: () => Promise.resolve(),
    };
  }
}
