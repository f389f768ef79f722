import type { Envelope } from '@switchboard/core';
import { renderValtronicsUpdate, type ValtronicsChannel } from '@switchboard/protocol';
import type { RendererFactory } from './hub.js';

/** The renderer of each dialect's update frames, by (dialect, channel, projection). */
export const dialectRenderers: RendererFactory = (dialect, channel, projection) => {
  if (dialect === 'valtronics') {
    const ch = channel as ValtronicsChannel;
    return (env: Envelope) => renderValtronicsUpdate(ch, env, projection);
  }
  throw new Error(`no renderer for dialect ${dialect}`);
};
