export { run, overview, type CliIo } from './main.js';
export { startAllInOne, startEdge, startSession, type Running } from './compose.js';
export { parseAttrArgs } from './commands/publish.js';
export { COMMANDS } from './commands/specs.js';
export { renderCliMarkdown, renderHelp, type CommandSpec } from './spec.js';
