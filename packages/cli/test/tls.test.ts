/**
 * `wss://` straight from the edge (for operators without a TLS-terminating ingress): a real
 * `switchboard start` process with a certificate and key, a WebSocket client that trusts only that
 * certificate, HTTPS health checks, and SIGHUP reloading a renewed certificate while an open connection
 * keeps working.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { get as httpsGet } from 'node:https';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
const dir = mkdtempSync(join(tmpdir(), 'sb-tls-'));

/** A self-signed certificate for 127.0.0.1 and localhost. */
function certificate(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key };
}

function open(url: string, ca: string): Promise<{ ws: WebSocket; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca: readFileSync(ca) });
    ws.once('open', () => resolve({ ws, fingerprint: (ws as unknown as { _socket: TLSSocket })._socket.getPeerCertificate().fingerprint256 }));
    ws.once('error', reject);
  });
}

let proc: SwitchboardProcess | null = null;
afterAll(async () => {
  await proc?.stop();
});

describe('TLS from the edge', () => {
  it('serves wss:// and https://, and reloads a renewed certificate on SIGHUP without dropping connections', async () => {
    const first = certificate('first');
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renameSync(first.cert, live.cert);
    renameSync(first.key, live.key);
    const port = await freePort();
    proc = await startSwitchboard(
      BIN,
      'start',
      { PORT: String(port), SESSION_PORT: String(await freePort()), SWITCHBOARD_TLS_CERT_FILE: live.cert, SWITCHBOARD_TLS_KEY_FILE: live.key },
      30_000,
      'SESSION_PORT',
    );
    const https = (path: string, ca: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsGet(`https://127.0.0.1:${port}${path}`, { ca: readFileSync(ca) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
    expect(await https('/healthz', live.cert)).toBe(200);
    // Plain HTTP is not spoken on a TLS listener.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();

    const a = await open(`wss://127.0.0.1:${port}/ws`, live.cert);
    a.ws.send(JSON.stringify({ type: 'ping', id: 1 }));
    expect(JSON.parse(String(await new Promise((r) => a.ws.once('message', r))))).toMatchObject({ type: 'pong', id: 1 });

    // Renew: the new files replace the old ones, then SIGHUP.
    const second = certificate('second');
    const secondPem = readFileSync(second.cert);
    renameSync(second.cert, live.cert);
    renameSync(second.key, live.key);
    proc.child.kill('SIGHUP');
    let b: { ws: WebSocket; fingerprint: string } | null = null;
    for (let i = 0; i < 50 && !b; i++) {
      try {
        b = await open(`wss://127.0.0.1:${port}/ws`, live.cert);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(b).not.toBeNull();
    expect(b!.fingerprint).not.toBe(a.fingerprint);
    expect(readFileSync(live.cert).equals(secondPem)).toBe(true);
    // The connection opened on the old certificate still works.
    a.ws.send(JSON.stringify({ type: 'ping', id: 2 }));
    expect(JSON.parse(String(await new Promise((r) => a.ws.once('message', r))))).toMatchObject({ type: 'pong', id: 2 });
    a.ws.close();
    b!.ws.close();
  }, 60_000);

  it('refuses to start with only one of the two files, or an unreadable one', async () => {
    const { cert } = certificate('half');
    await expect(startSwitchboard(BIN, 'start', { PORT: String(await freePort()), SESSION_PORT: String(await freePort()), SWITCHBOARD_TLS_CERT_FILE: cert }, 10_000, 'SESSION_PORT')).rejects.toThrow(/give both or neither/);
    await expect(
      startSwitchboard(BIN, 'start', { PORT: String(await freePort()), SESSION_PORT: String(await freePort()), SWITCHBOARD_TLS_CERT_FILE: cert, SWITCHBOARD_TLS_KEY_FILE: join(dir, 'missing.key') }, 10_000, 'SESSION_PORT'),
    ).rejects.toThrow(/missing\.key cannot be read/);
  }, 30_000);
});
