/**
 * The agent: sensors (src/sensors/index.ts, each with the shared process
 * context) → events → detection → sinks.
 * Everything on this path runs on the main thread, synchronously per record;
 * sinks take serialized records without blocking (they drop and count instead).
 */
import { ProcessContext } from '../process/context.js';
import type { ProcInfo, ProcessTableStats } from '../process/process-table.js';
import { SENSORS, type RecordReplay, type RecordTap, type RingWakeup, type SerializedEvent, type SensorContext, type SensorInstance, type SensorStats, type ScopeMaps } from '../sensors/index.js';
import type { Sink, SinkProcess, SinkRecord, SinkStats } from '../sinks/sink.js';
import type { ProcessRef } from '../store/store.js';
import type { RecordError } from '../kernel/errors.js';
import { SharedMaps, type ProvenanceSettings } from '../sensors/index.js';
import type { Detector } from '../events/detector.js';

export type { Detector } from '../events/detector.js';


export interface AgentOptions {
  sinks: Sink[];
  detector?: Detector | null;
  /**
   * Sensor config sections by name (sensors.<name> in the config, validated by
   * each plugin's schema); a sensor runs when its section says enabled.
   * Absent: every sensor with its defaults.
   */
  sensors?: Record<string, { enabled: boolean }>;
  ringBufferBytes?: number;
  processTable?: { maxEntries?: number; maxExited?: number; maxDepth?: number };
  /**
   * how the rings wake the agent (ring_buffer_wakeup in the config): when the
   * unread data crosses a multiple of `bytes`, and every `intervalMs` anyway.
   * Default 1 MiB / 50 ms; bytes 0 = every record (the kernel's default).
   */
  wakeup?: RingWakeup;
  /** what each event's Ancestors carries (events.ancestors in the config; default 2 entries, command lines cut at 32 characters) */
  ancestors?: { maxDepth: number; maxCommandLine: number };
  /** called for every event (after sinks) */
  onEvent?: (event: Record<string, unknown>) => void;
  onAlert?: (alert: Record<string, unknown>) => void;
  onBadRecord?: (err: RecordError) => void;
  /** handling a record failed for another reason (a bug): the record is skipped and counted */
  onHandlerError?: (err: unknown) => void;
  /** replay recorded records instead of loading BPF (bench/pipeline) */
  replay?: RecordReplay;
  /** sees every record before it is handled (bench/pipeline records with it) */
  recorder?: RecordTap;
  /** report only a watched process tree (vigil watch: TreeScope.maps()) */
  scope?: ScopeMaps;
  /** file provenance on (docs/provenance.md): network taint, marks at write time, propagation */
  provenance?: ProvenanceSettings;
}

export interface AgentStats {
  uptimeMs: number;
  events: number;
  byCategory: Record<string, number>;
  alerts: number;
  /** per sensor, by name */
  sensors: Record<string, SensorStats>;
  processTable: ProcessTableStats;
  sinks: Record<string, SinkStats>;
  detector?: Record<string, number>;
  drops: { kernel: number; decode: number; sinks: number };
  /** events that came without a timestamp: given the agent's clock and flagged vigil.time_source "agent" */
  untimed: number;
}

export class Agent {
  /** maps the sensors' objects share (provenance state), for services that read or fill them */
  readonly sharedMaps = new SharedMaps();
  readonly process: ProcessContext;
  readonly sensors: SensorInstance[] = [];
  /** the process sensor (exec), when it runs: others read its ring first */
  private processSource: SensorInstance | null = null;
  private started = 0;
  private events = 0;
  private alerts = 0;
  private untimed = 0;
  private readonly byCategory: Record<string, number> = {};

  constructor(private readonly opts: AgentOptions) {
    this.process = new ProcessContext({ tableOptions: opts.processTable ?? {}, ...(opts.ancestors ? { ancestors: opts.ancestors } : {}) });
    const enabled = SENSORS.filter((p) => (opts.sensors?.[p.name] ?? p.config.parse(undefined)).enabled);
    // the process sensor first: the others sync with it before each batch
    enabled.sort((a, b) => Number(!!b.processSource) - Number(!!a.processSource));
    let source: SensorInstance | null = null;
    for (const plugin of enabled) {
      const ctx: SensorContext = {
        process: this.process,
        emit: (ev, proc, ser) => this.emit(ev, proc, ser),
        ringBufferBytes: opts.ringBufferBytes ?? 16 * 1024 * 1024,
        selfPid: process.pid,
        syncProcesses: () => {
          source?.drain();
        },
        ...(opts.onBadRecord ? { onBadRecord: opts.onBadRecord } : {}),
        ...(opts.onHandlerError ? { onHandlerError: opts.onHandlerError } : {}),
        ...(opts.replay ? { replay: opts.replay } : {}),
        sharedMaps: this.sharedMaps,
        ...(opts.provenance ? { provenance: opts.provenance } : {}),
        ...(opts.recorder ? { recorder: opts.recorder } : {}),
        wakeup: opts.wakeup ?? { bytes: 1024 * 1024, intervalMs: 50 },
        ...(opts.scope ? { scope: opts.scope } : {}),
      };
      const cfg = opts.sensors?.[plugin.name] ?? plugin.config.parse(undefined);
      const inst = plugin.create(ctx, cfg as never);
      if (plugin.processSource) source = this.processSource = inst;
      this.sensors.push(inst);
    }
  }

  /**
   * Read the process sensor's ring now: a reader of another ring calls this
   * before its batch, so a record of a process that has just executed finds the
   * exec in the table (else it would be named after the image it forked from).
   */
  syncProcesses(): void {
    this.processSource?.drain();
  }

  get table() {
    return this.process.table;
  }

  /** Names of the running sensors, in start order. */
  sensorNames(): string[] {
    return this.sensors.map((s) => s.name);
  }

  /** Load and attach the sensors (the process sensor first, which seeds the table from /proc). */
  start(): void {
    this.started = Date.now();
    try {
      for (const s of this.sensors) s.start();
    } catch (e) {
      for (const s of this.sensors) s.close();
      throw e;
    }
  }

  /**
   * The parent's table entry of an entry (its ProcessGuid computed), for sinks
   * that store lineage. One function for every record: no allocation per event.
   */
  private readonly parentOf = (p: ProcessRef): SinkProcess | undefined => {
    const q = this.process.table.get(p.ppid);
    if (!q) return undefined;
    this.process.procGuid(q);
    return q as SinkProcess;
  };

  /** The table entry an event is about, found by ProcessId and checked by ProcessGuid. */
  private processOf(ev: Record<string, unknown>): ProcInfo | undefined {
    const pid = ev.ProcessId;
    if (typeof pid !== 'number') return undefined;
    const p = this.process.table.get(pid);
    return p && this.process.procGuid(p) === ev.ProcessGuid ? p : undefined;
  }

  /**
   * Run one event through detection and the sinks: serialized once, handed to
   * every sink with the process it is about (`proc`: the table entry, when the
   * sensor has it; else looked up).
   */
  emit(ev: Record<string, unknown>, proc?: ProcInfo | null, ser?: SerializedEvent): void {
    this.events++;
    const cat = ev.category as string;
    this.byCategory[cat] = (this.byCategory[cat] ?? 0) + 1;
    let json = ser?.json;
    let stored = ser?.stored ?? undefined;
    if (typeof ev.timestamp !== 'string') {
      // no time from its source: the agent's clock, said so and counted (never a silent "now" in the store)
      this.untimed++;
      ev.timestamp = new Date().toISOString().replace('Z', '000Z');
      ev.vigil = { ...((ev.vigil as Record<string, unknown> | undefined) ?? {}), time_source: 'agent' };
      json = undefined;
      stored = undefined;
    }
    json ??= JSON.stringify(ev);
    const p = proc ?? this.processOf(ev);
    if (p) this.process.procGuid(p);
    const rec: SinkRecord = { kind: 'event', value: ev, json, process: p as SinkProcess | undefined, parentOf: this.parentOf, stored };
    for (const s of this.opts.sinks) s.write(rec);
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
    const sensors: Record<string, SensorStats> = {};
    let kernelDrops = 0;
    let decodeDrops = 0;
    for (const x of this.sensors) {
      const st = x.stats();
      sensors[x.name] = st;
      kernelDrops += st.kernelDrops;
      decodeDrops += st.badRecords;
    }
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
      sensors,
      processTable: this.table.stats(),
      sinks,
      drops: { kernel: kernelDrops, decode: decodeDrops, sinks: sinkDrops },
      untimed: this.untimed,
    };
    const d = this.opts.detector?.stats?.();
    if (d) out.detector = d;
    return out;
  }

  /** Drain the ring, flush and close sinks, detach programs. */
  async stop(): Promise<void> {
    for (const s of this.sensors) s.drain();
    for (const s of this.sensors) s.close();
    await Promise.all(this.opts.sinks.map((s) => s.close()));
    await this.opts.detector?.close?.();
  }
}

/** A network output's queue (src/sinks/delivery.ts), when it has something to say: drops by cause, retries, waiting. */
function deliveryNote(st: SinkStats): string {
  const d = st.delivery;
  if (!d || (st.dropped === 0 && d.retries === 0 && d.queueDepth === 0)) return '';
  const why = (['full', 'failed', 'shutdown'] as const).filter((k) => d.drops[k]).map((k) => `${k}=${d.drops[k]}`);
  return ` (${[...why, `retries=${d.retries}`, `queued=${d.queueDepth}`].join(' ')})`;
}

/** One human line: totals, rate since the previous line, drops by stage. */
export function formatStatsLine(s: AgentStats, prev: AgentStats | null): string {
  const dt = prev ? (s.uptimeMs - prev.uptimeMs) / 1000 : s.uptimeMs / 1000;
  const de = s.events - (prev?.events ?? 0);
  const rate = dt > 0 ? de / dt : 0;
  const sinkDrops = Object.entries(s.sinks)
    .map(([n, st]) => `${n.split(':')[0]}=${st.dropped}${deliveryNote(st)}`)
    .join(' ');
  const sum = (of: (st: AgentStats['sensors'][string]) => number | undefined) => Object.values(s.sensors).reduce((a, st) => a + (of(st) ?? 0), 0);
  const busy = sum((st) => st.busyWaits);
  const busyGaveUp = sum((st) => st.busyTimeouts);
  const per = Object.entries(s.sensors)
    .map(([n, st]) => `${n} ${st.records}${st.kernelDrops || st.badRecords ? ` (lost kernel=${st.kernelDrops} decode=${st.badRecords})` : ''}`)
    .join(' ');
  return (
    `events ${s.events} (${rate.toFixed(1)}/s) alerts ${s.alerts} | records ${per} | drops kernel=${s.drops.kernel} decode=${s.drops.decode}` +
    `${sinkDrops ? ` ${sinkDrops}` : ''}${s.untimed ? ` untimed=${s.untimed}` : ''} | procs live=${s.processTable.live} evicted=${s.processTable.evicted}` +
    ` | reads ${sum((st) => st.ringWakeups)} woken, ${sum((st) => st.timerDrains)} timed` +
    (busy ? `, ${busy} waited for a record being written${busyGaveUp ? ` (${busyGaveUp} gave up)` : ''}` : '')
  );
}
