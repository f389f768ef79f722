/** Helpers for the `gooduncle` tests: a client that asks and waits for the response to its own request. */
import type { TestClient } from '@switchboard/testkit';
import { expect } from 'vitest';

/** The topics the gooduncle tests run with (`GOODUNCLE_TOPICS`). */
export const TEST_TOPICS = {
  orders: { indexed: ['status', 'customer'] },
  menu: { indexed: ['category'], write: ['chef'] },
  secrets: { indexed: ['kind'], read: ['staff'], write: ['admin'] },
  notes: {},
  public: { read: 'anyone', write: 'anyone' },
};

/** A seed envelope, as the tests read it. */
export interface Envelope {
  session: { id: string; roles: string[] };
  request: { time: number; payload: Record<string, unknown> | null };
  response: { time: number; code: string; errors: { field: string | null; code: string; problem: string }[]; payload: Record<string, unknown> };
  passport: Record<string, unknown>[];
}

let tags = 0;

/**
 * Sends a request with a unique `tag` (unknown keys are ignored by the server and echoed in
 * `request.payload`), and resolves with the first response to it.
 */
export async function ask(c: TestClient, request: Record<string, unknown>, timeoutMs = 3000): Promise<Envelope> {
  const tag = ++tags;
  c.send({ ...request, tag });
  return (await c.next((m) => isResponse(m) && (m as unknown as Envelope).request.payload?.tag === tag, timeoutMs)) as unknown as Envelope;
}

/** Sends a frame and resolves with the next envelope (for frames that carry no tag). */
export async function askRaw(c: TestClient, frame: string, timeoutMs = 3000): Promise<Envelope> {
  c.send(frame);
  return (await c.next(isResponse, timeoutMs)) as unknown as Envelope;
}

/** Whether a JSON frame is a seed envelope. */
export function isResponse(m: Record<string, unknown>): boolean {
  return typeof m.session === 'object' && typeof m.response === 'object' && Array.isArray(m.passport);
}

/** The next live-query update answering a subscribe whose request carried `tag`. */
export async function nextUpdate(c: TestClient, sub: Envelope, timeoutMs = 3000): Promise<Envelope> {
  const tag = sub.request.payload?.tag;
  return (await c.next((m) => isResponse(m) && (m as unknown as Envelope).request.payload?.tag === tag, timeoutMs)) as unknown as Envelope;
}

/** Every buffered live-query update of a subscribe (waiting `ms` first). */
export async function updatesOf(c: TestClient, sub: Envelope, ms: number): Promise<Envelope[]> {
  const tag = sub.request.payload?.tag;
  return (await c.collect(ms, (m) => isResponse(m) && (m as unknown as Envelope).request.payload?.tag === tag)) as unknown as Envelope[];
}

/** Asserts an `ok` response and returns its payload. */
export function ok(res: Envelope): Record<string, unknown> {
  expect(res.response.code, JSON.stringify(res.response.errors)).toBe('ok');
  expect(res.response.errors).toEqual([]);
  return res.response.payload;
}

/** Keeps a Good Uncle client alive as the seed's clients do: "`" every 300 ms, until stopped. */
export function keepAlive(c: TestClient): () => void {
  const t = setInterval(() => {
    if (c.open) c.send('`');
  }, 300);
  return () => clearInterval(t);
}
