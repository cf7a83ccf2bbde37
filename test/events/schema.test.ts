import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EventSchema, eventJsonSchema } from '../../src/sensors/index.js';

describe('event schema', () => {
  it('docs/schema/event.schema.json is generated from src/events/schema.ts (run npm run gen:schema)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../docs/schema/event.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(eventJsonSchema())));
  });

  it('rejects an event with a missing Sysmon field or an unknown field', () => {
    const base = {
      category: 'process_termination', timestamp: 't', Hostname: 'h', ProcessId: 1, ProcessGuid: 'g', Image: '/x', User: 'root',
      vigil: { schema: 1, seq: 1, boot_ns: '1', tid: 1, comm: 'x', exit_status: 0, exit_code: 0, signal: 0 },
    };
    expect(EventSchema.safeParse(base).success).toBe(true);
    const { Image: _drop, ...noImage } = base;
    expect(EventSchema.safeParse(noImage).success).toBe(false);
    expect(EventSchema.safeParse({ ...base, Extra: 1 }).success).toBe(false);
  });
});
