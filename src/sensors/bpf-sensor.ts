/**
 * The piece every sensor shares: open one BPF object, check its record layouts
 * against its BTF, load, attach, consume its ring buffer on the event loop and
 * report losses (kernel ring-buffer failures, bad records).
 * A sensor supplies the object name, the layouts it decodes and a record handler.
 */
import { fileURLToPath } from 'node:url';
import { BpfError, BpfObject, RingBufferReader, bpfVariant, variantObjectPath, type BpfMap, type OpenOptions, type VariantChoice } from '../kernel/index.js';
import { checkLayouts, STAT_MAX, Stat, VigilWakeupCfg, type Layout } from '../events/layouts.js';
import { RecordError, errnoName } from '../kernel/errors.js';
import type { SharedMaps } from './shared-maps.js';
import type { RecordReplay, RecordTap, RingWakeup, ScopeMaps, SensorContext, SensorInstance, SensorProbe, SensorStats } from './sensor.js';

export type { SensorStats } from './sensor.js';

/** Directory of the compiled BPF objects (make -C bpf). */
export const BPF_OBJECT_DIR = fileURLToPath(new URL('../../bpf/.output/', import.meta.url));

export function objectPath(name: string): string {
  return `${BPF_OBJECT_DIR}${name}`;
}

/**
 * The build of object `name` this kernel takes: exec.bpf.o where it has bpf_loop,
 * exec.compat.bpf.o where not (src/kernel/variant.ts). Every sensor loads through here.
 */
export function sensorObjectPath(name: string): string {
  return variantObjectPath(objectPath(name));
}

export interface BpfSensorOptions {
  object: string;
  layouts: Layout[];
  requiredLayouts?: string[];
  ringBufferBytes?: number;
  /** programs to leave unloaded */
  skipPrograms?: string[];
  budget?: number;
  /** names of the sensor's own kernel counters (vigil_stats slots 16..31), by slot */
  statNames?: Record<number, string>;
  /** called before each batch of records is handled (ordering with another sensor) */
  beforeBatch?: () => void;
  /** wait up to this many ms for a record still being written (RingBufferOptions.waitBusyMs): the ring others sync with */
  waitBusyMs?: number;
  /** configure maps before load (sizes) and fill them after (settings, filters) */
  beforeLoad?: (obj: BpfObject) => void;
  afterLoad?: (obj: BpfObject) => void;
  /** replay (bench/pipeline): load and attach nothing, hand the record handler to the replay */
  replay?: RecordReplay;
  /** recording (bench/pipeline): sees each record before the handler */
  recorder?: RecordTap;
  /** batch wake-ups (vigil_wakeup in vigil_bpf.h) and drain on a timer; absent: woken per record */
  wakeup?: RingWakeup;
  /** a watched tree: the object's vigil_scope_* maps (vigil_scope.h) become the scope's own */
  scope?: ScopeMaps;
  /** maps shared with the agent's other objects: reused when registered, else registered after load */
  sharedMaps?: { registry: SharedMaps; names: readonly string[] };
}

/** The options every sensor passes on from its context: ring size, replay and recorder (bench/pipeline). */
export function contextOptions(ctx: SensorContext): Pick<BpfSensorOptions, 'ringBufferBytes' | 'replay' | 'recorder' | 'wakeup' | 'scope'> {
  return {
    ...(ctx.scope ? { scope: ctx.scope } : {}),
    ...(ctx.ringBufferBytes ? { ringBufferBytes: ctx.ringBufferBytes } : {}),
    ...(ctx.replay ? { replay: ctx.replay } : {}),
    ...(ctx.recorder ? { recorder: ctx.recorder } : {}),
    ...(ctx.wakeup ? { wakeup: ctx.wakeup } : {}),
  };
}

export type BadRecordHandler = (err: RecordError) => void;

export class BpfSensor {
  readonly obj: BpfObject;
  private reader: RingBufferReader | null = null;
  private statsMap: BpfMap | null = null;
  private final: Omit<SensorStats, 'events'> | null = null;
  onBadRecord: BadRecordHandler | null = null;
  /** a handler failed for another reason than a malformed record (a bug): counted too */
  onHandlerError: ((err: unknown) => void) | null = null;

  /** which build was loaded and why (bpf_loop or the compat build) */
  readonly variant: VariantChoice;

  constructor(private readonly opts: BpfSensorOptions) {
    const open: OpenOptions = { skipPrograms: opts.skipPrograms ?? [] };
    if (opts.ringBufferBytes) open.maxEntries = { events: opts.ringBufferBytes };
    this.variant = bpfVariant();
    this.obj = BpfObject.open(sensorObjectPath(opts.object), open);
    if (opts.scope) {
      try {
        if (!this.obj.mapNames().includes('vigil_scope_tgids')) {
          throw new BpfError({ op: `scope of ${this.obj.name}`, errno: 22, hint: 'this object does not include vigil_scope.h: it cannot be limited to a watched tree' });
        }
        this.obj.reuseMap('vigil_scope_tgids', opts.scope.tgidsFd);
        this.obj.reuseMap('vigil_scope_settings', opts.scope.settingsFd);
      } catch (e) {
        this.obj.close();
        throw e;
      }
    }
  }

  /** Check layouts, load, attach every program. */
  start(handler: (view: DataView, bytes: Uint8Array, off: number, len: number) => void): void {
    const tap = this.opts.recorder;
    if (tap) {
      const inner = handler;
      const object = this.opts.object;
      handler = (v, b, off, len) => {
        tap(object, b.subarray(off, off + len));
        inner(v, b, off, len);
      };
    }
    // every object has vigil_bpf.h's vigil_wakeup, written below
    const mismatches = checkLayouts(this.obj.btf(), [...this.opts.layouts, VigilWakeupCfg], [...(this.opts.requiredLayouts ?? []), VigilWakeupCfg.name]);
    if (mismatches.length) {
      throw new BpfError({
        op: `layout check of ${this.obj.name}`,
        errno: 22,
        hint: `TypeScript decoders disagree with the object's BTF: ${mismatches.map((m) => `${m.layout}: ${m.problem}`).join('; ')}`,
      });
    }
    if (this.opts.replay) {
      this.opts.replay.register(this.opts.object, handler);
      return;
    }
    this.opts.beforeLoad?.(this.obj);
    const shared = this.opts.sharedMaps;
    for (const name of shared?.names ?? []) {
      const m = shared!.registry.get(name);
      if (m) this.obj.reuseMap(name, m.fd);
    }
    this.obj.load();
    for (const name of shared?.names ?? []) shared!.registry.offer(this.obj.map(name));
    this.opts.afterLoad?.(this.obj);
    this.statsMap = this.obj.map('vigil_stats');
    const ring = this.obj.map('events');
    const wakeup = this.opts.wakeup;
    // batched: the BPF side wakes the reader when the unread data crosses a multiple of `every` (at most a
    // quarter of the ring), and for the first record after half the timer's period without records, so
    // the reader's timer may stop while the ring is quiet (RingBufferOptions.quietStop)
    const batched = !!wakeup && wakeup.bytes > 0;
    const quietStop = batched && wakeup.intervalMs > 0;
    if (batched) {
      const F = VigilWakeupCfg.fields;
      const v = Buffer.alloc(VigilWakeupCfg.size);
      v.writeBigUInt64LE(BigInt(Math.min(wakeup.bytes, ring.info.maxEntries / 4)), F.every.offset);
      v.writeBigUInt64LE(quietStop ? BigInt(Math.round(wakeup.intervalMs * 1e6)) / 2n : 0n, F.quiet_ns.offset);
      this.obj.map('vigil_wakeup').update(Buffer.alloc(4), v);
    }
    this.reader = new RingBufferReader(ring, handler, {
      budget: this.opts.budget ?? 8192,
      ...(wakeup ? { intervalMs: wakeup.intervalMs } : {}),
      ...(quietStop ? { quietStop: true } : {}),
      ...(this.opts.beforeBatch ? { beforeBatch: this.opts.beforeBatch } : {}),
      ...(this.opts.waitBusyMs ? { waitBusyMs: this.opts.waitBusyMs } : {}),
      onHandlerError: (e) => {
        if (e instanceof RecordError) this.onBadRecord?.(e);
        else this.onHandlerError?.(e);
      },
    });
    this.obj.attachAll();
    this.reader.start();
  }

  /** Consume whatever is in the ring now (used at shutdown and in tests). */
  drain(): number {
    return this.reader?.drain() ?? 0;
  }

  stats(): Omit<SensorStats, 'events'> {
    if (this.final) return this.final;
    const kernel = readKernelStats(this.statsMap, this.opts.statNames);
    return {
      records: this.reader?.stats.records ?? 0,
      badRecords: this.reader?.stats.handlerErrors ?? 0,
      kernelDrops: kernel.rb_full ?? 0,
      kernel,
      ringWakeups: this.reader?.stats.wakeups ?? 0,
      timerDrains: this.reader?.stats.timerDrains ?? 0,
      timerTicks: this.reader?.stats.timerTicks ?? 0,
      ...(this.opts.waitBusyMs ? { busyWaits: this.reader?.stats.busyWaits ?? 0, busyTimeouts: this.reader?.stats.busyTimeouts ?? 0 } : {}),
      object: this.obj.name,
      ...(this.reader ? { ring: { size: this.reader.size, pending: this.reader.pending() } } : {}),
    };
  }

  /** Detach and free; stats() keeps answering with the final counts. */
  close(): void {
    if (this.final) return;
    this.final = this.stats();
    this.reader?.close();
    this.reader = null;
    this.statsMap = null;
    this.obj.close();
  }
}

const STAT_NAMES = Object.fromEntries(Object.entries(Stat).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

/** Sum the per-CPU vigil_stats counters (unnamed, unused sensor slots left out). */
export function readKernelStats(map: BpfMap | null, sensorNames: Record<number, string> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  if (!map) return out;
  const key = Buffer.alloc(4);
  for (let i = 0; i < STAT_MAX; i++) {
    key.writeUInt32LE(i);
    const vals = map.lookupPerCpu(key);
    let sum = 0;
    for (const v of vals ?? []) sum += Number(v.readBigUInt64LE(0));
    const name = i >= Stat.SENSOR ? sensorNames[i] : STAT_NAMES[i];
    if (name) out[name] = sum;
    else if (sum) out[`stat${i}`] = sum;
  }
  return out;
}

/**
 * Doctor's probe of a sensor: open the real object, check its layouts, load
 * and attach every program as the sensor would, then detach.
 */
export function probeBpfSensor(opts: BpfSensorOptions): SensorProbe {
  let s: BpfSensor | null = null;
  try {
    s = new BpfSensor(opts);
    s.start(() => {});
    const progs = s.obj.programs().filter((p) => p.autoload).length;
    const build = s.variant.variant === 'compat' ? ` (compat build: ${s.variant.reason})` : '';
    return { ok: true, detail: `${s.obj.name}: ${progs} programs loaded and attached${build}` };
  } catch (e) {
    if (e instanceof BpfError) {
      const why = e.reason ? ` [${e.reason}]` : '';
      return { ok: false, detail: `${e.op}: ${e.code ?? errnoName(e.errno)}${why}`, ...(e.hint ? { hint: e.hint } : {}) };
    }
    return { ok: false, detail: (e as Error).message };
  } finally {
    s?.close();
  }
}

/**
 * What every BPF-backed sensor's instance shares: one BpfSensor built from the
 * sensor's options and its context's, bad-record and handler-error routing, the
 * event count, drain, stats and close. A sensor adds its record handler (start)
 * and whatever it keeps besides (timers, builders' counters).
 */
export abstract class BpfSensorInstance implements SensorInstance {
  abstract readonly name: string;
  protected readonly sensor: BpfSensor;
  protected events = 0;

  constructor(
    protected readonly ctx: SensorContext,
    opts: BpfSensorOptions,
    /** sync the process table before each batch (sensors whose events name a process the exec sensor reports) */
    syncProcesses = true,
  ) {
    this.sensor = new BpfSensor({ ...opts, ...(syncProcesses ? { beforeBatch: () => ctx.syncProcesses() } : {}), ...contextOptions(ctx) });
    if (ctx.onBadRecord) this.sensor.onBadRecord = ctx.onBadRecord;
    if (ctx.onHandlerError) this.sensor.onHandlerError = ctx.onHandlerError;
  }

  abstract start(): void;

  /** Hand one event to the agent (counted). */
  protected emit(ev: object): void {
    this.events++;
    this.ctx.emit(ev as Record<string, unknown>);
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
