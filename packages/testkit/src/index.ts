export * from './ports.js';
export * from './ws-client.js';
