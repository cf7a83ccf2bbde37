/**
 * Exec sensor: process creation, fork and exit from the sched BTF tracepoints
 * (bpf/exec/exec.bpf.c). It keeps the process table current; every other sensor
 * syncs with it before handling its own records.
 */
import { z } from 'zod';
import { VigilHdr, VigilTask } from '../../events/layouts.js';
import { PROCESS_EVENT_SCHEMAS } from '../../events/schema.js';
import { BpfSensorInstance, probeBpfSensor, type BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext, SensorPlugin } from '../sensor.js';
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

/**
 * How long a drain of this ring waits for a record still being written. Other
 * sensors sync with this ring before each of their batches (SensorContext.syncProcesses):
 * a record they hold was written after the exec, fork and exit records of its
 * process, which were reserved before it but may still be in their producer's
 * hands (a CPU, or a VM's vCPU, taken away mid-copy). Without the wait the sync
 * stops there and the record is named after the image its process forked from.
 */
const WAIT_BUSY_MS = 50;

function sensorOptions(): BpfSensorOptions {
  return { object: 'exec.bpf.o', layouts: LAYOUTS, requiredLayouts: LAYOUTS.map((l) => l.name), waitBusyMs: WAIT_BUSY_MS };
}

export class ExecSensor extends BpfSensorInstance {
  readonly name = 'exec';
  private readonly builder: ProcessEventBuilder;

  constructor(ctx: SensorContext) {
    // the exec sensor is the process table's source: nothing to sync before its batches
    super(ctx, sensorOptions(), false);
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
