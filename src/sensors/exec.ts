/**
 * Exec sensor: process creation, fork and exit from the sched tracepoints
 * (bpf/exec.bpf.c). Emits decoded records; the process event builder turns
 * them into events.
 */
import { VigilExec, VigilExit, VigilFork, VigilHdr, VigilTask } from '../events/layouts.js';
import { decodeProcessRecord, type ProcessRecord } from '../events/records.js';
import { BpfSensor, type SensorStats } from './bpf-sensor.js';

export interface ExecSensorOptions {
  ringBufferBytes?: number;
}

export class ExecSensor {
  private readonly sensor: BpfSensor;

  constructor(opts: ExecSensorOptions = {}) {
    const o: ConstructorParameters<typeof BpfSensor>[0] = {
      object: 'exec.bpf.o',
      layouts: [VigilHdr, VigilTask, VigilExec, VigilFork, VigilExit],
      requiredLayouts: ['vigil_hdr', 'vigil_task', 'vigil_exec', 'vigil_fork', 'vigil_exit'],
    };
    if (opts.ringBufferBytes) o.ringBufferBytes = opts.ringBufferBytes;
    this.sensor = new BpfSensor(o);
  }

  set onBadRecord(fn: BpfSensor['onBadRecord']) {
    this.sensor.onBadRecord = fn;
  }

  set onHandlerError(fn: BpfSensor['onHandlerError']) {
    this.sensor.onHandlerError = fn;
  }

  start(onRecord: (rec: ProcessRecord) => void): void {
    this.sensor.start((v, b, off, len) => onRecord(decodeProcessRecord(v, b, off, len)));
  }

  drain(): number {
    return this.sensor.drain();
  }

  stats(): SensorStats {
    return this.sensor.stats();
  }

  close(): void {
    this.sensor.close();
  }
}
