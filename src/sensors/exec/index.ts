/**
 * Exec sensor: process creation, fork and exit from the sched BTF tracepoints
 * (bpf/exec/exec.bpf.c). It keeps the process table current; every other sensor
 * syncs with it before handling its own records.
 */
import { z } from 'zod';
import { VigilHdr, VigilTask } from '../../events/layouts.js';
import { PROCESS_EVENT_SCHEMAS } from '../../events/schema.js';
import { BpfSensor, contextOptions, probeBpfSensor, type BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext, SensorInstance, SensorPlugin, SensorStats } from '../sensor.js';
import { decodeProcessRecord } from './decode.js';
import { ProcessEventBuilder } from './events.js';
import { VigilExec, VigilExit, VigilFork } from './layouts.js';

const ExecConfig = z
  .object({
    enabled: z.boolean().default(true).describe('process creation, fork and exit (needed by every other sensor for Image and lineage)'),
  })
  .strict()
  .default({ enabled: true });
type ExecConfig = z.infer<typeof ExecConfig>;

const LAYOUTS = [VigilHdr, VigilTask, VigilExec, VigilFork, VigilExit];

function sensorOptions(ctx?: SensorContext): BpfSensorOptions {
  return {
    object: 'exec.bpf.o',
    layouts: LAYOUTS,
    requiredLayouts: LAYOUTS.map((l) => l.name),
    ...(ctx ? contextOptions(ctx) : {}),
  };
}

export class ExecSensor implements SensorInstance {
  readonly name = 'exec';
  private readonly sensor: BpfSensor;
  private readonly builder: ProcessEventBuilder;
  private events = 0;

  constructor(private readonly ctx: SensorContext) {
    this.sensor = new BpfSensor(sensorOptions(ctx));
    if (ctx.onBadRecord) this.sensor.onBadRecord = ctx.onBadRecord;
    if (ctx.onHandlerError) this.sensor.onHandlerError = ctx.onHandlerError;
    this.builder = new ProcessEventBuilder(ctx.process);
  }

  start(): void {
    this.sensor.start((v, b, off, len) => {
      const ev = this.builder.handle(decodeProcessRecord(v, b, off, len));
      if (!ev) return;
      this.events++;
      this.ctx.emit(ev as unknown as Record<string, unknown>, this.builder.lastProcess, { json: this.builder.lastJson, stored: this.builder.lastStored });
    });
    // seed after attaching: no gap between what /proc shows and what the kernel reports
    if (!this.ctx.replay) this.ctx.process.table.seedFromProc();
  }

  drain(): number {
    return this.sensor.drain();
  }

  stats(): SensorStats {
    return { ...this.sensor.stats(), events: this.events };
  }

  close(): void {
    this.sensor.close();
  }
}

export const execSensor: SensorPlugin<ExecConfig> = {
  name: 'exec',
  title: 'process creation (full argv, cwd, exe), fork and exit',
  categories: ['process_creation', 'process_termination'],
  config: ExecConfig,
  processSource: true,
  eventSchemas: PROCESS_EVENT_SCHEMAS,
  layouts: [VigilExec, VigilFork, VigilExit],
  objects: ['exec.bpf.o'],
  create: (ctx) => new ExecSensor(ctx),
  probe: () => probeBpfSensor(sensorOptions()),
};
