/**
 * What the cluster tests share: the environment of a session service or an edge over one standalone
 * redis-server, the session service's admin API, logins and authenticated valtronics clients.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { DEV_ADMIN_TOKEN } from '@switchboard/core';
import { TestClient, type SwitchboardProcess } from '@switchboard/testkit';

/** The CLI the tests start processes with. */
export const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/** The password of the users the tests create. */
export const PASSWORD = 'correct horse battery';

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Environment of a session service or an edge over the standalone Redis at `redisUrl`, plus `extra`. */
export function clusterEnv(redisUrl: string, nodeId: string, sessionUrl: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    REDIS_CLUSTER: '0',
    NODE_ID: nodeId,
    SWITCHBOARD_SESSION_URL: sessionUrl ?? 'http://127.0.0.1:1',
    SWITCHBOARD_SHARDS: '8',
    SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
    SWITCHBOARD_DRAIN_MS: '100',
    ...extra,
  };
}

/** Calls the session service's admin API with the dev admin token; resolves with the status. */
export async function adminCall(session: SwitchboardProcess, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${session.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return res.status;
}

/** Logs `username` in through an edge (`POST /v1/login`). */
export async function login(edge: SwitchboardProcess, username: string): Promise<{ token: string; session_id: string }> {
  const res = await fetch(`${edge.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }) });
  expect(res.status).toBe(200);
  return (await res.json()) as { token: string; session_id: string };
}

/** A valtronics client of `edge` authenticated with `token`. */
export async function authedClient(edge: SwitchboardProcess, token: string): Promise<TestClient> {
  const c = await TestClient.connect(`${edge.wsUrl}/ws`);
  c.send({ type: 'auth', token });
  expect(await c.nextOfType('auth_response', 8000)).toMatchObject({ success: true });
  return c;
}
