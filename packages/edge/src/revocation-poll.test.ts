/**
 * The edge's poll of the revocation log, against a scripted session service: the cursor follows the
 * service's clock and survives failed polls, pages are followed, and a user revocation closes only the
 * sockets that authenticated before it.
 */
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, createLogger, type Identity } from '@switchboard/core';
import type { RevocationsPage, TokenCheck } from '@switchboard/session';
import { ConnectionRegistry, type Conn } from './conn.js';
import { RevocationPoll } from './revocation-poll.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const MARGIN_MS = 1000;

/** A socket that records how it was closed. */
function conn(registry: ConnectionRegistry, n: number, identity: Identity | null, keys: string[]): Conn & { endedWith: number | null } {
  const c = {
    connId: `n:${n}`,
    dialect: 'valtronics',
    closed: false,
    identity,
    endedWith: null as number | null,
    ws: {
      end(code: number) {
        c.endedWith = code;
        c.closed = true;
      },
    },
  } as unknown as Conn & { endedWith: number | null };
  registry.add(c, 0);
  for (const k of keys) registry.index(c, k);
  return c;
}

/** A session service whose answers the test scripts; records the cursors it was asked with. */
function scripted() {
  const asked: (number | undefined)[] = [];
  const checked: TokenCheck[] = [];
  const s = {
    asked,
    checked,
    nowMs: 1_000_000,
    down: false,
    log: [] as { key: string; atMs: number }[],
    pageSize: 1000,
    /** Whether checkToken says the token is still good. */
    tokenOk: (_req: TokenCheck) => true,
    revocationsSince(sinceMs?: number): Promise<RevocationsPage> {
      asked.push(sinceMs);
      if (s.down) return Promise.reject(new Error('rpc timeout'));
      if (sinceMs === undefined) return Promise.resolve({ nowMs: s.nowMs, revocations: [], more: false });
      const rows = s.log.filter((r) => r.atMs >= sinceMs).sort((a, b) => a.atMs - b.atMs);
      return Promise.resolve({ nowMs: s.nowMs, revocations: rows.slice(0, s.pageSize), more: rows.length > s.pageSize });
    },
    checkToken(req: TokenCheck) {
      checked.push(req);
      return Promise.resolve(s.tokenOk(req) ? ({ ok: true } as const) : ({ ok: false, message: 'revoked' } as const));
    },
  };
  return s;
}

describe('RevocationPoll', () => {
  it('starts from the service clock, keeps its cursor through failed polls, and then catches up', async () => {
    const svc = scripted();
    const registry = new ConnectionRegistry('n');
    const poll = new RevocationPoll(svc, registry, logger, { pollMs: 1000, marginMs: MARGIN_MS });
    await poll.poll();
    expect(svc.asked).toEqual([undefined]);
    const a = conn(registry, 1, { userId: 'ann', roles: [], sessionId: 's-a' }, ['session:s-a', 'user:default/ann']);
    await poll.poll();
    expect(svc.asked.at(-1)).toBe(1_000_000 - MARGIN_MS);
    // The service becomes unreachable; meanwhile a revocation happens and its clock moves far past the margin.
    svc.down = true;
    svc.nowMs = 1_010_000;
    svc.log.push({ key: 'session:s-a', atMs: 1_002_000 });
    await poll.poll();
    await poll.poll();
    expect(a.closed).toBe(false);
    svc.nowMs = 1_060_000;
    svc.down = false;
    await poll.poll();
    // The cursor did not move while the polls failed: the revocation 58 s back is still seen.
    expect(svc.asked.at(-1)).toBe(1_000_000 - MARGIN_MS);
    expect(a.endedWith).toBe(CLOSE_CODES.session_revoked.code);
    await poll.poll();
    expect(svc.asked.at(-1)).toBe(1_060_000 - MARGIN_MS);
  });

  it('follows pages until no more follow', async () => {
    const svc = scripted();
    svc.pageSize = 2;
    const registry = new ConnectionRegistry('n');
    const poll = new RevocationPoll(svc, registry, logger, { pollMs: 1000, marginMs: MARGIN_MS });
    await poll.poll();
    const conns = [1, 2, 3, 4, 5].map((i) => conn(registry, i, { userId: `u${i}`, roles: [] }, [`session:s${i}`]));
    svc.log = [1, 2, 3, 4, 5].map((i) => ({ key: `session:s${i}`, atMs: 1_000_000 + i }));
    await poll.poll();
    expect(conns.map((c) => c.endedWith)).toEqual(Array(5).fill(CLOSE_CODES.session_revoked.code));
    // Each page continues from its last revocation (inclusive: a page may end inside a millisecond).
    expect(svc.asked.slice(1)).toEqual([999_000, 1_000_002, 1_000_003, 1_000_004]);
  });

  it('a user revocation closes the sockets of tokens from an earlier second outright, and asks the service about the others', async () => {
    const svc = scripted();
    const registry = new ConnectionRegistry('n');
    const poll = new RevocationPoll(svc, registry, logger, { pollMs: 1000, marginMs: MARGIN_MS });
    await poll.poll();
    const atMs = 1_000_500;
    const key = 'user:default/bo';
    const old = conn(registry, 1, { userId: 'bo', roles: [], iat: 999, sessionId: 's-old' }, [key]);
    // Same second as the revocation: its session began before it (the service says revoked) or after.
    const sameBefore = conn(registry, 2, { userId: 'bo', roles: [], iat: 1000, sessionId: 's-before' }, [key]);
    const sameAfter = conn(registry, 3, { userId: 'bo', roles: [], iat: 1000, sessionId: 's-after' }, [key]);
    // Logged in again after the password change, and a Fleet Freedom socket (no iat) whose session is new.
    const newer = conn(registry, 4, { userId: 'bo', roles: [], iat: 1001, sessionId: 's-new' }, [key]);
    const ghost = conn(registry, 5, { userId: 'bo', roles: [], sessionId: 's-ghost' }, [key]);
    const other = conn(registry, 6, { userId: 'cy', roles: [], iat: 999 }, ['user:default/cy']);
    svc.tokenOk = (req) => req.tokenSessionId !== 's-before';
    svc.log = [{ key, atMs }];
    await poll.poll();
    expect([old, sameBefore, sameAfter, newer, ghost, other].map((c) => c.endedWith)).toEqual([4012, 4012, null, null, null, null]);
    // The token of an earlier second was never asked about; the others were, with what identifies them.
    expect(svc.checked.map((c) => c.tokenSessionId).sort()).toEqual(['s-after', 's-before', 's-ghost', 's-new']);
    expect(svc.checked.find((c) => c.tokenSessionId === 's-new')).toEqual({ userId: 'bo', tokenSessionId: 's-new', issuedAt: 1001 });
  });

  it('closes a revoked user’s socket when the service cannot be asked about it (it reconnects and is judged then)', async () => {
    const svc = scripted();
    const registry = new ConnectionRegistry('n');
    const poll = new RevocationPoll({ revocationsSince: (s) => svc.revocationsSince(s), checkToken: () => Promise.reject(new Error('rpc timeout')) }, registry, logger, {
      pollMs: 1000,
      marginMs: MARGIN_MS,
    });
    await poll.poll();
    const c = conn(registry, 1, { userId: 'di', roles: [], sessionId: 's' }, ['user:default/di']);
    svc.log = [{ key: 'user:default/di', atMs: 1_000_000 }];
    await poll.poll();
    expect(c.endedWith).toBe(CLOSE_CODES.session_revoked.code);
  });
});
