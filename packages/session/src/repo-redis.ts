/**
 * The SessionRepo in Redis. Users are JSON strings (`SET NX`); sessions are hashes with a sliding TTL
 * (`_` = owner, `sub:<key>` = subscription, `pos:<key>` = checkpointed position); failed logins
 * are small hashes with a TTL; admission is atomic in Lua over keys that share the `{adm}` hash tag,
 * so it also runs on a Redis Cluster (one slot). So are the per-user subscription counts (`sc:<user>`, a
 * hash connId → count, and `st:<user>`, their total), dropped with the connection's admission.
 */
import type { Cluster, Redis } from 'ioredis';
import { isPlainObject } from '@switchboard/core';
import type { AdmissionLimits, AdmissionRequest, AdmissionResult, AdmissionRule, SubscriptionDelta, SubscriptionVerdict } from './admission.js';
import { refusal } from './admission.js';
import { ATTEMPT_HOLD_MS, ATTEMPT_STALE_MS, type AttemptReservation, type CheckpointEntry, type FailureState, type LockoutPolicy, type RevocationEntry, type SessionRecord, type SessionRepo, type StoredSubscription, type UserRecord } from './repo.js';

type Client = Redis | Cluster;

const userKey = (name: string) => `sb:user:${name}`;
const sessionKey = (id: string) => `sb:sess:${id}`;
const failKey = (key: string) => `sb:fail:${key}`;
const slotKey = (key: string) => `sb:slot:${key}`;
const revokedKey = (key: string) => `sb:revoked:${key}`;
/** The revocation log: one sorted set (member: revoked key, score: atMs), one slot on a Redis Cluster. */
const REVOCATION_LOG = 'sb:{revlog}:log';
const ADM = {
  conns: 'sb:{adm}:conns',
  beats: 'sb:{adm}:hb',
  user: (u: string) => `sb:{adm}:u:${u}`,
  node: (n: string) => `sb:{adm}:n:${n}`,
  rateUser: (u: string) => `sb:{adm}:ru:${u}`,
  rateIp: (ip: string) => `sb:{adm}:ri:${ip}`,
  subTotal: (u: string) => `sb:{adm}:st:${u}`,
};

const ADMIT = `
-- KEYS: conns, user set, node set, user rate zset, ip rate zset, heartbeats
-- ARGV: connId, member (user \\31 node), now ms, max per user, max total, per-minute user, per-minute ip, node
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'ok' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'user_concurrent' end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return 'total_concurrent' end
local now = tonumber(ARGV[3])
local perUser = tonumber(ARGV[6])
local perIp = tonumber(ARGV[7])
if perUser > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[4]) >= perUser then return 'user_rate' end
end
if perIp > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[5]) >= perIp then return 'ip_rate' end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[6], 'NX', now, ARGV[8])
if perUser > 0 then redis.call('ZADD', KEYS[4], now, ARGV[1]); redis.call('PEXPIRE', KEYS[4], 60000) end
if perIp > 0 then redis.call('ZADD', KEYS[5], now, ARGV[1]); redis.call('PEXPIRE', KEYS[5], 60000) end
return 'ok'
`;

// A released connection's subscriptions stop counting for its user (inlined where connections are released).
const DROP_SUBS_CALL = (user: string, connId: string) => `
local held = tonumber(redis.call('HGET', 'sb:{adm}:sc:' .. ${user}, ${connId}) or '0')
if held > 0 then
  redis.call('HDEL', 'sb:{adm}:sc:' .. ${user}, ${connId})
  if redis.call('DECRBY', 'sb:{adm}:st:' .. ${user}, held) <= 0 then redis.call('DEL', 'sb:{adm}:st:' .. ${user}) end
end`;

// Releases one connection; its user and node are read from the conns hash, so the keys are built here
// (all under the {adm} tag, hence in the same slot as KEYS[1]).
const RELEASE = `
local member = redis.call('HGET', KEYS[1], ARGV[1])
if not member then return 0 end
local sep = string.find(member, '\\31', 1, true)
local user = string.sub(member, 1, sep - 1)
local node = string.sub(member, sep + 1)
redis.call('SREM', 'sb:{adm}:u:' .. user, ARGV[1])
redis.call('SREM', 'sb:{adm}:n:' .. node, ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
${DROP_SUBS_CALL('user', 'ARGV[1]')}
return 1
`;

// Releases every connection of the given nodes (ARGV), or — with ARGV[1] = 'dead' — of the nodes whose
// last heartbeat is older than ARGV[2]. Returns {node, released, …}.
const REAP = `
-- KEYS: heartbeats, conns
local nodes
if ARGV[1] == 'dead' then
  nodes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
else
  nodes = { ARGV[2] }
end
local out = {}
for _, node in ipairs(nodes) do
  local nodeKey = 'sb:{adm}:n:' .. node
  local conns = redis.call('SMEMBERS', nodeKey)
  for _, connId in ipairs(conns) do
    local member = redis.call('HGET', KEYS[2], connId)
    if member then
      local sep = string.find(member, '\\31', 1, true)
      local user = string.sub(member, 1, sep - 1)
      redis.call('SREM', 'sb:{adm}:u:' .. user, connId)
      redis.call('HDEL', KEYS[2], connId)
      ${DROP_SUBS_CALL('user', 'connId')}
    end
  end
  redis.call('DEL', nodeKey)
  redis.call('ZREM', KEYS[1], node)
  table.insert(out, node)
  table.insert(out, #conns)
end
return out
`;

// Applies subscription deltas in order (repo.ts reserveSubscriptions); each connection's user is read from
// the conns hash, so its count keys are built here (under the {adm} tag, in the same slot as KEYS[1]).
const RESERVE_SUBS = `
-- KEYS: conns. ARGV: max per user, then (connId, delta, force 0|1) per delta.
local max = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 3 do
  local connId = ARGV[i]
  local delta = tonumber(ARGV[i + 1])
  local member = redis.call('HGET', KEYS[1], connId)
  if not member then
    if delta > 0 then table.insert(out, 'not_admitted') else table.insert(out, 'ok') end
  else
    local user = string.sub(member, 1, string.find(member, '\\31', 1, true) - 1)
    local counts = 'sb:{adm}:sc:' .. user
    local totalKey = 'sb:{adm}:st:' .. user
    local total = tonumber(redis.call('GET', totalKey) or '0')
    if delta > 0 and ARGV[i + 2] ~= '1' and total + delta > max then
      table.insert(out, 'over_cap')
    else
      local held = tonumber(redis.call('HGET', counts, connId) or '0')
      if delta < -held then delta = -held end
      if held + delta > 0 then redis.call('HSET', counts, connId, held + delta) else redis.call('HDEL', counts, connId) end
      if total + delta > 0 then redis.call('SET', totalKey, total + delta) else redis.call('DEL', totalKey) end
      table.insert(out, 'ok')
    end
  end
end
return out
`;

const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
`;

const PUT_IF_EXISTS = `
-- ARGV: subscription key, subscription JSON, position ("epoch offset", or "" for none)
if redis.call('HEXISTS', KEYS[1], '_') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'sub:' .. ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'pos:' .. ARGV[1], ARGV[3]) end
return 1
`;

/**
 * Checkpoints of several sessions in one call (one slot on a Cluster): KEYS are session hashes, ARGV the
 * subscription key and position of each, in order. A subscription that is gone is not brought back.
 */
const CHECKPOINT = `
local n = 0
for i = 1, #KEYS do
  local key = ARGV[2 * i - 1]
  if redis.call('HEXISTS', KEYS[i], 'sub:' .. key) == 1 then
    redis.call('HSET', KEYS[i], 'pos:' .. key, ARGV[2 * i])
    n = n + 1
  end
end
return n
`;

/**
 * Most checkpoints in one script call on a standalone Redis: an edge's checkpoint lists every session
 * whose channel moved in the last interval (on a node with 100,000 busy per-device channels, most of
 * them), and one call per entry cost Redis a script run each; 256 keep one call well under a millisecond.
 */
const CHECKPOINTS_PER_CALL = 256;

const FAIL = `
-- ARGV: now ms, threshold, base sec, max sec, window sec
local now = tonumber(ARGV[1])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local threshold = tonumber(ARGV[2])
local until_ms = 0
if n >= threshold then
  local sec = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(30, n - threshold))
  until_ms = now + sec * 1000
end
redis.call('HSET', KEYS[1], 'u', until_ms)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[5]) * 1000, until_ms - now))
return { n, until_ms }
`;

// Reserves a login attempt before its password is checked (repo.ts reserveAttempt).
const RESERVE = `
-- ARGV: now ms, threshold, window sec, hold ms, stale ms
-- Fields: n reserved attempts (in flight or failed), f failed ones, u locked until, r last reservation.
local now = tonumber(ARGV[1])
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local u = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
if u > now then return { 0, u } end
if n >= tonumber(ARGV[2]) and u == 0 then
  local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
  if now - r < tonumber(ARGV[5]) then return { 2, now + 1000 } end
  -- The attempts in flight never reported back (their checker died): only settled failures count.
  n = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
end
n = n + 1
if n > tonumber(ARGV[2]) then u = now + tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], 'n', n, 'u', u, 'r', now)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[3]) * 1000, u - now))
return { 1, n }
`;

// Settles a reserved attempt that failed: the count stays (the reservation counted it), the lock follows it.
const ATTEMPT_FAILED = `
-- ARGV: now ms, threshold, base sec, max sec, window sec
local now = tonumber(ARGV[1])
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if n == 0 then n = 1; redis.call('HSET', KEYS[1], 'n', 1) end
redis.call('HINCRBY', KEYS[1], 'f', 1)
local threshold = tonumber(ARGV[2])
local until_ms = 0
if n >= threshold then
  local sec = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(30, n - threshold))
  until_ms = now + sec * 1000
end
redis.call('HSET', KEYS[1], 'u', until_ms)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[5]) * 1000, until_ms - now))
return { n, until_ms }
`;

// Appends to the revocation log and trims what is older than the TTL; the whole log expires with the
// last revocation's TTL.
const LOG_REVOCATION = `
-- ARGV: revoked key, at ms, trim cutoff ms, ttl ms
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

type Scripted = Client & {
  sbLogRevocation(...args: (string | number)[]): Promise<number>;
  sbReserve(...args: (string | number)[]): Promise<[number, number]>;
  sbAttemptFailed(...args: (string | number)[]): Promise<[number, number]>;
  sbAdmit(...args: (string | number)[]): Promise<string>;
  sbRelease(...args: (string | number)[]): Promise<number>;
  sbReserveSubs(...args: (string | number)[]): Promise<string[]>;
  sbReap(...args: (string | number)[]): Promise<(string | number)[]>;
  sbTouch(...args: (string | number)[]): Promise<string[] | null>;
  sbPutIfExists(...args: (string | number)[]): Promise<number>;
  sbCheckpoint(...args: (string | number)[]): Promise<number>;
  sbFail(...args: (string | number)[]): Promise<[number, number]>;
};

function parseUser(raw: string | null): UserRecord | null {
  if (raw === null) return null;
  const v: unknown = JSON.parse(raw);
  if (!isPlainObject(v) || typeof v.name !== 'string' || typeof v.passwordHash !== 'string' || !Array.isArray(v.roles)) return null;
  return v as unknown as UserRecord;
}

function parseSession(id: string, flat: string[], ttlMs: number): SessionRecord | null {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  const owner = fields.get('_');
  if (!owner) return null;
  const o = JSON.parse(owner) as { userId: string; roles: string[]; tenant?: string; createdAt?: number };
  const subscriptions: StoredSubscription[] = [];
  for (const [k, v] of fields) {
    if (!k.startsWith('sub:')) continue;
    const sub = JSON.parse(v) as StoredSubscription;
    const pos = fields.get(`pos:${sub.key}`);
    if (pos) {
      const [epoch, offset] = pos.split(' ');
      subscriptions.push({ ...sub, position: { epoch: epoch!, offset: Number(offset) } });
    } else subscriptions.push(sub);
  }
  return {
    id,
    userId: o.userId,
    roles: o.roles,
    ...(o.tenant !== undefined ? { tenant: o.tenant } : {}),
    expiresAt: Date.now() + ttlMs,
    createdAt: o.createdAt ?? 0,
    subscriptions,
  };
}

/** The Redis implementation of {@link SessionRepo}. */
export class RedisSessionRepo implements SessionRepo {
  private readonly r: Scripted;
  /** Sessions' keys hash to different Cluster slots, so a Cluster takes one checkpoint per call. */
  private readonly checkpointsPerCall: number;

  /** Uses `client` (standalone or cluster); the caller owns connecting and closing it. */
  constructor(
    client: Client,
    private readonly limits: AdmissionLimits,
  ) {
    const scripts: [string, number, string][] = [
      ['sbAdmit', 6, ADMIT],
      ['sbRelease', 1, RELEASE],
      ['sbReserveSubs', 1, RESERVE_SUBS],
      ['sbReap', 2, REAP],
      ['sbTouch', 1, TOUCH],
      ['sbPutIfExists', 1, PUT_IF_EXISTS],
      ['sbFail', 1, FAIL],
      ['sbReserve', 1, RESERVE],
      ['sbAttemptFailed', 1, ATTEMPT_FAILED],
      ['sbLogRevocation', 1, LOG_REVOCATION],
    ];
    for (const [name, keys, lua] of scripts) client.defineCommand(name, { numberOfKeys: keys, lua });
    // One key per call on a Cluster (its pipelines route by each command's declared key); on a standalone
    // Redis the key count varies and is given first at each call.
    client.defineCommand('sbCheckpoint', client.isCluster ? { numberOfKeys: 1, lua: CHECKPOINT } : { lua: CHECKPOINT });
    this.r = client as Scripted;
    this.checkpointsPerCall = client.isCluster ? 1 : CHECKPOINTS_PER_CALL;
  }

  async createUser(user: UserRecord): Promise<boolean> {
    return (await this.r.set(userKey(user.name), JSON.stringify(user), 'NX')) === 'OK';
  }

  async getUser(name: string): Promise<UserRecord | null> {
    return parseUser(await this.r.get(userKey(name)));
  }

  async deleteUser(name: string): Promise<boolean> {
    return (await this.r.del(userKey(name))) === 1;
  }

  async setPasswordHash(name: string, passwordHash: string): Promise<boolean> {
    const user = await this.getUser(name);
    if (!user) return false;
    return (await this.r.set(userKey(name), JSON.stringify({ ...user, passwordHash }), 'XX')) === 'OK';
  }

  async createSession(s: Omit<SessionRecord, 'expiresAt' | 'subscriptions' | 'createdAt'>, ttlSec: number): Promise<SessionRecord> {
    const createdAt = Date.now();
    const owner = JSON.stringify({ userId: s.userId, roles: s.roles, ...(s.tenant !== undefined ? { tenant: s.tenant } : {}), createdAt });
    await this.r.multi().del(sessionKey(s.id)).hset(sessionKey(s.id), '_', owner).pexpire(sessionKey(s.id), ttlSec * 1000).exec();
    return { ...s, expiresAt: createdAt + ttlSec * 1000, createdAt, subscriptions: [] };
  }

  async deleteSession(id: string): Promise<boolean> {
    return (await this.r.del(sessionKey(id))) === 1;
  }

  async touchSession(id: string, ttlSec: number): Promise<SessionRecord | null> {
    const flat = await this.r.sbTouch(sessionKey(id), ttlSec * 1000);
    return flat ? parseSession(id, flat, ttlSec * 1000) : null;
  }

  async putSubscription(id: string, sub: StoredSubscription): Promise<void> {
    // The position travels in its own field, where checkpoints update it.
    const { position, ...stored } = sub;
    await this.r.sbPutIfExists(sessionKey(id), sub.key, JSON.stringify(stored), position ? `${position.epoch} ${position.offset}` : '');
  }

  async removeSubscription(id: string, key: string): Promise<void> {
    await this.r.hdel(sessionKey(id), `sub:${key}`, `pos:${key}`);
  }

  async checkpoint(entries: readonly CheckpointEntry[]): Promise<void> {
    const calls: Promise<number>[] = [];
    for (let i = 0; i < entries.length; i += this.checkpointsPerCall) {
      const part = entries.slice(i, i + this.checkpointsPerCall);
      const args: string[] = [];
      for (const e of part) args.push(sessionKey(e.sessionId));
      for (const e of part) args.push(e.key, `${e.position.epoch} ${e.position.offset}`);
      calls.push(this.checkpointsPerCall === 1 ? this.r.sbCheckpoint(...args) : this.r.sbCheckpoint(part.length, ...args));
    }
    await Promise.all(calls);
  }

  async failures(key: string, nowMs: number): Promise<FailureState> {
    const [n, u] = await this.r.hmget(failKey(key), 'n', 'u');
    const lockedUntilMs = Number(u ?? 0);
    return { count: Number(n ?? 0), lockedUntilMs: lockedUntilMs > nowMs ? lockedUntilMs : 0 };
  }

  async recordFailure(key: string, policy: LockoutPolicy, nowMs: number): Promise<FailureState> {
    const [count, lockedUntilMs] = await this.r.sbFail(failKey(key), nowMs, policy.threshold, policy.baseSec, policy.maxSec, policy.windowSec);
    return { count: Number(count), lockedUntilMs: Number(lockedUntilMs) };
  }

  async clearFailures(key: string): Promise<void> {
    await this.r.del(failKey(key));
  }

  async reserveAttempt(key: string, policy: LockoutPolicy, nowMs: number): Promise<AttemptReservation> {
    const [verdict, v] = await this.r.sbReserve(failKey(key), nowMs, policy.threshold, policy.windowSec, ATTEMPT_HOLD_MS, ATTEMPT_STALE_MS);
    if (Number(verdict) === 1) return { ok: true, count: Number(v) };
    return Number(verdict) === 2 ? { ok: false, lockedUntilMs: Number(v), busy: true } : { ok: false, lockedUntilMs: Number(v) };
  }

  async attemptFailed(key: string, policy: LockoutPolicy, nowMs: number): Promise<FailureState> {
    const [count, lockedUntilMs] = await this.r.sbAttemptFailed(failKey(key), nowMs, policy.threshold, policy.baseSec, policy.maxSec, policy.windowSec);
    return { count: Number(count), lockedUntilMs: Number(lockedUntilMs) };
  }

  async takeSlot(key: string, ms: number): Promise<boolean> {
    return (await this.r.set(slotKey(key), '1', 'PX', ms, 'NX')) === 'OK';
  }

  async revoke(key: string, atMs: number, ttlSec: number): Promise<void> {
    await Promise.all([
      this.r.set(revokedKey(key), String(atMs), 'EX', ttlSec),
      this.r.sbLogRevocation(REVOCATION_LOG, key, atMs, Date.now() - ttlSec * 1000, ttlSec * 1000),
    ]);
  }

  async revocationsSince(sinceMs: number, limit: number): Promise<RevocationEntry[]> {
    if (limit <= 0) return [];
    const flat = await this.r.zrangebyscore(REVOCATION_LOG, sinceMs, '+inf', 'WITHSCORES', 'LIMIT', 0, limit);
    const out: RevocationEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ key: flat[i]!, atMs: Number(flat[i + 1]) });
    return out;
  }

  async revokedAt(key: string): Promise<number | null> {
    const v = await this.r.get(revokedKey(key));
    return v === null ? null : Number(v);
  }

  async admit(req: AdmissionRequest): Promise<AdmissionResult> {
    const l = this.limits;
    const verdict = await this.r.sbAdmit(
      ADM.conns,
      ADM.user(req.userId),
      ADM.node(req.nodeId),
      ADM.rateUser(req.userId),
      ADM.rateIp(req.ip),
      ADM.beats,
      req.connId,
      `${req.userId}\x1f${req.nodeId}`,
      Date.now(),
      l.maxConnectionsPerUser,
      l.maxConnectionsTotal,
      l.newConnectionsPerUserPerMin,
      l.newConnectionsPerIpPerMin,
      req.nodeId,
    );
    return verdict === 'ok' ? { ok: true } : refusal(verdict as AdmissionRule, l);
  }

  async release(connId: string): Promise<void> {
    await this.r.sbRelease(ADM.conns, connId);
  }

  count(): Promise<number> {
    return this.r.hlen(ADM.conns);
  }

  async reserveSubscriptions(deltas: readonly SubscriptionDelta[], maxPerUser: number): Promise<SubscriptionVerdict[]> {
    if (deltas.length === 0) return [];
    const args: (string | number)[] = [maxPerUser];
    for (const d of deltas) args.push(d.connId, d.delta, d.force ? 1 : 0);
    return (await this.r.sbReserveSubs(ADM.conns, ...args)) as SubscriptionVerdict[];
  }

  async subscriptionsOf(userId: string): Promise<number> {
    return Number((await this.r.get(ADM.subTotal(userId))) ?? 0);
  }

  async heartbeat(nodeId: string, nowMs: number): Promise<void> {
    await this.r.zadd(ADM.beats, nowMs, nodeId);
  }

  async reapDeadNodes(deadMs: number, nowMs: number): Promise<{ node: string; released: number }[]> {
    const flat = await this.r.sbReap(ADM.beats, ADM.conns, 'dead', nowMs - deadMs);
    const out: { node: string; released: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ node: String(flat[i]), released: Number(flat[i + 1]) });
    return out;
  }

  async releaseNode(nodeId: string): Promise<number> {
    const flat = await this.r.sbReap(ADM.beats, ADM.conns, 'node', nodeId);
    return Number(flat[1] ?? 0);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
