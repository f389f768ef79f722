/**
 * A token bucket refilled lazily on each `take`, so an idle connection costs no timer and no work.
 * `ratePerSec` tokens arrive per second up to `burst`.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    nowMs: number = Date.now(),
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** Takes `n` tokens if available; returns false (taking nothing) otherwise. */
  take(n = 1, nowMs: number = Date.now()): boolean {
    const elapsedMs = nowMs - this.lastMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerSec) / 1000);
      this.lastMs = nowMs;
    }
    if (this.tokens >= n) {
      this.tokens -= n;
      return true;
    }
    return false;
  }

  /** Tokens available now (for tests and metrics). */
  available(nowMs: number = Date.now()): number {
    const elapsedMs = Math.max(0, nowMs - this.lastMs);
    return Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerSec) / 1000);
  }
}
