export * from './streams.js';
export * from './parse.js';
export * from './render.js';
export * from './publish.js';
