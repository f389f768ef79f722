/**
 * The page's calls to the edge that served it. The admin JWT from `POST /admin/login` is kept in
 * sessionStorage (this tab only, gone when it closes) and sent as a bearer header; it is never put in a
 * URL. The session admin token itself is sent once, in the login POST body, and never stored.
 */

const STORAGE_KEY = 'switchboard.admin.login';

/** A login: the short-lived admin JWT and the edge that issued it. */
export interface Login {
  readonly token: string;
  /** ms since the epoch. */
  readonly expiresAt: number;
  readonly node: string;
}

/** An error answer of the edge: its HTTP status and Switchboard error code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The login kept by this tab, unless it expired. */
export function savedLogin(): Login | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const l = JSON.parse(raw) as Login;
    return typeof l.token === 'string' && l.expiresAt > Date.now() + 5000 ? l : null;
  } catch {
    return null;
  }
}

/** Forgets the login. */
export function forgetLogin(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const code = typeof body.error === 'string' ? body.error : 'error';
    throw new ApiError(
      res.status,
      code,
      typeof body.message === 'string' ? body.message : `${res.status} ${res.statusText}`,
    );
  }
  return body as T;
}

/** Exchanges the session admin token for an admin JWT (`POST /admin/login`) and keeps it. */
export async function logIn(adminToken: string): Promise<Login> {
  const res = await fetch('/admin/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: adminToken }),
    cache: 'no-store',
  });
  const a = await answer<{ token: string; expires_at: number; node: string }>(res);
  const login: Login = { token: a.token, expiresAt: a.expires_at, node: a.node };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(login));
  return login;
}

/** GET (or POST with a JSON body) an admin route with the JWT. */
export async function call<T>(login: Login, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { headers: { authorization: `Bearer ${login.token}` }, cache: 'no-store' };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers = { authorization: `Bearer ${login.token}`, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  return answer<T>(await fetch(path, init));
}

/** The WebSocket endpoint of this edge's native dialect. */
export function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}
