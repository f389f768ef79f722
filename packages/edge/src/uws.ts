import uWS from 'uWebSockets.js';

/**
 * The registry build of uWebSockets.js silently falls back to a slow pure-JS implementation when its
 * native binary does not load; that fallback lacks `getParts`. Refuse to run on it.
 */
export function assertNativeUws(): void {
  if (typeof (uWS as { getParts?: unknown }).getParts !== 'function') {
    throw new Error(
      'uWebSockets.js native binary did not load (pure-JS fallback detected); this platform/Node version is unsupported',
    );
  }
}

export { uWS };
export type { TemplatedApp, WebSocket, HttpResponse, HttpRequest, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
