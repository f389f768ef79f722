import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CliIo } from '../main.js';
import { parseAttrArgs, publishCommand } from './publish.js';

describe('parseAttrArgs', () => {
  it('turns numbers into numbers and keeps the rest as strings', () => {
    expect(parseAttrArgs(['device_id=1', 'severity=critical', 'x=-2.5', 'zip=01234', 'eq=a=b'])).toEqual({
      device_id: 1,
      severity: 'critical',
      x: -2.5,
      zip: '01234',
      eq: 'a=b',
    });
  });
  it('refuses a pair without a key', () => {
    expect(() => parseAttrArgs(['=1'])).toThrow(/key=value/);
    expect(() => parseAttrArgs(['novalue'])).toThrow(/key=value/);
  });
});

describe('publish --stdin flow control', () => {
  it('keeps at most 10,000 messages (not lines) waiting for acknowledgements, and sends the rest as they come', async () => {
    // A stand-in for the edge's publish socket that acknowledges nothing until told: what the CLI sends
    // before any acknowledgement is what it keeps in flight.
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    const port = (server.address() as AddressInfo).port;
    const frames: { id: number; messages: number }[] = [];
    let ackNow = false;
    const pending: WebSocket[] = [];
    const ack = (ws: WebSocket, id: number) => ws.send(JSON.stringify({ id, results: [] }));
    server.on('connection', (ws) => {
      pending.push(ws);
      ws.on('message', (raw: Buffer) => {
        const body = JSON.parse(raw.toString()) as { id: number; messages?: unknown[] };
        frames.push({ id: body.id, messages: body.messages?.length ?? 1 });
        if (ackNow) ack(ws, body.id);
      });
    });
    // 30 lines of 1,000 messages each, then 5 single messages.
    const batch = JSON.stringify({ messages: Array.from({ length: 1000 }, (_, i) => ({ data: { alert_id: `a${i}` } })) });
    const input = new PassThrough();
    input.end([...Array.from({ length: 30 }, () => batch), ...Array.from({ length: 5 }, (_, i) => JSON.stringify({ data: { alert_id: `s${i}` } }))].join('\n') + '\n');
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: () => true }, env: {} } as unknown as CliIo;
    const done = publishCommand({ channel: 'alerts', stdin: input, dialect: 'valtronics', tenant: undefined, data: undefined, attrs: [], url: `http://127.0.0.1:${port}`, apiKey: 'k' }, io);
    try {
      for (let waited = 0; frames.length < 10 && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      // Ten frames of 1,000 are 10,000 messages: the eleventh waits for an acknowledgement.
      expect(frames.length).toBe(10);
      ackNow = true;
      for (const f of frames.slice()) ack(pending[0]!, f.id);
      expect(await done).toBe(0);
      expect(frames.map((f) => f.messages)).toEqual([...Array.from({ length: 30 }, () => 1000), 1, 1, 1, 1, 1]);
      expect(out).toHaveLength(35);
    } finally {
      for (const ws of server.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    }
  });
});
