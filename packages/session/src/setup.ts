import type { Config, Logger } from '@switchboard/core';
import type { Registry } from 'prom-client';
import { hmacIssuer, keySetIssuer, loadSigningKey, type TokenIssuer } from './keys.js';
import { SessionMetrics } from './metrics.js';
import type { SessionRepo } from './repo.js';
import { SessionService } from './service.js';

/** The issuer the configuration asks for: key files (RS256/ES256) when given, else HS256. */
export async function buildIssuer(config: Config): Promise<TokenIssuer> {
  const o = { issuer: config.jwtIssuer, audience: config.jwtAudience };
  if (config.jwtKeyFiles.length > 0) return keySetIssuer(await Promise.all(config.jwtKeyFiles.map(loadSigningKey)), config.jwtActiveKid, o);
  if (!config.jwtSecret) throw new Error('no signing keys: set SESSION_JWT_KEY_FILES (or SWITCHBOARD_JWT_SECRET)');
  return hmacIssuer(config.jwtSecret, o);
}

/** The session service as the configuration describes it. */
export function createSessionService(config: Config, repo: SessionRepo, issuer: TokenIssuer, logger: Logger, registry: Registry): SessionService {
  return new SessionService({
    repo,
    issuer,
    logger,
    metrics: new SessionMetrics(registry),
    tokenTtlSec: config.tokenTtlSec,
    sessionTtlSec: config.sessionTtlSec,
    userLockout: { threshold: config.maxLoginFailures, baseSec: config.lockoutSec, maxSec: 3600, windowSec: 900 },
    ipLockout: { threshold: config.maxLoginFailuresPerIp, baseSec: config.lockoutSec, maxSec: 3600, windowSec: 900 },
    nodeDeadSec: config.nodeDeadSec,
    maxTokenLifetimeSec: config.maxTokenLifetimeSec,
  });
}
