import { SwitchboardError, type ErrorCode } from '@switchboard/core';

/** Serves one request: the method name and its JSON params; resolves with a JSON result. */
export type RpcHandler = (method: string, params: unknown) => Promise<unknown>;

/** Request/reply between edges and the session service. */
export interface RpcClient {
  /**
   * Calls `method`; rejects with a {@link SwitchboardError} carrying the handler's code, or
   * `unavailable` when no answer came within `timeoutMs`.
   */
  call<T = unknown>(method: string, params: unknown, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/** A running server side of the seam. */
export interface RpcServer {
  close(): Promise<void>;
}

/** The error a handler's failure travels as. */
export interface RpcErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
}

/** Turns a handler failure into what travels back: registered codes as they are, anything else hidden. */
export function toRpcError(err: unknown): RpcErrorBody {
  if (err instanceof SwitchboardError) return { code: err.code, message: err.message };
  return { code: 'internal_error', message: 'the session service failed to handle the request' };
}

/** The client-side error for an answer that did not come. */
export function rpcTimeout(method: string, timeoutMs: number): SwitchboardError {
  return new SwitchboardError('unavailable', `the session service did not answer ${method} within ${timeoutMs} ms`);
}
