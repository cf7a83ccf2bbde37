/**
 * The agent's config schema: the base keys (src/config/config.ts) with one
 * `sensors.<name>` section per sensor of the registry, each validated by its
 * sensor's own schema, and one `outputs.<name>` section per output of the sink
 * registry (errors keep file:line:col).
 */
import type { z } from 'zod';
import { loadConfig, makeConfigSchema, parseConfig } from '../config/config.js';
import { sensorsConfigSchema } from '../sensors/index.js';
import { outputsConfigSchema } from '../sinks/index.js';

export const AgentConfigSchema = makeConfigSchema(sensorsConfigSchema(), outputsConfigSchema());
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export function loadAgentConfig(path: string | undefined): AgentConfig {
  return loadConfig(path, AgentConfigSchema);
}

export function parseAgentConfig(text: string, file?: string): AgentConfig {
  return parseConfig(text, file, AgentConfigSchema);
}
