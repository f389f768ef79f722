/** Driving a Switchboard deployment: tokens for subscribers, publishing through the HTTP API. */
import { DEV_API_KEY, DEV_JWT_SECRET } from '@switchboard/core';
import { hmacIssuer } from '@switchboard/session/service';
import { wallMs } from './protocol.js';
import type { SendFn } from './generator.js';

/** `n` dev tokens for users `load-0` … (admission limits are per user). */
export function devTokens(n: number): Promise<string[]> {
  const issuer = hmacIssuer(DEV_JWT_SECRET, { issuer: 'switchboard', audience: 'switchboard' });
  return Promise.all(Array.from({ length: n }, (_, i) => issuer.issue({ sub: `load-${i}`, ttlSec: 3600 })));
}

/** A payload of about `bytes` bytes of JSON carrying the send stamp `s`. */
export function stampedPayload(bytes: number): () => Record<string, unknown> {
  const pad = 'x'.repeat(Math.max(0, bytes - 32));
  return () => ({ s: wallMs(), p: pad });
}

/** Publishes batches through `POST /api/publish` of the given edges, in turn. */
export function httpPublisher(urls: readonly string[], channel: string, payloadBytes: number, attrs: () => Record<string, unknown> = () => ({})): SendFn {
  const payload = stampedPayload(payloadBytes);
  let next = 0;
  return async (n) => {
    const messages = [];
    for (let i = 0; i < n; i++) messages.push({ channel, attrs: attrs(), data: payload() });
    await postMessages(urls[next++ % urls.length]!, messages);
  };
}

/** One batch `POST /api/publish` to a Switchboard at `url` with the dev API key; a non-2xx answer is an error. */
export async function postMessages(url: string, messages: readonly Record<string, unknown>[]): Promise<void> {
  const res = await fetch(`${url}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
    body: JSON.stringify({ messages }),
  });
  if (!res.ok) throw new Error(`publish ${res.status}: ${(await res.text()).slice(0, 200)}`);
  await res.arrayBuffer();
}

/** `NODE_OPTIONS` for a Switchboard process (`extra`, e.g. the inspector), or nothing. */
export function nodeOptions(extra = ''): Record<string, string> {
  return extra ? { NODE_OPTIONS: extra } : {};
}

/** Session-service settings for load: the seed's per-user limits would refuse a load generator. */
export const LOAD_SESSION_ENV: Record<string, string> = {
  SWITCHBOARD_MAX_CONNECTIONS_TOTAL: '1000000',
  SWITCHBOARD_MAX_CONNECTIONS_PER_USER: '1000000',
  SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
  LOG_LEVEL: 'warn',
};

/** Edge (and all-in-one) settings for load. */
export const LOAD_EDGE_ENV: Record<string, string> = {
  SWITCHBOARD_MAX_CONNECTIONS_TOTAL: '1000000',
  SWITCHBOARD_MAX_CONNECTIONS_PER_USER: '1000000',
  // The load generator puts thousands of connections behind one user (one token per 5,000); the edges
  // send this cap with their reservations and the session service counts it across the cluster.
  SWITCHBOARD_MAX_SUBSCRIPTIONS_PER_USER: '1000000',
  SWITCHBOARD_NEW_CONNECTIONS_PER_USER_PER_MIN: '0',
  SWITCHBOARD_PUBLISH_MAX_BATCH: '10000',
  SWITCHBOARD_PUBLISH_MAX_BODY_BYTES: '16777216',
  SWITCHBOARD_AUTH_TIMEOUT_MS: '60000',
  SWITCHBOARD_MAX_BACKPRESSURE_BYTES: '4194304',
  LOG_LEVEL: 'warn',
};
