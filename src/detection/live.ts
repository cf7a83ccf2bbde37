/**
 * Glue between the agent and the Sigma engine for `vigil run --rules`.
 * (Replaced by the engine's createDetector once it lands.)
 */
import type { Logger } from 'pino';
import type { Detector } from '../agent/agent.js';

export interface RunDetectorOptions {
  ruleDirs: string[];
  fieldMapping: string | null;
  log: Logger;
}

export async function createRunDetector(_opts: RunDetectorOptions): Promise<Detector> {
  throw new Error('the Sigma engine is not built yet');
}
