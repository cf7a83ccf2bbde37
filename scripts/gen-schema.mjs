#!/usr/bin/env node
// Writes docs/schema/event.schema.json from the sensors' schemas (src/sensors/index.ts) (via dist/).
import { writeFileSync } from 'node:fs';
import { eventJsonSchema } from '../dist/sensors/index.js';
writeFileSync(new URL('../docs/schema/event.schema.json', import.meta.url), JSON.stringify(eventJsonSchema(), null, 2) + '\n');
