/**
 * The output registry: names unique, every output off by default with the
 * shared keys, every key documented in docs/config.md, and no output that runs
 * commands.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { OUTPUTS, outputsConfigSchema } from '../../src/sinks/index.js';
import { AgentConfigSchema } from '../../src/agent/config.js';

const configDoc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
const outputsDoc = configDoc.slice(configDoc.indexOf('## OUTPUTS')).split('\n## ')[0]!;
const COMMON = ['enabled', 'route', 'min_level', 'queue', 'retry', 'shutdown_timeout'];

describe('output registry', () => {
  it('names are unique; no output executes anything', () => {
    const names = OUTPUTS.map((o) => o.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => /command|exec|program|shell|script/i.test(n))).toEqual([]);
  });

  it('the agent config has an outputs section with every output off', () => {
    const cfg = AgentConfigSchema.parse({}) as { outputs: Record<string, { enabled: boolean }> };
    expect(Object.keys(cfg.outputs).sort()).toEqual(OUTPUTS.map((o) => o.name).sort());
    for (const o of OUTPUTS) expect(cfg.outputs[o.name]!.enabled).toBe(false);
    expect(outputsConfigSchema().parse(undefined)).toEqual(cfg.outputs);
  });

  for (const o of OUTPUTS) {
    it(`${o.name}: the shared keys, and its own keys documented in docs/config.md`, () => {
      const cfg = o.config.parse(undefined) as Record<string, unknown>;
      for (const k of COMMON) expect(cfg, k).toHaveProperty(k);
      expect(outputsDoc).toContain(`### outputs.${o.name}`);
      const section = outputsDoc.slice(outputsDoc.indexOf(`### outputs.${o.name}`)).split('\n### ')[0]!;
      for (const key of Object.keys(cfg).filter((k) => !COMMON.includes(k))) expect(section, `outputs.${o.name}.${key}`).toContain(`| \`${key}\``);
      const q = cfg.queue as Record<string, unknown>;
      const r = cfg.retry as Record<string, unknown>;
      for (const k of [...COMMON.filter((k) => k !== 'queue' && k !== 'retry'), ...Object.keys(q).map((k) => `queue.${k}`), ...Object.keys(r).map((k) => `retry.${k}`)])
        expect(outputsDoc, k).toContain(`| \`${k}\``);
    });
  }
});
