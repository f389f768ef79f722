export * from './valtronics/index.js';
