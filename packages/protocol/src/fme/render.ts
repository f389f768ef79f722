/**
 * `fme` server frames: relayed messages (the sender's `ws_msg`, a string as is and anything else as its
 * JSON text), the two admin answers exactly as the seed shows them (numbers and booleans as strings), and
 * the error frame the seed leaves undefined (documented in docs/dialects/fme.md).
 */
import type { ErrorCode } from '@switchboard/core';

/** `{"ws_op":"error","ws_error":<code>,"ws_msg":<text>}`, plus `ws_request` (the refused op) when known. */
export function renderFmeError(err: { readonly code: ErrorCode; readonly message: string; readonly op?: string }): string {
  const out: Record<string, string> = { ws_op: 'error', ws_error: err.code, ws_msg: err.message };
  if (err.op !== undefined) out.ws_request = err.op;
  return JSON.stringify(out);
}

/** The frame a receiver gets for a relayed message whose `ws_msg` was `data` (JSON text). */
export function renderFmeRelay(data: string): string {
  // A string travels as its JSON literal; receivers get the string itself.
  return data.charCodeAt(0) === 34 /* " */ ? (JSON.parse(data) as string) : data;
}

/** One stream's count in a `getnumchannels()` answer. */
export interface FmeStreamCount {
  readonly stream: string;
  readonly numchannels: number;
}

/** `getnumchannels()`: `{"numchannels":"N","streams":[{"stream":"id","numchannels":"n"},…]}`. */
export function renderFmeNumChannels(total: number, streams: readonly FmeStreamCount[], truncated = false): string {
  const out: Record<string, unknown> = {
    numchannels: String(total),
    streams: streams.map((s) => ({ stream: s.stream, numchannels: String(s.numchannels) })),
  };
  if (truncated) out.truncated = 'true';
  return JSON.stringify(out);
}

/** One open channel (a connection's open stream) in a `getchannelinfo()` answer. */
export interface FmeChannelInfo {
  readonly port: number;
  readonly stream: string;
  readonly host: string;
  readonly writable: boolean;
}

/**
 * `getchannelinfo()`: `{"numchannels":"N","channels":[{"port","stream","host","writable"},…]}`. `total`
 * counts every channel; when the list was capped, `"truncated":"true"` says so.
 */
export function renderFmeChannelInfo(total: number, channels: readonly FmeChannelInfo[], truncated = false): string {
  const out: Record<string, unknown> = {
    numchannels: String(total),
    channels: channels.map((c) => ({ port: String(c.port), stream: c.stream, host: c.host, writable: c.writable ? 'true' : 'false' })),
  };
  if (truncated) out.truncated = 'true';
  return JSON.stringify(out);
}
