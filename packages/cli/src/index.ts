export { run } from './main.js';
export { startNode, type RunningNode } from './all-in-one.js';
export { parseAttrArgs } from './commands/publish.js';
