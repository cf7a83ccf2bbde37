/**
 * The one list of sensors. Adding a sensor: a folder under src/sensors/ that
 * exports a SensorPlugin (and bpf/<name>/ for its program), plus one line here.
 * This is the only file that imports a concrete sensor (test/structure checks it).
 */
import { z } from 'zod';
import { SHARED_LAYOUTS, type Layout } from '../events/layouts.js';
import { AGENT_EVENT_SCHEMAS } from '../events/schema.js';
import type { SensorPlugin } from './sensor.js';
import { execSensor } from './exec/index.js';
import { netSensor } from './net/index.js';
import { fileSensor } from './file/index.js';
import { tlsSensor } from './tls/index.js';

export const SENSORS: readonly SensorPlugin[] = [
  execSensor as unknown as SensorPlugin,
  netSensor as unknown as SensorPlugin,
  fileSensor as unknown as SensorPlugin,
  tlsSensor as unknown as SensorPlugin,
];

export type { SensorPlugin, SensorInstance, SensorContext, SensorStats, SensorProbe, RecordReplay, RecordTap, RingWakeup, SerializedEvent, ScopeMaps, ProvenanceSettings } from './sensor.js';
export { SharedMaps } from './shared-maps.js';
export { TreeScope, type TreeScopeStats } from './scope.js';

export function sensorNames(): string[] {
  return SENSORS.map((s) => s.name);
}

export function findSensor(name: string): SensorPlugin | undefined {
  return SENSORS.find((s) => s.name === name);
}

/** The `sensors:` section of the config: one key per sensor, each with its own keys. */
export function sensorsConfigSchema() {
  const shape: Record<string, z.ZodType> = {};
  for (const s of SENSORS) shape[s.name] = s.config;
  const defaults = Object.fromEntries(SENSORS.map((s) => [s.name, s.config.parse(undefined)]));
  return z.object(shape).strict().default(defaults as never);
}

/** Every record layout: shared ones and each sensor's. */
export const ALL_LAYOUTS: Layout[] = [...SHARED_LAYOUTS, ...SENSORS.flatMap((s) => s.layouts)];

/** Every event vigil emits, one discriminated union over `category`: the sensors' and the agent's own (exec guard decisions). */
export const EventSchema = z
  .discriminatedUnion('category', [...SENSORS.flatMap((s) => s.eventSchemas), ...AGENT_EVENT_SCHEMAS] as unknown as [z.ZodObject, ...z.ZodObject[]])
  .describe('A vigil event (one JSON object per line in the audit log).');

/** The published JSON Schema of events (docs/schema/event.schema.json). */
export function eventJsonSchema(): Record<string, unknown> {
  return { $id: 'https://vigil.dev/schema/event.schema.json', title: 'vigil event', ...z.toJSONSchema(EventSchema) };
}
