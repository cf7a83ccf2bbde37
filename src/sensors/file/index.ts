/**
 * File sensor: creation and writes, deletes, renames, chmod +x, truncation and
 * (for chosen prefixes) reads, with full paths resolved in the kernel
 * (bpf/file/file.bpf.c, syscall tracepoints). Volume is controlled in the
 * kernel: prefixes, the agent's own activity, repeats, failed syscalls.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { parseDuration } from '../../config/config.js';
import { VigilHdr, VigilTask } from '../../events/layouts.js';
import { TAINT_LAYOUTS } from '../../events/taint.js';
import type { BpfObject } from '../../kernel/index.js';
import { BpfSensorInstance, probeBpfSensor, type BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext, SensorPlugin, SensorStats } from '../sensor.js';
import { decodeFileRecord } from './decode.js';
import { FileEventBuilder } from './events.js';
import { FILE_PREFIX_MAX, FileFailed, FileStat, VigilFile, VigilFileMark, VigilFilePrefixKey, VigilFileSettings } from './layouts.js';
import { compilePrefixes } from './prefixes.js';
import { FILE_EVENT_SCHEMAS } from './schema.js';
import { decodeMarkRecord, isMarkRecord, markEvent, withMarks } from './provenance.js';

const prefix = z.string().min(1).startsWith('/', 'an absolute path prefix').refine((s) => Buffer.byteLength(s) <= FILE_PREFIX_MAX, `at most ${FILE_PREFIX_MAX} bytes`);
const duration = z.union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)?$/, 'a duration like 500ms, 5s (bare numbers are seconds)')]);

const DEFAULTS = { enabled: true, include: [] as string[], exclude: ['/proc/', '/sys/', '/dev/'], read: [] as string[], dedup_window: '5s', failed: 'denied' as const };

export const FileConfig = z
  .object({
    enabled: z.boolean().default(DEFAULTS.enabled),
    include: z.array(prefix).default(DEFAULTS.include).describe('when set, only paths under these prefixes are reported'),
    exclude: z.array(prefix).default(DEFAULTS.exclude).describe('nothing under these prefixes is reported (a longer include/read prefix wins)'),
    read: z.array(prefix).default(DEFAULTS.read).describe('read-only opens under these prefixes are reported (file_access); none by default'),
    dedup_window: duration.default(DEFAULTS.dedup_window).describe('the same process opening the same file the same way again within this window is reported once (0 = every time); changes are always reported'),
    failed: z.enum(['none', 'denied', 'all']).default(DEFAULTS.failed).describe('which failed syscalls to report: none, denied (EPERM, EACCES, EROFS) or all'),
  })
  .strict()
  .default(DEFAULTS);
export type FileConfig = z.infer<typeof FileConfig>;

const LAYOUTS = [VigilHdr, VigilTask, VigilFile, VigilFileSettings, VigilFilePrefixKey, VigilFileMark, ...TAINT_LAYOUTS];
const STAT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FileStat).map(([k, v]) => [v, k.toLowerCase()]));

function tracepointExists(name: string): boolean {
  return ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].some((d) => existsSync(`${d}/events/syscalls/${name}`));
}

/** Programs whose syscall is newer than the oldest kernel we support: loaded only where it exists. */
const OPTIONAL: Array<[string, string]> = [
  ['vigil_file_fchmodat2', 'sys_enter_fchmodat2'],
  ['vigil_file_fchmodat2_exit', 'sys_exit_fchmodat2'],
];

/** Fill the settings and the prefix trie from the config. */
export function configure(obj: BpfObject, cfg: FileConfig, selfPid: number): void {
  const { entries, hasInclude, hasRead } = compilePrefixes(cfg);
  const S = VigilFileSettings.fields;
  const settings = Buffer.alloc(VigilFileSettings.size);
  settings.writeUInt32LE(selfPid, S.self_tgid.offset);
  settings.writeUInt32LE(hasInclude ? 1 : 0, S.has_include.offset);
  settings.writeUInt32LE(hasRead ? 1 : 0, S.read_prefixes.offset);
  settings.writeUInt32LE(FileFailed[cfg.failed.toUpperCase() as keyof typeof FileFailed], S.failed.offset);
  settings.writeBigUInt64LE(BigInt(Math.round(parseDuration(cfg.dedup_window) * 1e6)), S.dedup_ns.offset);
  obj.map('file_settings').update(Buffer.alloc(4), settings);
  const trie = obj.map('file_prefixes');
  for (const e of entries) {
    const key = Buffer.alloc(VigilFilePrefixKey.size);
    key.writeUInt32LE(e.prefix.length * 8, VigilFilePrefixKey.fields.prefixlen.offset);
    e.prefix.copy(key, VigilFilePrefixKey.fields.data.offset);
    const v = Buffer.alloc(4);
    v.writeUInt32LE(e.flags);
    trie.update(key, v);
  }
}

function sensorOptions(cfg: FileConfig, selfPid: number): BpfSensorOptions {
  return {
    object: 'file.bpf.o',
    layouts: LAYOUTS,
    requiredLayouts: LAYOUTS.map((l) => l.name),
    statNames: STAT_NAMES,
    skipPrograms: OPTIONAL.filter(([, tp]) => !tracepointExists(tp)).map(([prog]) => prog),
    afterLoad: (obj) => configure(obj, cfg, selfPid),
  };
}

export class FileSensor extends BpfSensorInstance {
  readonly name = 'file';
  private readonly builder: FileEventBuilder;

  constructor(ctx: SensorContext, cfg: FileConfig) {
    super(ctx, withMarks(sensorOptions(cfg, ctx.selfPid), ctx));
    this.builder = new FileEventBuilder(ctx.process);
  }

  start(): void {
    this.sensor.start((v, b, off, len) => {
      if (isMarkRecord(v, off, len)) return this.emit(markEvent(this.ctx.process, decodeMarkRecord(v, b, off, len)));
      // the builder wrote the event's JSON text as it built it: the agent does not serialize it again
      const ev = this.builder.build(decodeFileRecord(v, b, off, len));
      this.events++;
      this.ctx.emit(ev as unknown as Record<string, unknown>, undefined, { json: this.builder.lastJson });
    });
  }

  override drain(): number {
    this.ctx.syncProcesses();
    return super.drain();
  }
}

export const fileSensor: SensorPlugin<FileConfig> = {
  name: 'file',
  title: 'file creation and writes, deletes, renames, chmod +x, truncation; reads for chosen prefixes',
  categories: ['file_event', 'file_delete', 'file_rename', 'file_change', 'file_access', 'file_provenance'],
  config: FileConfig,
  eventSchemas: FILE_EVENT_SCHEMAS,
  layouts: [VigilFile, VigilFileSettings, VigilFilePrefixKey, VigilFileMark],
  objects: ['file.bpf.o'],
  create: (ctx, cfg) => new FileSensor(ctx, cfg),
  probe: () => probeBpfSensor(sensorOptions(FileConfig.parse(undefined), process.pid)),
};
