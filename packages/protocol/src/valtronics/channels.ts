/**
 * The channels and endpoints of the `valtronics` dialect (seed 002).
 */
/** The four channels of the seed. */
export const VALTRONICS_CHANNELS = ['telemetry', 'alerts', 'devices', 'system'] as const;
/** One of {@link VALTRONICS_CHANNELS}. */
export type ValtronicsChannel = (typeof VALTRONICS_CHANNELS)[number];

/** Specialised endpoints and the channel each is scoped to; `/ws` serves every channel. */
export const VALTRONICS_ENDPOINTS: Readonly<Record<string, ValtronicsChannel | null>> = {
  '/ws': null,
  '/ws/telemetry': 'telemetry',
  '/ws/alerts': 'alerts',
  '/ws/system': 'system',
  '/ws/devices': 'devices',
};

/** What a valtronics channel accepts. */
export interface ChannelSpec {
  /** `type` of the update frames. */
  readonly updateType: string;
  /** Filter key on the wire → attribute it matches. */
  readonly filters: Readonly<Record<string, string>>;
  /** Whether `metrics` projects the payload. */
  readonly projection: boolean;
  /** Whether `frequency` (conflation) is accepted. */
  readonly frequency: boolean;
  /** Node-local channel, produced by the edge itself and never published. */
  readonly local: boolean;
}

const CHANNELS: Readonly<Record<ValtronicsChannel, ChannelSpec>> = {
  telemetry: {
    updateType: 'telemetry_update',
    filters: { device_id: 'device_id' },
    projection: true,
    frequency: true,
    local: false,
  },
  alerts: {
    updateType: 'alert',
    filters: { device_id: 'device_id', severity: 'severity', alert_type: 'alert_type' },
    projection: false,
    frequency: false,
    local: false,
  },
  devices: {
    updateType: 'device_status_update',
    filters: { device_id: 'device_id', status_types: 'status' },
    projection: false,
    frequency: true,
    local: false,
  },
  system: { updateType: 'system_status_update', filters: {}, projection: true, frequency: true, local: true },
};

/** What the seed says the values of a filtered attribute look like: only a hint, any value is stored. */
export interface AttrDomain {
  /** The seed numbers its devices (`device_id: 1`). */
  readonly integer?: boolean;
  /** The values the seed's clients filter on. */
  readonly seedValues?: readonly string[];
}

/** The seed's hints on the attributes the filters match (by attribute name). */
export const ATTR_DOMAINS: Readonly<Record<string, AttrDomain>> = {
  device_id: { integer: true },
  severity: { seedValues: ['critical', 'warning'] },
  status: { seedValues: ['online', 'offline', 'warning'] },
};

/** True when `name` is one of the four valtronics channels. */
export function isValtronicsChannel(name: unknown): name is ValtronicsChannel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(CHANNELS, name);
}

/** True for the node-local `system` channel. */
export function isLocalChannel(name: ValtronicsChannel): boolean {
  return CHANNELS[name].local;
}


/** `type` of a channel's update frames. */
export function updateTypeOf(channel: ValtronicsChannel): string {
  return CHANNELS[channel].updateType;
}

/** The spec of a channel (filters, projection, frequency): for the parser's messages. */
export function channelSpec(channel: ValtronicsChannel): ChannelSpec {
  return CHANNELS[channel];
}

