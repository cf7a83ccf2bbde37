#!/usr/bin/env node
// Writes docs/schema/event.schema.json from src/events/schema.ts (via dist/).
import { writeFileSync } from 'node:fs';
import { eventJsonSchema } from '../dist/events/schema.js';
writeFileSync(new URL('../docs/schema/event.schema.json', import.meta.url), JSON.stringify(eventJsonSchema(), null, 2) + '\n');
