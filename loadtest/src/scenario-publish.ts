/**
 * "Publish, one message per request, 16 in flight": the common way a backend publishes (one event per
 * `POST`, keep-alive, at most 16 requests in flight), measured on every system with the same subscribers
 * and the same staircase. Bare uWebSockets.js is fed its best way (unacknowledged frames over one
 * WebSocket); Switchboard's persistent publish socket (`/api/publish/ws`, one message per frame, each
 * acknowledged, many in flight) is measured on the same node as its HTTP publishes.
 */
import { DEV_API_KEY } from '@switchboard/core';
import { startPeer } from './peers/index.js';
import { endpointOf, httpOnePerRequest, wsFrames, type Publisher } from './publishers.js';
import type { LoadGenerator, StepResult } from './generator.js';
import { climb, openSubscribers, socketIoCluster, stepOf, switchboardCluster, switchboardNode, type RunOptions, type System, type SystemResult } from './scenarios.js';
import { stampedPayload } from './switchboard.js';

/** Results of the scenario. */
export interface PublishSingleResult {
  readonly connections: number;
  readonly inFlight: number;
  /** Every feed measured, in this order: bare uWS, Switchboard 1 node (HTTP, socket), 2 edges, Socket.IO 1 node, 2 nodes. */
  readonly systems: SystemResult[];
  /** The highest rate of the staircase every system sustained, where CPU per delivery is compared. */
  readonly commonRate: number;
  /** Switchboard on 2 edges at half of its own maximum (p99 target). */
  readonly clusterAtHalf: StepResult | undefined;
}

/** The ids of {@link PublishSingleResult.systems}, for the targets. */
export const PUBLISH_SINGLE_IDS = ['bare', 'node-http', 'node-socket', 'cluster-http', 'sio', 'sio-cluster'] as const;

const IN_FLIGHT = 16;
const AUTH = { Authorization: `Bearer ${DEV_API_KEY}` };

/** A server with its subscribers, and the feeds measured on it one after the other. */
interface Server {
  readonly sys: System;
  readonly feeds: { id: (typeof PUBLISH_SINGLE_IDS)[number]; name: string; make: () => Promise<Publisher>; maxBatch: number; maxInFlight: number }[];
  readonly extra?: () => Promise<void>;
}

/** Runs the scenario with `connections` subscribers on one channel. */
export async function publishSingleScenario(o: RunOptions, connections: number, rates: readonly number[], payloadBytes: number, log: (m: string) => void): Promise<PublishSingleResult> {
  const payload = stampedPayload(payloadBytes);
  const sbBody = () => JSON.stringify({ channel: 'alerts', data: payload() });
  const peerBody = () => JSON.stringify({ messages: [{ data: payload() }] });
  const results: (SystemResult & { id: string })[] = [];
  let clusterAtHalf: StepResult | undefined;

  const servers: (() => Promise<Server>)[] = [
    async () => {
      const p = await startPeer('bare-uws');
      const sys: System = {
        name: 'bare uWebSockets.js',
        url: p.httpUrl,
        targets: [{ host: '127.0.0.1', port: p.port, path: '/bare' }],
        protocol: 'plain',
        subscriptions: [{}],
        send: () => Promise.reject(new Error('unused')),
        pids: { 'bare-uws': p.child.pid! },
        stop: () => p.stop(),
      };
      return {
        sys,
        feeds: [
          {
            id: 'bare',
            name: 'bare uWebSockets.js (fed over one WebSocket)',
            make: () => wsFrames(endpointOf(p.httpUrl), '/pub', {}, () => JSON.stringify({ data: payload() }), false),
            maxBatch: 500,
            maxInFlight: 32,
          },
        ],
      };
    },
    async () => {
      const sys = await switchboardNode(o.bin, payloadBytes);
      const ep = endpointOf(sys.url);
      return {
        sys,
        feeds: [
          { id: 'node-http', name: `Switchboard (1 node), one message per POST, ${IN_FLIGHT} in flight`, make: () => Promise.resolve(httpOnePerRequest([ep], '/api/publish', AUTH, sbBody, IN_FLIGHT)), maxBatch: 1, maxInFlight: IN_FLIGHT },
          {
            id: 'node-socket',
            name: 'Switchboard (1 node), persistent publish socket, one message per frame',
            make: () => wsFrames(ep, '/api/publish/ws', AUTH, (id) => `{"id":${id},"channel":"alerts","data":${JSON.stringify(payload())}}`, true),
            maxBatch: 500,
            maxInFlight: 32,
          },
        ],
      };
    },
    async () => {
      const sys = await switchboardCluster(o.bin, payloadBytes);
      const eps = sys.edges.map((e) => endpointOf(e.httpUrl));
      return {
        sys,
        feeds: [
          { id: 'cluster-http', name: `Switchboard (2 edges + Redis), one message per POST, ${IN_FLIGHT} in flight`, make: () => Promise.resolve(httpOnePerRequest(eps, '/api/publish', AUTH, sbBody, IN_FLIGHT)), maxBatch: 1, maxInFlight: IN_FLIGHT },
        ],
      };
    },
    async () => {
      const p = await startPeer('socketio');
      const sys: System = {
        name: 'Socket.IO 4 (1 node)',
        url: p.httpUrl,
        targets: [{ host: '127.0.0.1', port: p.port, path: '/socket.io/?EIO=4&transport=websocket' }],
        protocol: 'socketio',
        subscriptions: [{}],
        send: () => Promise.reject(new Error('unused')),
        pids: { socketio: p.child.pid! },
        stop: () => p.stop(),
      };
      return { sys, feeds: [{ id: 'sio', name: `Socket.IO 4 (1 node), one message per POST, ${IN_FLIGHT} in flight`, make: () => Promise.resolve(httpOnePerRequest([endpointOf(p.httpUrl)], '/publish', {}, peerBody, IN_FLIGHT)), maxBatch: 1, maxInFlight: IN_FLIGHT }] };
    },
    async () => {
      const sys = await socketIoCluster(payloadBytes);
      return {
        sys,
        feeds: [
          {
            id: 'sio-cluster',
            name: `Socket.IO 4 + redis-streams-adapter (2 nodes), one message per POST, ${IN_FLIGHT} in flight`,
            make: () => Promise.resolve(httpOnePerRequest([endpointOf(sys.url)], '/publish', {}, peerBody, IN_FLIGHT)),
            maxBatch: 1,
            maxInFlight: IN_FLIGHT,
          },
        ],
      };
    },
  ];

  for (const start of servers) {
    const server = await start();
    let gen: LoadGenerator | null = null;
    try {
      gen = await openSubscribers(server.sys, o, connections, log);
      for (const feed of server.feeds) {
        const pub = await feed.make();
        try {
          const sys: System = { ...server.sys, name: feed.name, send: pub.send, maxBatch: feed.maxBatch, maxInFlight: feed.maxInFlight };
          const r = await climb(sys, gen, o, connections, connections, rates, true, log);
          results.push({ ...r, id: feed.id });
          if (feed.id === 'cluster-http' && r.max) {
            clusterAtHalf = await stepOf(sys, gen, o, Math.max(1, Math.round(r.max.rate / 2)), connections, true);
            log(`${feed.name}: at half (${clusterAtHalf.rate} msg/s) p50 ${clusterAtHalf.p50Ms.toFixed(1)} ms, p99 ${clusterAtHalf.p99Ms.toFixed(1)} ms`);
          }
        } finally {
          pub.close();
        }
      }
    } finally {
      await gen?.close();
      await server.sys.stop();
    }
  }
  // CPU per delivery where every system sustains: the highest rate of the ladder every one passed.
  const commonRate = Math.max(0, ...rates.filter((rate) => results.every((r) => r.steps.some((s) => s.rate === rate && s.sustained))));
  for (const r of results) {
    const at = r.steps.find((s) => s.rate === commonRate && s.sustained);
    if (at) r.common = at;
  }
  return { connections, inFlight: IN_FLIGHT, systems: results, commonRate, clusterAtHalf };
}
