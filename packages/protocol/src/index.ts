export * from './valtronics/index.js';
export * from './fme/index.js';
