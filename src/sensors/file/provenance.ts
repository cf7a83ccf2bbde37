/**
 * The file sensor's part in file provenance (docs/provenance.md): with
 * provenance on, a regular file opened for writing by a process in vigil_taint
 * is marked in vigil_marks and reported as a mark record (file_provenance
 * event); a read of a marked file makes the reader's later writes derived.
 * vigil_taint and vigil_marks are shared with the network sensor's object.
 */
import { posix } from 'node:path';
import { decodeBytes, markCut } from '../../events/bytes.js';
import { decodeHeader, decodeTask, need, type TaskIds } from '../../events/records.js';
import { MARKS_MAP, TAINT_MAP, TaintFlags, decodeTaint, type Taint } from '../../events/taint.js';
import { RecordError } from '../../kernel/errors.js';
import type { ProcessContext } from '../../process/context.js';
import type { BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext } from '../sensor.js';
import { FileFlags, FileProvFlags, FileRecordType, VigilFileMark, VigilFileSettings } from './layouts.js';
import type { FileProvenanceEvent } from './schema.js';

export function withMarks(opts: BpfSensorOptions, ctx: Pick<SensorContext, 'provenance' | 'sharedMaps'>): BpfSensorOptions {
  const prov = ctx.provenance;
  if (!prov) return opts;
  const base = opts.afterLoad;
  return {
    ...opts,
    ...(ctx.sharedMaps ? { sharedMaps: { registry: ctx.sharedMaps, names: [TAINT_MAP, MARKS_MAP] } } : {}),
    afterLoad: (obj) => {
      base?.(obj);
      const m = obj.map('file_settings');
      const zero = Buffer.alloc(4);
      const v = m.lookup(zero) ?? Buffer.alloc(VigilFileSettings.size);
      v.writeUInt32LE(FileProvFlags.ON, VigilFileSettings.fields.prov_flags.offset);
      v.writeUInt32LE(prov.maxDepth, VigilFileSettings.fields.prov_max_depth.offset);
      m.update(zero, v);
    },
  };
}

export interface FileMarkRecord {
  ktimeNs: bigint;
  task: TaskIds;
  ino: bigint;
  dev: number;
  flags: number;
  depth: number;
  taint: Taint;
  path: Uint8Array;
}

export function isMarkRecord(v: DataView, off: number, len: number): boolean {
  return decodeHeader(v, off, len).type === FileRecordType.FILE_MARK;
}

export function decodeMarkRecord(v: DataView, bytes: Uint8Array, off: number, len: number): FileMarkRecord {
  const h = decodeHeader(v, off, len);
  if (h.type !== FileRecordType.FILE_MARK) throw new RecordError(`unknown record type ${h.type} for a mark`, off);
  need(h.size, VigilFileMark.size, 'file mark', off);
  const F = VigilFileMark.fields;
  const pathLen = v.getUint32(off + F.path_len.offset, true);
  if (VigilFileMark.size + pathLen > h.size) throw new RecordError(`file mark record: path ${pathLen} bytes overrun its ${h.size} bytes`, off);
  const data = off + F.data.offset;
  return {
    ktimeNs: h.ktimeNs,
    task: decodeTask(v, bytes, off + F.task.offset),
    ino: v.getBigUint64(off + F.ino.offset, true),
    dev: v.getUint32(off + F.dev.offset, true),
    flags: v.getUint32(off + F.flags.offset, true),
    depth: v.getUint32(off + F.depth.offset, true),
    taint: decodeTaint(v, bytes, off + F.taint.offset),
    path: bytes.subarray(data, data + pathLen),
  };
}

/** A mark record → a file_provenance event (the provenance service persists it). */
export function markEvent(ctx: ProcessContext, r: FileMarkRecord): FileProvenanceEvent {
  const d = decodeBytes(r.path);
  const cut = (r.flags & FileFlags.PATH_TRUNCATED) !== 0;
  const t = r.taint;
  const vigil: Record<string, unknown> = {
    ...ctx.taskFields(r.ktimeNs, r.task),
    dev: r.dev,
    ino: r.ino.toString(),
    depth: r.depth,
    origin: t.flags & TaintFlags.NET ? 'network' : 'derived',
    created: (r.flags & FileFlags.CREATED) !== 0,
  };
  if (t.flags & TaintFlags.INHERIT) vigil.inherited = true;
  if (t.flags & TaintFlags.NET) {
    vigil.remote_address = t.address;
    vigil.remote_port = t.port;
    vigil.network_time = ctx.clock.iso(t.netNs);
  }
  if (t.flags & TaintFlags.FILE) vigil.derived_from = { dev: t.srcDev, ino: t.srcIno.toString(), depth: t.depth };
  if (cut) vigil.truncated = ['TargetFilename'];
  if (d.raw !== undefined) vigil.raw = { TargetFilename: d.raw };
  return {
    category: 'file_provenance',
    ...ctx.actor(r.ktimeNs, r.task),
    TargetFilename: cut ? markCut(posix.normalize(d.text)) : d.text,
    vigil,
  } as unknown as FileProvenanceEvent;
}
