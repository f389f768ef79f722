/**
 * An edge whose revocation announcements never arrive (the service's announcement reaches nobody) still
 * closes the revoked sockets with 4012, through its poll of the revocation log
 * (`SWITCHBOARD_REVOCATION_POLL_SEC`); a user who logged in again after a password change stays connected.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CLOSE_CODES } from '@switchboard/core';
import type { TestClient } from '@switchboard/testkit';
import { startTestNode, type TestNode } from './helpers.js';

const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let node: TestNode | null = null;
afterEach(async () => {
  node?.session.stopAnnouncing();
  await node?.close();
  node = null;
});

/** A node with a 1 s poll whose revocation announcements are lost. */
async function deafNode(): Promise<TestNode> {
  node = await startTestNode({ revocationPollSec: 1 });
  node.session.onRevoke(() => Promise.resolve());
  return node;
}

async function loginAndConnect(n: TestNode, username: string, password = PASSWORD): Promise<{ c: TestClient; token: string; sessionId: string }> {
  const login = await n.session.login({ username, password, ip: '127.0.0.1' });
  if (!login.ok) throw new Error(login.message);
  const c = await n.connect();
  c.send({ type: 'auth', token: login.token });
  expect(await c.nextOfType('auth_response')).toMatchObject({ success: true });
  return { c, token: login.token, sessionId: login.sessionId };
}

async function closeCode(c: TestClient, ms: number): Promise<number | null> {
  const closed = await Promise.race([c.closed, sleep(ms).then(() => null)]);
  return closed?.code ?? null;
}

describe('revocations an edge never heard of', () => {
  it('a logout closes the session’s socket with 4012 within a poll interval or two', async () => {
    const n = await deafNode();
    await n.session.createUser({ name: 'lou', password: PASSWORD });
    const { c, sessionId } = await loginAndConnect(n, 'lou');
    await sleep(1200);
    await n.session.logout({ userId: 'lou', tokenSessionId: sessionId });
    expect(await closeCode(c, 3500)).toBe(CLOSE_CODES.session_revoked.code);
  });

  it('a password change closes the sockets opened before it; the user logged in again after it stays connected', async () => {
    const n = await deafNode();
    await n.session.createUser({ name: 'mo', password: PASSWORD });
    const before = await loginAndConnect(n, 'mo');
    await sleep(1200);
    expect(await n.session.changePassword('mo', `${PASSWORD} 2`)).toBe(true);
    const after = await loginAndConnect(n, 'mo', `${PASSWORD} 2`);
    expect(await closeCode(before.c, 3500)).toBe(CLOSE_CODES.session_revoked.code);
    // Later polls see the same revocation again (it is within their margin): the new socket stays.
    expect(await closeCode(after.c, 3000)).toBeNull();
    after.c.send({ type: 'subscribe', channel: 'alerts' });
    expect(await after.c.nextOfType('subscribe_response')).toMatchObject({ success: true });
  });
});
