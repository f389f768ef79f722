import { isIP } from 'node:net';

/** An address as printed by Node or uWS, with an IPv4-mapped IPv6 prefix (`::ffff:`) removed. */
export function normalizeAddress(addr: string): string {
  const a = addr.trim().toLowerCase();
  const m = /^(?:0{1,4}:){5}ffff:|^::ffff:/.exec(a);
  if (m) {
    const rest = a.slice(m[0].length);
    if (isIP(rest) === 4) return rest;
  }
  return a;
}

/**
 * The client's address: the connection's peer, unless that peer is a trusted reverse proxy, in which
 * case the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. Headers from anyone else
 * are ignored, so a client cannot pick the address its rate limits and lockouts are counted under.
 */
export function clientAddress(remote: string, forwardedFor: string | readonly string[] | undefined, trusted: ReadonlySet<string>): string {
  const peer = normalizeAddress(remote);
  if (trusted.size === 0 || !trusted.has(peer) || forwardedFor === undefined) return peer;
  const hops = (typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(','))
    .split(',')
    .map((h) => normalizeAddress(h))
    .filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return peer;
    if (!trusted.has(hop)) return hop;
  }
  return peer;
}
