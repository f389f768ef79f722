export { run } from './main.js';
export { startAllInOne, type RunningNode } from './all-in-one.js';
export { parseAttrArgs } from './commands/publish.js';
