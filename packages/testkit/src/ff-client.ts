/**
 * Fleet Freedom frames for tests and load generators: `cmdName {JSON}` both ways, read off a
 * {@link TestClient} by name.
 */
import type { TestClient } from './ws-client.js';

/** A Fleet Freedom frame: its name (`getCompanyResponse`, `assetGeneralMerged`) and JSON body. */
export interface FfFrame {
  readonly name: string;
  readonly body: Record<string, unknown>;
}

/** Splits `name {JSON}`; null when the text is not such a frame. */
export function parseFfFrame(text: string): FfFrame | null {
  const m = /^([A-Za-z][A-Za-z0-9_]*)\s*([\s\S]*)$/.exec(text);
  if (!m) return null;
  try {
    const body = JSON.parse(m[2]!.trim() || '{}') as unknown;
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? { name: m[1]!, body: body as Record<string, unknown> } : null;
  } catch {
    return null;
  }
}

/** Sends `cmd {JSON}` (or the text as is). */
export function sendFf(c: TestClient, cmd: string, body?: Record<string, unknown>): void {
  c.send(body === undefined ? cmd : `${cmd} ${JSON.stringify(body)}`);
}

/** The next frame named `name` (whose body passes `pred`), removed from the client's buffer. */
export async function nextFf(
  c: TestClient,
  name: string,
  pred: (body: Record<string, unknown>) => boolean = () => true,
  timeoutMs = 3000,
): Promise<Record<string, unknown>> {
  const f = await c.nextFrame((fr) => {
    if (fr.binary) return false;
    const p = parseFfFrame(fr.text);
    return p !== null && p.name === name && pred(p.body);
  }, timeoutMs);
  return parseFfFrame(f.text)!.body;
}

/** Every buffered frame named `name` (removed), after waiting `ms`. */
export async function collectFf(c: TestClient, name: string | RegExp, ms: number): Promise<FfFrame[]> {
  await new Promise((r) => setTimeout(r, ms));
  const out: FfFrame[] = [];
  for (let i = 0; i < c.frames.length; ) {
    const f = c.frames[i]!;
    const p = f.binary ? null : parseFfFrame(f.text);
    if (p && (typeof name === 'string' ? p.name === name : name.test(p.name))) {
      out.push(p);
      c.frames.splice(i, 1);
    } else i++;
  }
  return out;
}
