export * from './tokens.js';
export * from './admission.js';
export * from './admission-memory.js';
