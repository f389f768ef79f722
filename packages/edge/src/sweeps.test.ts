import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectionRegistry, type Conn } from './conn.js';
import type { Hub } from './hub.js';
import type { MountedDialect } from './listeners.js';
import { EdgeMetrics } from './metrics.js';
import { Sweeps } from './sweeps.js';

// The decisions of the backpressure pass over connections whose send buffers this test sets: which reader
// gets 4008 after its buffer (end) and which is dropped at once (close). Real sockets cover the paths end
// to end in test/valtronics.bad-input.test.ts and test/abuse-limits.test.ts.

const LIMIT = 1024 * 1024;
const INTERVAL_MS = 250;

interface FakeConn {
  conn: Conn;
  buffered: number;
  how: 'open' | 'end' | 'close';
}

function fake(registry: ConnectionRegistry, id: string): FakeConn {
  const f: FakeConn = { conn: null as unknown as Conn, buffered: 0, how: 'open' };
  const ws = {
    getBufferedAmount: () => f.buffered,
    end: () => {
      f.how = 'end';
      f.conn.closed = true;
    },
    close: () => {
      f.how = 'close';
      f.conn.closed = true;
    },
  };
  f.conn = { connId: id, dialect: 'valtronics', closed: false, ws, identity: { userId: id, roles: [] }, tokenExpMs: 0, drainedAtMs: 0, keptUpAtMs: Date.now(), ip: '127.0.0.1' } as unknown as Conn;
  registry.add(f.conn, 0);
  return f;
}

describe('slow consumers: the backpressure pass', () => {
  let registry: ConnectionRegistry;
  let hub: { sentSinceSweep: boolean; bytesSinceSweep: number; topicSentSinceSweep: boolean; backlogged: Set<Conn> };
  let sweeps: Sweeps;
  let metrics: EdgeMetrics;
  let promRegistry: Registry;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    registry = new ConnectionRegistry('n');
    hub = { sentSinceSweep: false, bytesSinceSweep: 0, topicSentSinceSweep: false, backlogged: new Set() };
    promRegistry = new Registry();
    metrics = new EdgeMetrics(promRegistry);
    const dialects = new Map([['valtronics', { name: 'valtronics', limits: { maxBackpressureBytes: LIMIT, silenceTimeoutMs: 0 } } as unknown as MountedDialect]]);
    sweeps = new Sweeps(registry, hub as unknown as Hub, metrics, dialects, INTERVAL_MS, 0, 32 * LIMIT);
    sweeps.start();
  });

  afterEach(() => {
    sweeps.stop();
    vi.useRealTimers();
  });

  // Topic publishes (any socket may have received them): every pass looks at every connection.
  const traffic = (ms: number) => {
    hub.sentSinceSweep = true;
    hub.topicSentSinceSweep = true;
    vi.advanceTimersByTime(ms);
  };
  // Only direct frames, each pass: the hub lists the sockets they left backlogged.
  const direct = (ms: number, backlogged: readonly FakeConn[] = []) => {
    for (let t = 0; t < ms; t += INTERVAL_MS) {
      hub.sentSinceSweep = true;
      for (const f of backlogged) hub.backlogged.add(f.conn);
      vi.advanceTimersByTime(INTERVAL_MS);
    }
  };
  const counted = async (reader: string) => (await promRegistry.getSingleMetric('switchboard_slow_consumer_disconnects_total')!.get()).values.find((v) => v.labels.reader === reader)?.value ?? 0;

  it('a reader over its limit that still drains gets 4008 after its buffer; one that drained nothing is dropped', async () => {
    const reading = fake(registry, 'reading');
    const stopped = fake(registry, 'stopped');
    const fine = fake(registry, 'fine');
    traffic(INTERVAL_MS);
    reading.buffered = 2 * LIMIT;
    stopped.buffered = 2 * LIMIT;
    fine.buffered = LIMIT / 8;
    reading.conn.drainedAtMs = Date.now() - 10;
    // The other has shown no sign of reading for a while (no drain, never empty at a sweep).
    stopped.conn.drainedAtMs = Date.now() - 4 * INTERVAL_MS;
    traffic(INTERVAL_MS);
    expect([reading.how, stopped.how, fine.how]).toEqual(['end', 'close', 'open']);
    expect(await counted('slow')).toBe(1);
    expect(await counted('stalled')).toBe(1);
  });

  it('a reader that stopped reading is dropped at a quarter of its limit, but not at the first sweep that sees its backlog', () => {
    const stopped = fake(registry, 'stopped');
    const burst = fake(registry, 'burst');
    traffic(INTERVAL_MS);
    // Both empty at that sweep; both backlogged at the next one (formed anywhere in between: not judged yet).
    stopped.buffered = LIMIT / 2;
    burst.buffered = LIMIT / 2;
    traffic(INTERVAL_MS);
    expect([stopped.how, burst.how]).toEqual(['open', 'open']);
    // One drains (it is reading, only behind); the other shows no sign of reading for another interval.
    burst.conn.drainedAtMs = burst.conn.keptUpAtMs = Date.now();
    traffic(INTERVAL_MS);
    expect([stopped.how, burst.how]).toEqual(['close', 'open']);
  });

  it('over the node budget the largest buffers go first, until the rest fits', () => {
    const readers = Array.from({ length: 40 }, (_, i) => fake(registry, `r${i}`));
    traffic(INTERVAL_MS);
    // 40 readers at 0.9 of their limit each: 36 limits together, over the 32-limit budget by 4.
    readers.forEach((r, i) => {
      r.buffered = i < 5 ? 0.95 * LIMIT : 0.9 * LIMIT;
      r.conn.drainedAtMs = Date.now();
    });
    traffic(INTERVAL_MS);
    const closed = readers.filter((r) => r.how !== 'open');
    expect(closed.length).toBe(5);
    expect(closed.every((r) => r.buffered === 0.95 * LIMIT && r.how === 'end')).toBe(true);
  });

  it('a flood does not wait for the regular interval: the pass runs as soon as a share of the budget was sent', () => {
    const stopped = fake(registry, 'stopped');
    traffic(INTERVAL_MS);
    stopped.buffered = 2 * LIMIT;
    hub.sentSinceSweep = true;
    hub.topicSentSinceSweep = true;
    hub.bytesSinceSweep = 8 * LIMIT;
    vi.advanceTimersByTime(30);
    expect(stopped.how).not.toBe('open');
    // Without that much sent, only the regular interval looks.
    const later = fake(registry, 'later');
    later.buffered = 2 * LIMIT;
    hub.sentSinceSweep = true;
    hub.topicSentSinceSweep = true;
    hub.bytesSinceSweep = 1024;
    vi.advanceTimersByTime(30);
    expect(later.how).toBe('open');
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(later.how).not.toBe('open');
  });

  it('with only direct frames a pass looks at the sockets the hub listed and those still backlogged; every socket every eighth interval', () => {
    const listed = fake(registry, 'listed');
    const unlisted = fake(registry, 'unlisted');
    const behind = fake(registry, 'behind');
    traffic(INTERVAL_MS);
    listed.buffered = 2 * LIMIT;
    unlisted.buffered = 2 * LIMIT;
    behind.buffered = LIMIT / 8;
    listed.conn.drainedAtMs = behind.conn.drainedAtMs = Date.now();
    direct(INTERVAL_MS, [listed, behind]);
    expect([listed.how, unlisted.how, behind.how]).toEqual(['end', 'open', 'open']);
    // Watched from now on without being listed again: over its limit later, it is found at the next pass.
    behind.buffered = 2 * LIMIT;
    behind.conn.drainedAtMs = Date.now();
    direct(INTERVAL_MS);
    expect(behind.how).toBe('end');
    // The unlisted one (another write filled it) waits for the pass over every connection.
    direct(5 * INTERVAL_MS);
    expect(unlisted.how).toBe('open');
    direct(2 * INTERVAL_MS);
    expect(unlisted.how).not.toBe('open');
  });

  it('a backlog that no pass could see form is not taken for a stall at the first pass that sees it', () => {
    const quiet = fake(registry, 'quiet');
    traffic(INTERVAL_MS);
    // Seven passes over listed sockets only; meanwhile another write leaves more than a quarter of its
    // limit, first seen by the eighth pass (over every socket).
    direct(7 * INTERVAL_MS);
    quiet.buffered = LIMIT / 2;
    direct(INTERVAL_MS);
    expect(quiet.how).toBe('open');
    // Now watched: no sign of reading for an interval and a half, and it goes.
    direct(INTERVAL_MS);
    expect(quiet.how).toBe('close');
  });
});
