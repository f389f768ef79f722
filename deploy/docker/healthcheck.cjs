// Docker HEALTHCHECK: exit 0 when this container's edge (PORT) or session service (SESSION_PORT)
// answers GET /healthz with 2xx. One image runs every role and the check cannot know which one it is,
// so either listener counts; both are on loopback inside the container.
'use strict';
const ports = [process.env.PORT || '8000', process.env.SESSION_PORT || '8100'];
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS || 2000);

async function healthy(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false; // not listening (the other role's port) or not answering in time
  }
}

Promise.all(ports.map(healthy)).then((ok) => process.exit(ok.includes(true) ? 0 : 1));
