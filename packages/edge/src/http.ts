import { ERROR_CODES, type ErrorCode } from '@switchboard/core';
import type { HttpResponse } from './uws.js';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** Tracks whether a response was aborted; set up with {@link guard} before any `await`. */
export interface Guarded {
  aborted: boolean;
}

/** Registers `onAborted` (uWS requires it before any asynchronous work) and returns the flag it sets. */
export function guard(res: HttpResponse): Guarded {
  const state: Guarded = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  return state;
}

/** Writes a JSON response, corked, unless the client went away. */
export function sendJson(res: HttpResponse, g: Guarded, status: number, body: unknown): void {
  if (g.aborted) return;
  g.aborted = true;
  res.cork(() => {
    res
      .writeStatus(STATUS_TEXT[status] ?? `${status} Status`)
      .writeHeader('content-type', 'application/json')
      .end(JSON.stringify(body));
  });
}

/** Writes a plain-text response, corked, unless the client went away. */
export function sendText(res: HttpResponse, g: Guarded, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  if (g.aborted) return;
  g.aborted = true;
  res.cork(() => {
    res.writeStatus(STATUS_TEXT[status] ?? `${status} Status`).writeHeader('content-type', contentType).end(body);
  });
}

/** Answers with a registered error code and its HTTP status. */
export function sendError(res: HttpResponse, g: Guarded, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): void {
  sendJson(res, g, ERROR_CODES[code].http, { error: code, message, ...extra });
}

/**
 * Reads a request body up to `maxBytes`, copying each chunk (uWS neuters them on return). Calls
 * `onBody` with the whole body, or `onTooLarge` as soon as the limit is passed.
 */
export function readBody(
  res: HttpResponse,
  g: Guarded,
  maxBytes: number,
  onBody: (body: Buffer) => void,
  onTooLarge: () => void,
): void {
  collectBody(res, g, maxBytes, (earlier, last, size) => onBody(earlier.length === 0 ? Buffer.from(last.slice(0)) : joinChunks(earlier, last, size)), onTooLarge);
}

/**
 * Reads a request body up to `maxBytes` as UTF-8 text, like {@link readBody}. A body of one chunk (the
 * usual case) is decoded straight out of uWS's chunk: no copy of its bytes before the string is made.
 */
export function readBodyText(
  res: HttpResponse,
  g: Guarded,
  maxBytes: number,
  onBody: (text: string) => void,
  onTooLarge: () => void,
): void {
  collectBody(res, g, maxBytes, (earlier, last, size) => onBody((earlier.length === 0 ? Buffer.from(last) : joinChunks(earlier, last, size)).toString('utf8')), onTooLarge);
}

/**
 * Collects a body: every chunk but the last is copied as it comes; `onEnd` gets those and the last chunk,
 * which is valid only during that call.
 */
function collectBody(
  res: HttpResponse,
  g: Guarded,
  maxBytes: number,
  onEnd: (earlier: readonly Buffer[], last: ArrayBuffer, size: number) => void,
  onTooLarge: () => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  res.onData((chunk, isLast) => {
    if (done || g.aborted) return;
    size += chunk.byteLength;
    if (size > maxBytes) {
      done = true;
      onTooLarge();
      return;
    }
    if (!isLast) {
      chunks.push(Buffer.from(chunk.slice(0)));
      return;
    }
    done = true;
    onEnd(chunks, chunk, size);
  });
}

function joinChunks(earlier: readonly Buffer[], last: ArrayBuffer, size: number): Buffer {
  return Buffer.concat([...earlier, Buffer.from(last)], size);
}
