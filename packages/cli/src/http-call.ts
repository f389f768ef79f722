/**
 * The CLI's HTTP calls to a server, with errors a person can act on: the URL tried, what went wrong in
 * words (not `fetch failed`), and what to do about it.
 */

/** A call that got no HTTP answer, or an answer that is not what the command needs. */
export class CallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallError';
  }
}

/** How long the CLI waits for a server before it says so. */
const CALL_TIMEOUT_MS = 10_000;

/** An answer: its status and its JSON body (`{}` when it had none or was not JSON). */
export interface Answer {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

/** Why a request got no answer, from the cause node's fetch attaches (`ECONNREFUSED` → "connection refused"). */
export function networkReason(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = cause instanceof Error && 'code' in cause ? String((cause as { code: unknown }).code) : '';
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${CALL_TIMEOUT_MS / 1000} s`;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused: nothing listens there';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was closed before an answer';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return cause instanceof Error ? cause.message : String(cause);
  }
}

/**
 * POSTs `body` as JSON to `path` on `base` with a bearer token. `what` names the server for the error
 * ("no session service at …"), `hint` says how to get one.
 */
export async function postJson(base: string, path: string, token: string, body: unknown, what: string, hint: string): Promise<Answer> {
  const url = new URL(path, base);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CallError(`no ${what} at ${base} (POST ${url.href}: ${networkReason(err)}).\n${hint}`);
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: not a Switchboard answer; the caller reports the status and says what it expected.
  }
  return { status: res.status, json };
}

/** `401 unauthorized: the API key was refused` from an error answer. */
export function describeRefusal(a: Answer): string {
  const code = typeof a.json.error === 'string' ? ` ${a.json.error}` : '';
  const message = typeof a.json.message === 'string' ? `: ${a.json.message}` : '';
  return `${a.status}${code}${message}`;
}
