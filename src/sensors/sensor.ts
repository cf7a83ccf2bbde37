/**
 * What a sensor is. A sensor is one folder under src/sensors/ (its records'
 * layouts, decoder, event builder, config keys and doctor probe; its BPF program
 * in bpf/<name>/) and one line in src/sensors/index.ts. The agent knows sensors
 * only through this interface.
 */
import type { z } from 'zod';
import type { RecordError } from '../kernel/errors.js';
import type { Layout } from '../events/layouts.js';
import type { ProcessContext } from '../process/context.js';
import type { ProcInfo } from '../process/process-table.js';
import type { StoreSplit } from '../store/store.js';
import type { RecordHandler } from '../kernel/ringbuf.js';
import type { SharedMaps } from './shared-maps.js';

/**
 * Replay instead of the kernel (bench/pipeline): a sensor given one loads and
 * attaches nothing; its BPF sensor hands its record handler (the very function
 * the ring buffer reader calls) to register(), keyed by object file name, and
 * recorded records are fed through it.
 */
export interface RecordReplay {
  register(object: string, handler: RecordHandler): void;
}

/** Sees each record's bytes (valid only during the call) before its handler runs. */
export type RecordTap = (object: string, record: Uint8Array) => void;

/**
 * An event a sensor serialized itself (the exact text JSON.stringify gives; the
 * agent then does not serialize it again), with its store row when it made one.
 */
export interface SerializedEvent {
  json: string;
  stored?: StoreSplit | null;
}

/** Counters of one sensor, shown per sensor in the stats line. */
export interface SensorStats {
  /** records consumed from the ring */
  records: number;
  /** records that failed to decode (counted, skipped) */
  badRecords: number;
  /** kernel: ring buffer full, record lost */
  kernelDrops: number;
  /** kernel counters by name (enum vigil_stat and the sensor's own) */
  kernel: Record<string, number>;
  /** times the kernel woke the reader */
  ringWakeups: number;
  /** timer drains that found records (RingWakeup.intervalMs) */
  timerDrains?: number;
  /** the timer's runs, with records or not (it stops while the ring is quiet: RingWakeup) */
  timerTicks?: number;
  /**
   * the process sensor (BpfSensorOptions.waitBusyMs): drains that met a record
   * still being written and waited for it, and waits that gave up (the record was
   * read later; an event of another ring handled meanwhile may name its process's
   * previous image)
   */
  busyWaits?: number;
  busyTimeouts?: number;
  /** events this sensor produced */
  events: number;
  /** the BPF object file it loaded (x.compat.bpf.o where the kernel has no bpf_loop) */
  object?: string;
  /** the sensor's own userspace counters by name (e.g. malformed DNS, evictions) */
  counters?: Record<string, number>;
  /** the ring buffer now: its size and the bytes written and not yet read (read on demand, e.g. by /metrics) */
  ring?: { size: number; pending: number };
}

/** What the agent gives a sensor. */
export interface SensorContext {
  /** shared enrichment: process table, ProcessGuid, host, user names, clock */
  process: ProcessContext;
  /**
   * hand an event to detection and the outputs; `process`: the table entry it is
   * about, when the sensor has it (else the agent finds it by ProcessId and ProcessGuid)
   */
  emit(event: Record<string, unknown>, process?: ProcInfo | null, serialized?: SerializedEvent): void;
  /** ring buffer size for this sensor's object */
  ringBufferBytes: number;
  /** the agent's own process id: sensors leave its own actions out */
  selfPid: number;
  /**
   * Bring the process table up to date before handling a batch (drains the
   * process sensor's ring), so a file or network record never meets a process
   * the table has not seen exec yet.
   */
  syncProcesses(): void;
  onBadRecord?(err: RecordError): void;
  onHandlerError?(err: unknown): void;
  /** replay recorded records instead of loading BPF (pass it on to BpfSensorOptions.replay) */
  replay?: RecordReplay;
  /** told of every record before it is handled (bench/pipeline records a mix; pass it on to BpfSensorOptions.recorder) */
  recorder?: RecordTap;
  /** how the ring wakes the reader (pass it on to BpfSensorOptions.wakeup); absent: every record */
  wakeup?: RingWakeup;
  /** a watched tree (src/sensors/scope.ts): the sensors' programs share its maps and report only that tree */
  scope?: ScopeMaps;
  /** maps the agent's objects share (provenance: vigil_taint, vigil_marks; pass on to BpfSensorOptions.sharedMaps) */
  sharedMaps?: SharedMaps;
  /** file provenance is on (docs/provenance.md): the sensors that take part taint, mark and propagate; absent: off */
  provenance?: ProvenanceSettings;
}

/** What the kernel side of provenance needs (the mode itself is the provenance service's business). */
export interface ProvenanceSettings {
  /** loopback peers count as network */
  loopback: boolean;
  /** a mark propagates through at most this many derived writes */
  maxDepth: number;
}

/** The file descriptors of a tree scope's kernel maps (bpf/include/vigil_scope.h), reused by every object before load. */
export interface ScopeMaps {
  tgidsFd: number;
  settingsFd: number;
}

/**
 * Wake-ups of a sensor's ring reader: the kernel wakes it when the unread data
 * crosses a multiple of `bytes` (0: for every record that finds it caught up, the
 * kernel's default), and it drains every `intervalMs` anyway while records come.
 * With `bytes` > 0 the timer stops after a period without records, and the BPF
 * side wakes the reader for the first record after half a period without any
 * (vigil_wakeup in bpf/include/vigil_bpf.h): an idle agent is not woken at all.
 */
export interface RingWakeup {
  bytes: number;
  intervalMs: number;
}

/** A running sensor. */
export interface SensorInstance {
  readonly name: string;
  /** load, attach, start consuming */
  start(): void;
  /** consume what is in the ring now; returns the records handled */
  drain(): number;
  stats(): SensorStats;
  /** detach and free; stats() keeps answering */
  close(): void;
}

/** Result of a doctor probe: the real object loaded and attached (or why not). */
export interface SensorProbe {
  ok: boolean;
  detail: string;
  hint?: string;
}

export interface SensorPlugin<C extends { enabled: boolean } = { enabled: boolean }> {
  /** name used in config (sensors.<name>), --sensors and the stats line */
  readonly name: string;
  /** one line for --help and doctor */
  readonly title: string;
  /** event categories it produces */
  readonly categories: readonly string[];
  /** its config section (sensors.<name>), with defaults; `enabled` turns it on or off */
  readonly config: z.ZodType<C, unknown>;
  /** the process sensor: others sync with it before each batch (at most one) */
  readonly processSource?: boolean;
  /** zod schemas of the events it emits (each a strict object with a literal `category`) */
  readonly eventSchemas: readonly z.ZodObject[];
  /** its record layouts (checked against BTF at load and in tests) */
  readonly layouts: readonly Layout[];
  /** BPF object file names it may load (doctor, layout tests) */
  readonly objects: readonly string[];
  create(ctx: SensorContext, config: C): SensorInstance;
  /** load and attach the real object(s) with its real config, then detach */
  probe(): SensorProbe;
}
