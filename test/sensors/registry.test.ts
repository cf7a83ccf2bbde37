/**
 * The sensor registry: every sensor is complete (object built, layouts in its
 * BTF, config documented, event categories unique and in the schema).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { SENSORS, EventSchema } from '../../src/sensors/index.js';
import { BPF_OBJECT_DIR } from '../../src/sensors/bpf-sensor.js';
import { BpfObject } from '../../src/kernel/index.js';
import { checkLayouts } from '../../src/events/layouts.js';
import { AGENT_EVENT_SCHEMAS } from '../../src/events/schema.js';

const configDoc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');

describe('sensor registry', () => {
  it('names are unique and every event category belongs to one sensor', () => {
    const names = SENSORS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    const cats = SENSORS.flatMap((s) => s.eventSchemas.map((e) => (e.shape as Record<string, z.ZodLiteral>).category!.value));
    expect(new Set(cats).size).toBe(cats.length);
    for (const s of SENSORS) expect(s.eventSchemas.map((e) => (e.shape as Record<string, z.ZodLiteral>).category!.value).sort()).toEqual([...s.categories].sort());
    // and the agent's own events (exec guard decisions), each category once
    const agentCats = AGENT_EVENT_SCHEMAS.map((e) => (e.shape as Record<string, z.ZodLiteral>).category!.value);
    expect(new Set([...cats, ...agentCats]).size).toBe(cats.length + agentCats.length);
    expect(EventSchema.options.length).toBe(cats.length + agentCats.length);
  });

  for (const s of SENSORS) {
    it(`${s.name}: objects built, its layouts in their BTF`, () => {
      for (const o of s.objects) {
        expect(existsSync(`${BPF_OBJECT_DIR}${o}`), `${o} (npm run build)`).toBe(true);
        const obj = BpfObject.open(`${BPF_OBJECT_DIR}${o}`);
        try {
          expect(checkLayouts(obj.btf(), [...s.layouts], s.layouts.map((l) => l.name))).toEqual([]);
        } finally {
          obj.close();
        }
      }
    });

    it(`${s.name}: config has defaults, an enabled key, and every key documented in docs/config.md`, () => {
      const cfg = s.config.parse(undefined) as Record<string, unknown>;
      expect(typeof cfg.enabled).toBe('boolean');
      expect(configDoc).toContain(`### sensors.${s.name}`);
      const section = configDoc.slice(configDoc.indexOf(`### sensors.${s.name}`)).split('\n### ')[0]!;
      for (const key of Object.keys(cfg)) expect(section, `sensors.${s.name}.${key}`).toContain(`| \`${key}\``);
    });
  }
});
