export { EdgeServer, type EdgeOptions } from './server.js';
export {
  Hub,
  Group,
  SENDER_ATTR,
  type Frame as WireFrame,
  type GroupSpec,
  type HubConnection,
  type HubSocket,
  type TopicPublisher,
  type Renderer,
  type RendererFactory,
  type SubscribeOutcome,
} from './hub.js';
export type {
  DialectContext,
  DialectDefinition,
  DialectHandler,
  DialectMetrics,
  DialectRoute,
  Frame,
  ListenerInfo,
  NormalizedPublish,
  PublishAttrCheck,
  Refusal,
  SubprotocolPolicy,
  UpgradeDecision,
  UpgradeRequest,
} from './dialect.js';
export { defineDialect, REFUSAL_HEAD_BYTES } from './dialect.js';
export { dialectSection, dialectLimits, type DialectLimits, type DialectConfigSection } from './dialect-config.js';
export { DIALECTS, DIALECT_CONFIG_SECTIONS } from './dialects/index.js';
export type { Conn, ConnectionRegistry } from './conn.js';
export { CONTROL_CHANNEL, revocationMessage, type ClusterAnswers, type ClusterControl } from './cluster.js';
export { ADMIN_ROLE, ChannelAdmin, type ChannelQuery, type ChannelView, type ChannelEntry, type ChannelMember, type NodeEntry } from './channel-admin.js';
export { EdgeMetrics } from './metrics.js';
export { SystemSampler, type SystemStats } from './system-stats.js';
export { parsePublishBody, type ParsedPublish } from './publish.js';
export { ApiKeys, parseApiKey, type KeyScope } from './api-keys.js';
export { assertNativeUws } from './uws.js';
