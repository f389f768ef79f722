export { EdgeServer, type EdgeOptions, type CloseFn } from './server.js';
export { Hub, Group, type GroupSpec, type HubConnection, type HubSocket, type TopicPublisher, type Renderer, type RendererFactory, type SubscribeOutcome } from './hub.js';
export { EdgeMetrics } from './metrics.js';
export { SystemSampler, type SystemStats } from './system-stats.js';
export { parsePublishBody, type ParsedPublish } from './publish.js';
export { assertNativeUws } from './uws.js';
export { dialectRenderers } from './renderers.js';
