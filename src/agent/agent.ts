/**
 * The agent: sensors → process table/events → detection → sinks.
 * Everything on this path runs on the main thread, synchronously per record;
 * sinks take serialized records without blocking (they drop and count instead).
 */
import { BootClock } from '../kernel/clock.js';
import { ExecSensor } from '../sensors/exec.js';
import type { SensorStats } from '../sensors/bpf-sensor.js';
import { ProcessTable, type ProcessTableStats } from '../events/process-table.js';
import { ProcessEventBuilder } from '../events/process-events.js';
import { UserNames } from '../events/users.js';
import type { ProcessRecord } from '../events/records.js';
import type { Sink, SinkStats } from '../sinks/sink.js';
import type { RecordError } from '../kernel/errors.js';

export interface Detector {
  /** alerts for one event; must not throw */
  evaluate(event: Record<string, unknown>): Array<Record<string, unknown>>;
  close?(): void | Promise<void>;
  stats?(): Record<string, number>;
}

export interface AgentOptions {
  sinks: Sink[];
  detector?: Detector | null;
  ringBufferBytes?: number;
  processTable?: { maxEntries?: number; maxExited?: number; maxDepth?: number };
  /** called for every event (after sinks) */
  onEvent?: (event: Record<string, unknown>) => void;
  onAlert?: (alert: Record<string, unknown>) => void;
  onBadRecord?: (err: RecordError) => void;
  /** handling a record failed for another reason (a bug): the record is skipped and counted */
  onHandlerError?: (err: unknown) => void;
}

export interface AgentStats {
  uptimeMs: number;
  events: number;
  byCategory: Record<string, number>;
  alerts: number;
  sensor: SensorStats;
  processTable: ProcessTableStats;
  sinks: Record<string, SinkStats>;
  detector?: Record<string, number>;
  drops: { kernel: number; decode: number; sinks: number };
}

export class Agent {
  readonly table: ProcessTable;
  private readonly builder: ProcessEventBuilder;
  private readonly exec: ExecSensor;
  private started = 0;
  private events = 0;
  private alerts = 0;
  private readonly byCategory: Record<string, number> = {};

  constructor(private readonly opts: AgentOptions) {
    this.table = new ProcessTable(opts.processTable ?? {});
    this.builder = new ProcessEventBuilder({ table: this.table, clock: new BootClock(), users: new UserNames() });
    this.exec = new ExecSensor(opts.ringBufferBytes ? { ringBufferBytes: opts.ringBufferBytes } : {});
    if (opts.onBadRecord) this.exec.onBadRecord = opts.onBadRecord;
    if (opts.onHandlerError) this.exec.onHandlerError = opts.onHandlerError;
  }

  /** Load and attach the sensors, then seed the table from /proc (no gap between the two). */
  start(): void {
    this.started = Date.now();
    this.exec.start((rec) => this.onRecord(rec));
    this.table.seedFromProc();
  }

  private onRecord(rec: ProcessRecord): void {
    const ev = this.builder.handle(rec);
    if (!ev) return;
    this.emit(ev as unknown as Record<string, unknown>);
  }

  /** Run one event through detection and the sinks. */
  emit(ev: Record<string, unknown>): void {
    this.events++;
    const cat = ev.category as string;
    this.byCategory[cat] = (this.byCategory[cat] ?? 0) + 1;
    const json = JSON.stringify(ev);
    for (const s of this.opts.sinks) s.write({ kind: 'event', value: ev, json });
    if (this.opts.detector) {
      for (const alert of this.opts.detector.evaluate(ev)) {
        this.alerts++;
        const aj = JSON.stringify(alert);
        for (const s of this.opts.sinks) s.write({ kind: 'alert', value: alert, json: aj });
        this.opts.onAlert?.(alert);
      }
    }
    this.opts.onEvent?.(ev);
  }

  stats(): AgentStats {
    const sensor = this.exec.stats();
    const sinks: Record<string, SinkStats> = {};
    let sinkDrops = 0;
    for (const s of this.opts.sinks) {
      const st = s.stats();
      sinks[s.name] = st;
      sinkDrops += st.dropped;
    }
    const out: AgentStats = {
      uptimeMs: Date.now() - this.started,
      events: this.events,
      byCategory: { ...this.byCategory },
      alerts: this.alerts,
      sensor,
      processTable: this.table.stats(),
      sinks,
      drops: { kernel: sensor.kernelDrops, decode: sensor.badRecords, sinks: sinkDrops },
    };
    const d = this.opts.detector?.stats?.();
    if (d) out.detector = d;
    return out;
  }

  /** Drain the ring, flush and close sinks, detach programs. */
  async stop(): Promise<void> {
    this.exec.drain();
    this.exec.close();
    await Promise.all(this.opts.sinks.map((s) => s.close()));
    await this.opts.detector?.close?.();
  }
}

/** One human line: totals, rate since the previous line, drops by stage. */
export function formatStatsLine(s: AgentStats, prev: AgentStats | null): string {
  const dt = prev ? (s.uptimeMs - prev.uptimeMs) / 1000 : s.uptimeMs / 1000;
  const de = s.events - (prev?.events ?? 0);
  const rate = dt > 0 ? de / dt : 0;
  const sinkDrops = Object.entries(s.sinks)
    .map(([n, st]) => `${n.split(':')[0]}=${st.dropped}`)
    .join(' ');
  return (
    `events ${s.events} (${rate.toFixed(1)}/s) alerts ${s.alerts} | drops kernel=${s.drops.kernel} decode=${s.drops.decode}` +
    `${sinkDrops ? ` ${sinkDrops}` : ''} | procs live=${s.processTable.live} evicted=${s.processTable.evicted}`
  );
}
