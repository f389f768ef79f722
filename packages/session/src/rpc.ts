/**
 * The session service over the Rpc seam: a handler that validates each edge request before it reaches
 * the service, and the client edges use. Edges can reach only these methods — never the admin ones.
 */
import { z } from 'zod';
import { SwitchboardError } from '@switchboard/core';
import type { AdmissionResult } from './admission.js';
import type { LoginResult, OpenSessionResult, SessionApi } from './api.js';
import type { SessionMetrics } from './metrics.js';
import type { CheckpointEntry, StoredSubscription } from './repo.js';

/** The bits of an Rpc client this module needs (structurally the bus's `RpcClient`). */
export interface RpcCaller {
  call<T = unknown>(method: string, params: unknown, timeoutMs?: number): Promise<T>;
}

const id = z.string().min(1).max(256);
const position = z.object({ epoch: z.string().min(1).max(64), offset: z.number().int().min(0) });
const subscription = z.object({
  channel: z.string().min(1).max(256),
  dialect: z.string().min(1).max(32),
  request: z.record(z.string(), z.unknown()),
  position: position.optional(),
});

const METHODS = {
  login: z.object({ username: z.string().max(256), password: z.string().max(4096), ip: z.string().max(64) }),
  admit: z.object({ userId: id, connId: id, nodeId: id, ip: z.string().max(64) }),
  release: z.object({ connId: id }),
  heartbeat: z.object({ nodeId: id }),
  openSession: z.object({ userId: id, roles: z.array(z.string().max(64)).max(64), tenant: z.string().max(128).optional(), sessionId: id.optional() }),
  saveSubscription: z.object({ sessionId: id, sub: subscription }),
  removeSubscription: z.object({ sessionId: id, channel: z.string().min(1).max(256) }),
  checkpoint: z.object({ entries: z.array(z.object({ sessionId: id, channel: z.string().min(1).max(256), position })).max(100_000) }),
  touchSession: z.object({ sessionId: id }),
  touchSessions: z.object({ sessionIds: z.array(id).max(100_000) }),
  releaseNode: z.object({ nodeId: id }),
} as const;

type Method = keyof typeof METHODS;

/** Serves edge requests with `service`, validating every request first. */
export function sessionRpcHandler(service: SessionApi, metrics: SessionMetrics): (method: string, params: unknown) => Promise<unknown> {
  return async (method, params) => {
    const end = metrics.rpcDuration.startTimer({ method: method in METHODS ? method : 'unknown' });
    try {
      const result = await dispatch(service, method, params);
      end({ outcome: 'ok' });
      return result;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  };
}

async function dispatch(service: SessionApi, method: string, params: unknown): Promise<unknown> {
  if (!Object.prototype.hasOwnProperty.call(METHODS, method)) throw new SwitchboardError('invalid_message', `unknown method ${method.slice(0, 64)}`);
  const parsed = METHODS[method as Method].safeParse(params);
  if (!parsed.success) throw new SwitchboardError('invalid_message', `bad ${method} request: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const p = parsed.data as Record<string, unknown>;
  switch (method as Method) {
    case 'login':
      return service.login(p as { username: string; password: string; ip: string });
    case 'admit':
      return service.admit(p as { userId: string; connId: string; nodeId: string; ip: string });
    case 'release':
      return service.release(p.connId as string);
    case 'heartbeat':
      return service.heartbeat(p.nodeId as string);
    case 'openSession':
      return service.openSession(p as { userId: string; roles: string[]; tenant?: string; sessionId?: string });
    case 'saveSubscription':
      return service.saveSubscription(p.sessionId as string, p.sub as StoredSubscription);
    case 'removeSubscription':
      return service.removeSubscription(p.sessionId as string, p.channel as string);
    case 'checkpoint':
      return service.checkpoint(p.entries as CheckpointEntry[]);
    case 'touchSession':
      return service.touchSession(p.sessionId as string);
    case 'touchSessions':
      return service.touchSessions(p.sessionIds as string[]);
    case 'releaseNode':
      return service.releaseNode(p.nodeId as string);
  }
}

/**
 * Logins hash with scrypt on purpose, and a burst of them queues at the service: they get this many
 * times the ordinary Rpc deadline, so a slow but healthy service still answers them.
 */
const LOGIN_TIMEOUT_FACTOR = 4;

/** The session service as an edge sees it: every call goes over the Rpc seam. */
export class RpcSessionClient implements SessionApi {
  /** `timeoutMs` is the ordinary deadline of a call (`SWITCHBOARD_RPC_TIMEOUT_MS`). */
  constructor(
    private readonly rpc: RpcCaller,
    private readonly timeoutMs: number,
  ) {}

  login(req: { username: string; password: string; ip: string }): Promise<LoginResult> {
    return this.rpc.call('login', req, this.timeoutMs * LOGIN_TIMEOUT_FACTOR);
  }
  admit(req: { userId: string; connId: string; nodeId: string; ip: string }): Promise<AdmissionResult> {
    return this.rpc.call('admit', req);
  }
  async release(connId: string): Promise<void> {
    await this.rpc.call('release', { connId });
  }
  async heartbeat(nodeId: string): Promise<void> {
    await this.rpc.call('heartbeat', { nodeId });
  }
  openSession(req: { userId: string; roles: readonly string[]; tenant?: string; sessionId?: string }): Promise<OpenSessionResult> {
    return this.rpc.call('openSession', req);
  }
  async saveSubscription(sessionId: string, sub: StoredSubscription): Promise<void> {
    await this.rpc.call('saveSubscription', { sessionId, sub });
  }
  async removeSubscription(sessionId: string, channel: string): Promise<void> {
    await this.rpc.call('removeSubscription', { sessionId, channel });
  }
  async checkpoint(entries: readonly CheckpointEntry[]): Promise<void> {
    await this.rpc.call('checkpoint', { entries });
  }
  async touchSession(sessionId: string): Promise<void> {
    await this.rpc.call('touchSession', { sessionId });
  }
  async touchSessions(sessionIds: readonly string[]): Promise<void> {
    await this.rpc.call('touchSessions', { sessionIds });
  }
  releaseNode(nodeId: string): Promise<number> {
    return this.rpc.call('releaseNode', { nodeId });
  }
}
