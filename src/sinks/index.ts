/**
 * The one list of outputs (config section `outputs.<name>`, docs/outputs.md).
 * Adding an output: a file or folder under src/sinks/ that exports an
 * OutputPlugin (src/sinks/output.ts), plus one line here. Network outputs
 * share the delivery queue (src/sinks/delivery.ts) for bounds, retries and
 * drop counters. The JSONL log and the SQLite store keep their own top-level
 * keys (events_out, alerts_out, db). There is no command output, on purpose:
 * nothing executes text taken from an event.
 */
import { z } from 'zod';
import { RoutedSink, type OutputCommon, type OutputContext, type OutputPlugin } from './output.js';
import type { Sink } from './sink.js';
import { syslogOutput } from './syslog/index.js';
import { webhookOutput } from './webhook/index.js';

export const OUTPUTS: readonly OutputPlugin[] = [
  syslogOutput as unknown as OutputPlugin,
  webhookOutput as unknown as OutputPlugin,
];

export type { OutputPlugin, OutputContext, OutputCommon } from './output.js';
export { LEVELS, levelRank, OutputOpenError } from './output.js';

/** The `outputs:` section of the config: one key per output, each with its own keys. */
export function outputsConfigSchema() {
  const shape: Record<string, z.ZodType> = {};
  for (const o of OUTPUTS) shape[o.name] = o.config;
  return z.object(shape).strict().prefault({});
}

/** Open every enabled output; `onOpenError(name, err)` turns a failure into the caller's error (the opened ones are closed first). */
export function openOutputs(cfg: Record<string, OutputCommon>, ctx: OutputContext, onOpenError: (name: string, err: unknown) => never): Sink[] {
  const out: Sink[] = [];
  for (const o of OUTPUTS) {
    const c = cfg[o.name] ?? (o.config.parse(undefined) as OutputCommon);
    if (!c.enabled) continue;
    try {
      out.push(new RoutedSink(o.create(c, ctx), c));
    } catch (e) {
      void Promise.all(out.map((s) => s.close()));
      onOpenError(o.name, e);
    }
  }
  return out;
}
