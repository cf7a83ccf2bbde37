export { ApiServer, CONSOLE_CSP, crossOrigin, type ApiOptions, type Enforcement } from './server.js';
export { ensureToken, readToken, bearerMatches, type TokenFile } from './token.js';
export { parseListen, isLoopback, type ListenAddress } from './listen.js';
export { openApiDocument } from './schemas.js';
export { createMetrics, PassCounts } from './metrics.js';
