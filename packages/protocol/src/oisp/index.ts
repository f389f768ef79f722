export * from './devices.js';
export * from './parse.js';
export * from './render.js';
export * from './publish.js';
