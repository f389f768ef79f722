#!/bin/sh
# Container entry point (PID 1 is tini, which forwards signals and reaps zombies). Checks that the native
# uWebSockets.js binary loads before anything else: its registry build silently falls back to a slow
# pure-JS implementation without `getParts`, and an image that fell back must fail at start, loudly,
# instead of serving at a fraction of the throughput. Then replaces itself with node (`exec`), so node
# receives SIGTERM directly and drains.
set -eu
cd "${SWITCHBOARD_HOME:-/app}"
node -e "
const uws = require(require.resolve('uWebSockets.js', { paths: [process.cwd() + '/packages/edge'] }));
if (typeof uws.getParts !== 'function') {
  console.error('switchboard: the native uWebSockets.js binary did not load (pure-JS fallback); refusing to start');
  process.exit(70);
}
"
exec node packages/cli/bin/switchboard.js "$@"
