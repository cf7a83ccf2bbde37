/**
 * The local API's request and response shapes: zod schemas (the event schema
 * of src/events and the sensors, the deny rule, the rule health), from which
 * the handlers validate and the OpenAPI document is made (z.toJSONSchema).
 * docs/openapi.json is this document, committed; a test fails when it is stale.
 */
import { z } from 'zod';
import { SENSORS } from '../sensors/index.js';

/** Every category a stored record can have: the sensors' and the exec guard's (as `vigil events --category`). */
export function knownCategories(): string[] {
  return [...new Set([...SENSORS.flatMap((s) => s.categories), 'exec_guard'])];
}

const fieldMatch = z
  .string()
  .regex(/^[A-Za-z_][\w.]*[=~][\s\S]*$/, 'FIELD=VALUE (exact) or FIELD~GLOB (case-insensitive, * and ?)')
  .describe('FIELD=VALUE exact or FIELD~GLOB (case-insensitive, * and ?); dotted paths like vigil.comm; repeat for AND');

const time = z.string().max(64).describe('a duration ago (30s, 5m, 1h, 2d) or an RFC 3339 time; exact to the nanosecond');

export const EventsQuerySchema = z
  .object({
    since: time.optional(),
    until: time.optional(),
    category: z.enum(knownCategories() as [string, ...string[]]).optional(),
    field: z.union([fieldMatch, z.array(fieldMatch).max(16)]).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(100),
    reverse: z.enum(['true', 'false', '1', '0', '']).optional().describe('oldest first'),
  })
  .strict()
  .describe('the filters of `vigil events`');

export const AlertsQuerySchema = EventsQuerySchema.extend({
  rule: z.string().min(1).max(256).optional().describe('alerts of this rule id'),
}).strict();

export const StoredRecordSchema = z
  .object({
    id: z.number().int().describe('row id in the store (newest has the highest)'),
    ts: z.number().int().describe('stored time, ms since the epoch'),
    record: z.record(z.string(), z.unknown()).describe('the event (see components.schemas.Event) or the alert, as emitted'),
  })
  .strict();

export const RecordsResponseSchema = z.object({ records: z.array(StoredRecordSchema), limit: z.number().int() }).strict();

export const PidParamsSchema = z.object({ pid: z.coerce.number().int().min(1).max(4_194_304) }).strict();

const procNode = z
  .object({
    pid: z.number().int(),
    ppid: z.number().int(),
    ProcessGuid: z.string().optional(),
    Image: z.string(),
    CommandLine: z.string(),
    CurrentDirectory: z.string(),
    uid: z.number().int(),
    exited: z.boolean(),
    source: z.enum(['exec', 'fork', 'proc']),
  })
  .strict();

export const ProcessTreeSchema = z
  .object({
    pid: z.number().int(),
    found: z.boolean().describe("false: the agent's process table has no entry for this pid (it exited long ago, or before vigil started)"),
    process: procNode.nullable(),
    ancestors: z.array(procNode).describe('parent first, up to the first process the table does not know'),
    children: z.array(procNode).describe('entries whose parent is this pid (live and recently exited)'),
  })
  .strict();

export const DenyRuleSchema = z
  .object({
    id: z.number().int(),
    kind: z.enum(['path', 'sha256']),
    path: z.string().nullable(),
    resolvedPath: z.string().nullable(),
    sha256: z.string().nullable(),
    mode: z.enum(['enforce', 'monitor']),
    comment: z.string().nullable(),
    createdMs: z.number().int(),
  })
  .strict();

export const EnforcementSchema = z
  .object({
    state: z.enum(['enforce', 'detect-only', 'off']).describe('enforce: the exec guard is armed by this agent; detect-only: it cannot load here (rules are stored, not enforced); off: --no-enforce'),
    reason: z.string().optional(),
  })
  .strict();

export const DenyListSchema = z
  .object({ mode: z.enum(['enforce', 'monitor']), enforcement: EnforcementSchema, rules: z.array(DenyRuleSchema) })
  .strict();

export const DenyAddSchema = z
  .object({
    path: z.string().min(1).max(4096).optional().describe('absolute path of the executable (denied by path and inode)'),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional().describe('deny by content: this digest'),
    mode: z.enum(['enforce', 'monitor']).default('enforce'),
    comment: z.string().max(1024).optional(),
  })
  .strict()
  .refine((v) => v.path !== undefined || v.sha256 !== undefined, 'give a path or a sha256');

export const DenyAddResponseSchema = z.object({ rule: DenyRuleSchema, created: z.boolean(), changed: z.boolean() }).strict();
export const DenyIdParamsSchema = z.object({ id: z.coerce.number().int().min(1) }).strict();
export const DenyModeSchema = z.object({ mode: z.enum(['enforce', 'monitor']) }).strict();
export const OkSchema = z.object({ ok: z.literal(true) }).strict();

export const RuleHealthSchema = z
  .object({
    enabled: z.boolean().describe('false: vigil run has no Sigma rules (no --rules, no rules: in the config)'),
    active: z.number().int(),
    rules: z.array(z.object({ id: z.string(), title: z.string(), level: z.string(), path: z.string() }).strict()),
    inactive: z.array(z.object({ id: z.string(), title: z.string(), path: z.string(), reason: z.string() }).strict()),
    files_with_errors: z.array(
      z
        .object({
          path: z.string(),
          errors: z.array(z.object({ line: z.number().int(), col: z.number().int(), severity: z.string(), message: z.string() }).strict()),
        })
        .strict(),
    ),
  })
  .strict();

const counts = z.record(z.string(), z.number());
export const StatusSchema = z
  .object({
    version: z.string(),
    uptime_ms: z.number(),
    events: z.number(),
    alerts: z.number(),
    by_category: counts,
    drops: z.object({ kernel: z.number(), decode: z.number(), sinks: z.number() }).strict(),
    sensors: z.record(
      z.string(),
      z
        .object({
          records: z.number(),
          events: z.number(),
          kernel_drops: z.number(),
          decode_drops: z.number(),
          ring_size: z.number().optional(),
          ring_unread: z.number().optional(),
          object: z.string().optional(),
          kernel: counts,
        })
        .strict(),
    ),
    sinks: z.record(z.string(), z.object({ written: z.number(), dropped: z.number(), errors: z.number(), pending: z.number() }).loose()),
    process_table: z.object({ live: z.number(), exited: z.number(), evicted: z.number(), seeded: z.number() }).strict(),
    enforcement: EnforcementSchema,
  })
  .strict();

export const ErrorSchema = z.object({ error: z.string(), message: z.string() }).strict();

const js = (s: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> => {
  const out = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
};

/** Query parameters of an object schema, one OpenAPI parameter each. */
function queryParams(s: z.ZodObject, where: 'query' | 'path' = 'query'): unknown[] {
  const j = js(s, 'input') as { properties: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(j.properties).map(([name, schema]) => ({
    name,
    in: where,
    required: where === 'path' || (j.required ?? []).includes(name),
    ...(schema.description ? { description: schema.description } : {}),
    schema,
    ...(name === 'field' ? { style: 'form', explode: true } : {}),
  }));
}

const json = (s: z.ZodType) => ({ 'application/json': { schema: js(s) } });
const ok = (desc: string, s: z.ZodType) => ({ description: desc, content: json(s) });
const errors = {
  400: { description: 'bad request: the message names the parameter', content: json(ErrorSchema) },
  401: { description: 'no or wrong bearer token', content: json(ErrorSchema) },
};
const sameOrigin = {
  403: { description: 'refused: a browser request from another origin (Origin or Sec-Fetch-Site)', content: json(ErrorSchema) },
};

/** The OpenAPI 3.1 document of the local API (served at /api/openapi.json; docs/openapi.json). */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'vigil local API',
      version,
      description: 'The agent\'s local API (docs/api.md). Every route needs `Authorization: Bearer <token>` (the token file `vigil run` makes, api.token_file). Requests that change state also need a same-origin browser context or none (no Origin from elsewhere, Sec-Fetch-Site same-origin or absent).',
    },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the token in api.token_file (0600), made by vigil run' } },
      // the event schema by reference (docs/schema/event.schema.json, served next to this document):
      // this document changes when the API does, not with every event field
      schemas: { Event: { $ref: 'schema/event.schema.json' }, DenyRule: js(DenyRuleSchema), Error: js(ErrorSchema) },
    },
    paths: {
      '/api/status': { get: { summary: 'sensor and enforcement status, counters and drops by stage', responses: { 200: ok('status', StatusSchema), 401: errors[401] } } },
      '/api/events': {
        get: { summary: 'search stored events (the filters of vigil events), newest first', parameters: queryParams(EventsQuerySchema), responses: { 200: ok('records; record is an Event', RecordsResponseSchema), ...errors } },
      },
      '/api/alerts': {
        get: { summary: 'search stored alerts, newest first', parameters: queryParams(AlertsQuerySchema), responses: { 200: ok('records; record is an alert', RecordsResponseSchema), ...errors } },
      },
      '/api/alerts/stream': {
        get: {
          summary: 'live alerts and exec guard decisions as server-sent events (event: alert | decision; data: the JSON record)',
          responses: { 200: { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, 401: errors[401] },
        },
      },
      '/api/processes/{pid}/tree': {
        get: { summary: "a process, its ancestors and its children from the agent's process table", parameters: queryParams(PidParamsSchema, 'path'), responses: { 200: ok('the tree', ProcessTreeSchema), ...errors } },
      },
      '/api/deny': {
        get: { summary: 'deny rules, the global mode and whether they are enforced here', responses: { 200: ok('rules', DenyListSchema), 401: errors[401] } },
        post: {
          summary: 'add a deny rule (as vigil deny add; kept once per target)',
          requestBody: { required: true, content: { 'application/json': { schema: js(DenyAddSchema, 'input') } } },
          responses: { 200: ok('the rule', DenyAddResponseSchema), ...errors, ...sameOrigin },
        },
      },
      '/api/deny/{id}': {
        delete: { summary: 'remove a deny rule (lifted at once when the guard is armed)', parameters: queryParams(DenyIdParamsSchema, 'path'), responses: { 200: ok('removed', OkSchema), ...errors, ...sameOrigin, 404: { description: 'no such rule', content: json(ErrorSchema) } } },
      },
      '/api/deny/mode': {
        put: {
          summary: 'set the global mode (monitor downgrades every rule to reporting)',
          requestBody: { required: true, content: { 'application/json': { schema: js(DenyModeSchema, 'input') } } },
          responses: { 200: ok('the mode', DenyModeSchema), ...errors, ...sameOrigin },
        },
      },
      '/api/rules': { get: { summary: 'Sigma rule store health: active and inactive rules, errors by file', responses: { 200: ok('health', RuleHealthSchema), 401: errors[401] } } },
      '/api/schema/event.schema.json': {
        get: { summary: 'the JSON Schema of events (docs/schema/event.schema.json)', responses: { 200: { description: 'JSON Schema 2020-12', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errors[401] } },
      },
      '/api/openapi.json': { get: { summary: 'this document', responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errors[401] } } },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (text format 0.0.4); behind the token unless api.metrics_auth is false',
          responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: errors[401] },
        },
      },
    },
  };
}
