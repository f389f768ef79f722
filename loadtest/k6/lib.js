// @ts-check
// Shared helpers of the k6 scripts: configuration from the environment, tokens, the valtronics frames.
import http from 'k6/http';

/** Base URL of an edge (or a load balancer in front of the edges). */
export const HTTP_URL = __ENV.SWITCHBOARD_URL || 'http://localhost:8000';
/** The WebSocket URL of the valtronics endpoint. */
export const WS_URL = (__ENV.SWITCHBOARD_WS_URL || HTTP_URL.replace(/^http/, 'ws')) + '/ws';
/** API key for POST /api/publish (the dev default works against `npm start` and `dev-cluster`). */
export const API_KEY = __ENV.SWITCHBOARD_API_KEY || 'dev-api-key';
/** The channel the scripts subscribe to and publish on. */
export const CHANNEL = __ENV.CHANNEL || 'alerts';

/**
 * Tokens for the virtual users. Admission allows 100 concurrent connections and 10 new ones per
 * minute per user, so a ramp needs many users: either `TOKENS` (comma-separated JWTs), or users
 * `${USER_PREFIX}0` … `${USER_PREFIX}${USERS - 1}` sharing `PASSWORD`, logged in once in setup().
 * @returns {string[]}
 */
export function tokens() {
  if (__ENV.TOKENS) return __ENV.TOKENS.split(',').filter((t) => t.length > 0);
  const users = Number(__ENV.USERS || 1);
  const prefix = __ENV.USER_PREFIX || 'load-';
  const password = __ENV.PASSWORD || '';
  /** @type {string[]} */
  const out = [];
  for (let i = 0; i < users; i++) {
    const res = http.post(`${HTTP_URL}/v1/login`, JSON.stringify({ username: `${prefix}${i}`, password }), {
      headers: { 'content-type': 'application/json' },
    });
    if (res.status !== 200) throw new Error(`login of ${prefix}${i} failed: ${res.status} ${String(res.body)}`);
    out.push(/** @type {{ token: string }} */ (res.json()).token);
  }
  return out;
}

/**
 * The auth frame of a virtual user.
 * @param {string[]} list
 * @returns {string}
 */
export function authFrame(list) {
  return JSON.stringify({ type: 'auth', token: list[(__VU - 1) % list.length] });
}

/** The subscribe frame (optionally filtered by `DEVICE_ID`). */
export function subscribeFrame() {
  /** @type {Record<string, unknown>} */
  const frame = { type: 'subscribe', channel: CHANNEL };
  if (__ENV.DEVICE_ID) frame.device_id = Number(__ENV.DEVICE_ID);
  return JSON.stringify(frame);
}

/**
 * Parses a server frame; null for anything that is not a JSON object.
 * @param {string} data
 * @returns {Record<string, any> | null}
 */
export function parse(data) {
  try {
    const v = JSON.parse(data);
    return v !== null && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

/**
 * Authenticates and subscribes as soon as the socket opens, and counts refused authentications.
 * @param {import('k6/ws').Socket} socket
 * @param {string[]} list tokens
 * @param {(m: Record<string, any>) => void} onRefused
 */
export function authAndSubscribe(socket, list, onRefused) {
  socket.on('open', () => {
    socket.send(authFrame(list));
    socket.send(subscribeFrame());
  });
  socket.on('message', (raw) => {
    const m = parse(raw);
    if (m && m.type === 'auth_response' && m.success !== true) onRefused(m);
  });
}
