export { run } from './main.js';
export { startAllInOne, startEdge, startSession, type Running } from './compose.js';
export { parseAttrArgs } from './commands/publish.js';
