/**
 * The session service as an edge sees it: every call goes over the Rpc seam to the service's handler
 * (`rpc-handler.ts`).
 */
import type { AdmissionResult, SubscriptionVerdict } from './admission.js';
import type { LoginResult, OpenSessionRequest, OpenSessionResult, ResumedSession, RevocationsPage, SessionApi, SubscriptionRecord, SubscriptionReservationRequest, TokenCheck } from './api.js';
import type { CheckpointEntry } from './repo.js';

/** The bits of an Rpc client this module needs (structurally the bus's `RpcClient`). */
export interface RpcCaller {
  call<T = unknown>(method: string, params: unknown, timeoutMs?: number): Promise<T>;
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
  openSession(req: OpenSessionRequest): Promise<OpenSessionResult> {
    return this.rpc.call('openSession', req);
  }
  checkToken(req: TokenCheck): Promise<{ ok: true } | { ok: false; message: string }> {
    return this.rpc.call('checkToken', req);
  }
  async logout(req: TokenCheck): Promise<void> {
    await this.rpc.call('logout', req);
  }
  resumeSession(sessionId: string): Promise<ResumedSession | null> {
    return this.rpc.call('resumeSession', { sessionId });
  }
  async recordSubscriptions(records: readonly SubscriptionRecord[]): Promise<void> {
    await this.rpc.call('recordSubscriptions', { records });
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

  revocationsSince(sinceMs?: number): Promise<RevocationsPage> {
    return this.rpc.call('revocationsSince', sinceMs !== undefined ? { sinceMs } : {});
  }

  reserveSubscriptions(req: SubscriptionReservationRequest): Promise<SubscriptionVerdict[]> {
    return this.rpc.call('reserveSubscriptions', req);
  }
}
