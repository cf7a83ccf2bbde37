/**
 * TLS plaintext sensor: uprobes on OpenSSL's SSL_write, SSL_read, SSL_write_ex
 * and SSL_read_ex (bpf/tls/tls.bpf.c) in libssl.so.3 and in binaries that carry
 * their own OpenSSL and export those symbols (node). Each call that moved bytes
 * gives a tls_data event with the first capture_bytes of plaintext (the rest is
 * flagged as truncated). Off by default for the whole host (`vigil run`): it
 * reads what processes send encrypted; `vigil watch` turns it on for its tree.
 */
import { existsSync, realpathSync } from 'node:fs';
import { z } from 'zod';
import { decodeBytes } from '../../events/bytes.js';
import { VigilHdr, VigilTask } from '../../events/layouts.js';
import { BpfError, type BpfObject } from '../../kernel/index.js';
import { BpfSensor, contextOptions, probeBpfSensor, type BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext, SensorInstance, SensorPlugin, SensorStats } from '../sensor.js';
import { decodeTlsRecord, type TlsRecord } from './decode.js';
import { TLS_DATA_MAX, TlsFlags, TlsFunc, TlsStat, VigilTlsData, VigilTlsSettings } from './layouts.js';
import { TLS_EVENT_SCHEMAS, type TlsDataEvent } from './schema.js';

const DEFAULTS = { enabled: false, targets: [] as string[], auto_targets: true, capture_bytes: 4096 };

export const TlsConfig = z
  .object({
    enabled: z.boolean().default(DEFAULTS.enabled).describe('capture TLS plaintext (off by default: it reads what processes encrypt; vigil watch turns it on for its tree)'),
    targets: z.array(z.string().startsWith('/', 'an absolute path')).default(DEFAULTS.targets).describe('more files to hook: libssl copies or binaries that export SSL_write/SSL_read'),
    auto_targets: z.boolean().default(DEFAULTS.auto_targets).describe('also hook the system libssl.so.3 and the node binary running vigil'),
    capture_bytes: z.number().int().min(1).max(TLS_DATA_MAX).default(DEFAULTS.capture_bytes).describe(`plaintext bytes kept per call (at most ${TLS_DATA_MAX}); longer calls are flagged truncated`),
  })
  .strict()
  .default(DEFAULTS);
export type TlsConfig = z.infer<typeof TlsConfig>;

const LAYOUTS = [VigilHdr, VigilTask, VigilTlsData, VigilTlsSettings];
const STAT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TlsStat).map(([k, v]) => [v, k.toLowerCase()]));

/** Where Debian and other distributions keep libssl 3 (the first that exists per real file is hooked). */
const LIBSSL_PATHS = ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/usr/lib/aarch64-linux-gnu/libssl.so.3', '/usr/lib64/libssl.so.3', '/usr/lib/libssl.so.3', '/lib64/libssl.so.3'];

/** The hooks: [function, entry program, return program, enum value]. */
const HOOKS: Array<[keyof typeof FUNC_NAMES, string, string]> = [
  ['SSL_write', 'vigil_tls_write_enter', 'vigil_tls_write_exit'],
  ['SSL_read', 'vigil_tls_read_enter', 'vigil_tls_read_exit'],
  ['SSL_write_ex', 'vigil_tls_write_ex_enter', 'vigil_tls_write_ex_exit'],
  ['SSL_read_ex', 'vigil_tls_read_ex_enter', 'vigil_tls_read_ex_exit'],
];
const FUNC_NAMES = { SSL_write: TlsFunc.SSL_WRITE, SSL_read: TlsFunc.SSL_READ, SSL_write_ex: TlsFunc.SSL_WRITE_EX, SSL_read_ex: TlsFunc.SSL_READ_EX } as const;
const FUNC_BY_ID = Object.fromEntries(Object.entries(FUNC_NAMES).map(([k, v]) => [v, k])) as Record<number, TlsDataEvent['Function']>;

/** The files to hook for a config: targets, plus libssl and node when auto_targets (real paths, each once). */
export function tlsTargets(cfg: TlsConfig): string[] {
  const out: string[] = [];
  const add = (p: string) => {
    if (!existsSync(p)) return;
    const r = realpathSync(p);
    if (!out.includes(r)) out.push(r);
  };
  for (const t of cfg.targets) add(t);
  if (cfg.auto_targets) {
    for (const p of LIBSSL_PATHS) add(p);
    add(process.execPath);
  }
  return out;
}

/** A file hooked: the functions found in it (libbpf resolves the symbols; a file lacking one is hooked for the rest). */
export interface TlsTarget {
  path: string;
  functions: string[];
}

export class TlsSensor implements SensorInstance {
  readonly name = 'tls';
  private readonly sensor: BpfSensor;
  private events = 0;
  /** attached files, by cookie (their index) */
  readonly targets: TlsTarget[] = [];
  private readonly attachFailures: string[] = [];

  constructor(
    private readonly ctx: SensorContext,
    private readonly cfg: TlsConfig,
  ) {
    this.sensor = new BpfSensor({ ...sensorOptions(cfg, ctx.selfPid, (obj) => this.attachAll(obj)), beforeBatch: () => ctx.syncProcesses(), ...contextOptions(ctx) });
    if (ctx.onBadRecord) this.sensor.onBadRecord = ctx.onBadRecord;
    if (ctx.onHandlerError) this.sensor.onHandlerError = ctx.onHandlerError;
  }

  private attachAll(obj: BpfObject): void {
    for (const t of tlsTargets(this.cfg)) this.attachTo(obj, t);
    if (!this.targets.length) {
      throw new BpfError({ op: 'attach TLS uprobes', errno: 2, hint: `no file exports SSL_write/SSL_read: ${this.attachFailures.join('; ') || 'no libssl.so.3 or node found'} (set sensors.tls.targets)` });
    }
  }

  /** Hook one more file (a binary of the watched tree that carries OpenSSL). Returns the functions hooked. */
  attachBinary(path: string): string[] {
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return [];
    }
    if (this.targets.some((t) => t.path === real)) return [];
    return this.attachTo(this.sensor.obj, real);
  }

  private attachTo(obj: BpfObject, path: string): string[] {
    const cookie = BigInt(this.targets.length);
    const functions: string[] = [];
    for (const [fn, enter, exit] of HOOKS) {
      try {
        obj.program(enter).attachUprobe(path, { funcName: fn, cookie });
        obj.program(exit).attachUprobe(path, { funcName: fn, cookie, retprobe: true });
        functions.push(fn);
      } catch (e) {
        this.attachFailures.push(`${path}:${fn}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    if (functions.length) this.targets.push({ path, functions });
    return functions;
  }

  start(): void {
    this.sensor.start((v, b, off, len) => {
      const ev = this.build(decodeTlsRecord(v, b, off, len));
      this.events++;
      this.ctx.emit(ev as unknown as Record<string, unknown>);
    });
  }

  private build(r: TlsRecord): TlsDataEvent {
    const d = decodeBytes(r.data);
    const fn = FUNC_BY_ID[r.func]!;
    const vigil: Record<string, unknown> = { ...this.ctx.process.taskFields(r.ktimeNs, r.task), ssl: `0x${r.ssl.toString(16)}`, captured: r.data.length };
    if (r.flags & TlsFlags.TRUNCATED) vigil.truncated = ['Data'];
    if (r.flags & TlsFlags.FAULT) vigil.fault = true;
    if (r.fd >= 0) vigil.fd = r.fd;
    if (d.raw !== undefined) vigil.raw = { Data: d.raw };
    return {
      category: 'tls_data',
      ...this.ctx.process.actor(r.ktimeNs, r.task),
      Direction: fn.startsWith('SSL_write') ? 'send' : 'receive',
      Function: fn,
      Library: this.targets[Number(r.cookie)]?.path ?? '',
      Bytes: r.len,
      Data: d.text,
      vigil,
    } as TlsDataEvent;
  }

  drain(): number {
    this.ctx.syncProcesses();
    return this.sensor.drain();
  }

  stats(): SensorStats {
    const counters: Record<string, number> = { targets: this.targets.length, attach_failures: this.attachFailures.length };
    return { ...this.sensor.stats(), events: this.events, counters };
  }

  close(): void {
    this.sensor.close();
  }
}

function sensorOptions(cfg: TlsConfig, selfPid: number, attach?: (obj: BpfObject) => void): BpfSensorOptions {
  return {
    object: 'tls.bpf.o',
    layouts: LAYOUTS,
    requiredLayouts: LAYOUTS.map((l) => l.name),
    statNames: STAT_NAMES,
    afterLoad: (obj) => {
      const s = Buffer.alloc(VigilTlsSettings.size);
      s.writeUInt32LE(selfPid, VigilTlsSettings.fields.self_tgid.offset);
      s.writeUInt32LE(cfg.capture_bytes, VigilTlsSettings.fields.capture.offset);
      obj.map('tls_settings').update(Buffer.alloc(4), s);
      attach?.(obj);
    },
  };
}

export const tlsSensor: SensorPlugin<TlsConfig> = {
  name: 'tls',
  title: 'TLS plaintext of OpenSSL calls (uprobes on SSL_write/SSL_read and _ex in libssl and node)',
  categories: ['tls_data'],
  config: TlsConfig,
  eventSchemas: TLS_EVENT_SCHEMAS,
  layouts: [VigilTlsData, VigilTlsSettings],
  objects: ['tls.bpf.o'],
  create: (ctx, cfg) => new TlsSensor(ctx, cfg),
  probe: () => {
    const cfg = TlsConfig.parse(undefined);
    let n = 0;
    return probeBpfSensor(
      sensorOptions(cfg, process.pid, (obj) => {
        for (const t of tlsTargets(cfg)) {
          for (const [fn, enter, exit] of HOOKS) {
            obj.program(enter).attachUprobe(t, { funcName: fn });
            obj.program(exit).attachUprobe(t, { funcName: fn, retprobe: true });
            n++;
          }
        }
        if (!n) throw new BpfError({ op: 'attach TLS uprobes', errno: 2, hint: 'no libssl.so.3 or node binary found' });
      }),
    );
  },
};
