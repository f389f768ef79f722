import { refusal, type Admission, type AdmissionLimits, type AdmissionRequest, type AdmissionResult } from './admission.js';

const WINDOW_MS = 60_000;

/** Drops timestamps older than the window and returns how many remain. */
function prune(log: number[], nowMs: number): number {
  let drop = 0;
  while (drop < log.length && log[drop]! <= nowMs - WINDOW_MS) drop++;
  if (drop > 0) log.splice(0, drop);
  return log.length;
}

/**
 * In-process admission for the all-in-one server: the same rules as the Redis one, exact sliding
 * one-minute windows for the connection rates.
 */
export class MemoryAdmission implements Admission {
  private readonly byConn = new Map<string, AdmissionRequest>();
  private readonly perUser = new Map<string, number>();
  private readonly userLog = new Map<string, number[]>();
  private readonly ipLog = new Map<string, number[]>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  admit(req: AdmissionRequest): Promise<AdmissionResult> {
    const nowMs = this.now();
    const l = this.limits;
    if (this.byConn.has(req.connId)) return Promise.resolve({ ok: true });
    if ((this.perUser.get(req.userId) ?? 0) >= l.maxConnectionsPerUser) return Promise.resolve(refusal('user_concurrent', l));
    if (this.byConn.size >= l.maxConnectionsTotal) return Promise.resolve(refusal('total_concurrent', l));
    const ulog = this.userLog.get(req.userId) ?? [];
    if (l.newConnectionsPerUserPerMin > 0 && prune(ulog, nowMs) >= l.newConnectionsPerUserPerMin)
      return Promise.resolve(refusal('user_rate', l));
    const ilog = this.ipLog.get(req.ip) ?? [];
    if (l.newConnectionsPerIpPerMin > 0 && prune(ilog, nowMs) >= l.newConnectionsPerIpPerMin)
      return Promise.resolve(refusal('ip_rate', l));
    this.byConn.set(req.connId, req);
    this.perUser.set(req.userId, (this.perUser.get(req.userId) ?? 0) + 1);
    if (l.newConnectionsPerUserPerMin > 0) {
      ulog.push(nowMs);
      this.userLog.set(req.userId, ulog);
    }
    if (l.newConnectionsPerIpPerMin > 0) {
      ilog.push(nowMs);
      this.ipLog.set(req.ip, ilog);
    }
    this.gc(nowMs);
    return Promise.resolve({ ok: true });
  }

  release(connId: string): Promise<void> {
    const req = this.byConn.get(connId);
    if (req) {
      this.byConn.delete(connId);
      const n = (this.perUser.get(req.userId) ?? 1) - 1;
      if (n <= 0) this.perUser.delete(req.userId);
      else this.perUser.set(req.userId, n);
    }
    return Promise.resolve();
  }

  count(): Promise<number> {
    return Promise.resolve(this.byConn.size);
  }

  private lastGcMs = 0;

  /** Forgets rate logs of users and addresses idle for a whole window, so memory stays bounded. */
  private gc(nowMs: number): void {
    if (nowMs - this.lastGcMs < WINDOW_MS) return;
    this.lastGcMs = nowMs;
    for (const logs of [this.userLog, this.ipLog])
      for (const [k, log] of logs) if (prune(log, nowMs) === 0) logs.delete(k);
  }
}
