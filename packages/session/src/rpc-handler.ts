/**
 * The session service's side of the Rpc seam: a handler that validates each edge request before it
 * reaches the service. Edges can reach only these methods — never the admin ones.
 */
import { z } from 'zod';
import { SwitchboardError } from '@switchboard/core';
import { MAX_SUBSCRIPTION_DELTA } from './admission.js';
import { MAX_RESERVATIONS_PER_CALL, MAX_SUBSCRIPTION_RECORDS_PER_CALL, type OpenSessionRequest, type SubscriptionRecord, type SessionApi, type SubscriptionReservationRequest, type TokenCheck } from './api.js';
import type { SessionMetrics } from './metrics.js';
import type { CheckpointEntry, StoredSubscription } from './repo.js';

const id = z.string().min(1).max(256);
const position = z.object({ epoch: z.string().min(1).max(64), offset: z.number().int().min(0) });
const subscription = z.object({
  key: z.string().min(1).max(256),
  dialect: z.string().min(1).max(32),
  request: z.record(z.string(), z.unknown()),
  position: position.optional(),
});

const tokenCheck = z.object({ userId: id, tenant: z.string().max(128).optional(), tokenSessionId: id.optional(), issuedAt: z.number().int().optional() });

const METHODS = {
  login: z.object({ username: z.string().max(256), password: z.string().max(4096), ip: z.string().max(64) }),
  admit: z.object({ userId: id, connId: id, nodeId: id, ip: z.string().max(64) }),
  release: z.object({ connId: id }),
  heartbeat: z.object({ nodeId: id }),
  openSession: z.object({
    userId: id,
    roles: z.array(z.string().max(64)).max(64),
    tenant: z.string().max(128).optional(),
    sessionId: id.optional(),
    tokenSessionId: id.optional(),
    issuedAt: z.number().int().optional(),
  }),
  checkToken: tokenCheck,
  logout: tokenCheck,
  resumeSession: z.object({ sessionId: id }),
  saveSubscription: z.object({ sessionId: id, sub: subscription }),
  removeSubscription: z.object({ sessionId: id, key: z.string().min(1).max(256) }),
  recordSubscriptions: z.object({
    records: z
      .array(z.union([z.object({ sessionId: id, save: subscription }), z.object({ sessionId: id, remove: z.string().min(1).max(256) })]))
      .max(MAX_SUBSCRIPTION_RECORDS_PER_CALL),
  }),
  checkpoint: z.object({ entries: z.array(z.object({ sessionId: id, key: z.string().min(1).max(256), position })).max(100_000) }),
  touchSession: z.object({ sessionId: id }),
  touchSessions: z.object({ sessionIds: z.array(id).max(100_000) }),
  releaseNode: z.object({ nodeId: id }),
  revocationsSince: z.object({ sinceMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() }),
  reserveSubscriptions: z.object({
    maxPerUser: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    deltas: z
      .array(
        z.object({
          connId: id,
          delta: z.number().int().min(-MAX_SUBSCRIPTION_DELTA).max(MAX_SUBSCRIPTION_DELTA).refine((n) => n !== 0, 'a delta is never 0'),
          force: z.boolean().optional(),
        }),
      )
      .max(MAX_RESERVATIONS_PER_CALL),
  }),
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
      return service.openSession(p as unknown as OpenSessionRequest);
    case 'checkToken':
      return service.checkToken(p as unknown as TokenCheck);
    case 'logout':
      return service.logout(p as unknown as TokenCheck);
    case 'resumeSession':
      return service.resumeSession(p.sessionId as string);
    // The single-record calls of edges older than `recordSubscriptions`, served during a rolling upgrade.
    case 'saveSubscription':
      return service.recordSubscriptions([{ sessionId: p.sessionId as string, save: p.sub as StoredSubscription }]);
    case 'removeSubscription':
      return service.recordSubscriptions([{ sessionId: p.sessionId as string, remove: p.key as string }]);
    case 'recordSubscriptions':
      return service.recordSubscriptions(p.records as SubscriptionRecord[]);
    case 'checkpoint':
      return service.checkpoint(p.entries as CheckpointEntry[]);
    case 'touchSession':
      return service.touchSession(p.sessionId as string);
    case 'touchSessions':
      return service.touchSessions(p.sessionIds as string[]);
    case 'releaseNode':
      return service.releaseNode(p.nodeId as string);
    case 'revocationsSince':
      return service.revocationsSince(p.sinceMs as number | undefined);
    case 'reserveSubscriptions':
      return service.reserveSubscriptions(p as unknown as SubscriptionReservationRequest);
  }
}
