export * from './valtronics.js';
