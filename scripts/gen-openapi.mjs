#!/usr/bin/env node
// Writes docs/openapi.json, the local API's OpenAPI document (src/api/schemas.ts) (via dist/).
import { readFileSync, writeFileSync } from 'node:fs';
import { openApiDocument } from '../dist/api/schemas.js';
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
writeFileSync(new URL('../docs/openapi.json', import.meta.url), JSON.stringify(openApiDocument(version), null, 2) + '\n');
