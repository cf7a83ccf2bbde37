/** Decoding of struct vigil_file records. Bad records throw RecordError. */
import { RecordError } from '../../kernel/errors.js';
import { decodeHeader, decodeTask, need, type TaskIds } from '../../events/records.js';
import { FileOp, FileRecordType, VigilFile } from './layouts.js';

const OPS = new Set<number>(Object.values(FileOp));

export interface FileRecord {
  ktimeNs: bigint;
  task: TaskIds;
  /** syscall return: fd or 0, or -errno */
  result: number;
  op: number;
  flags: number;
  openFlags: number;
  mode: number;
  oldMode: number;
  dev: number;
  ino: bigint;
  /** views into the ring: copy (or decode) before the batch ends */
  path: Uint8Array;
  path2: Uint8Array;
}

export function decodeFileRecord(v: DataView, bytes: Uint8Array, off: number, len: number): FileRecord {
  const h = decodeHeader(v, off, len);
  if (h.type !== FileRecordType.FILE) throw new RecordError(`unknown record type ${h.type} in the file sensor's ring`, off);
  need(h.size, VigilFile.size, 'file', off);
  const F = VigilFile.fields;
  const pathLen = v.getUint32(off + F.path_len.offset, true);
  const path2Len = v.getUint32(off + F.path2_len.offset, true);
  if (VigilFile.size + pathLen + path2Len > h.size) {
    throw new RecordError(`file record: path ${pathLen} + path2 ${path2Len} bytes overrun its ${h.size} bytes`, off);
  }
  const data = off + F.data.offset;
  const op = v.getUint32(off + F.op.offset, true);
  if (!OPS.has(op)) throw new RecordError(`file record with unknown op ${op}`, off);
  return {
    ktimeNs: h.ktimeNs,
    task: decodeTask(v, bytes, off + F.task.offset),
    result: Number(v.getBigInt64(off + F.result.offset, true)),
    op,
    flags: v.getUint32(off + F.flags.offset, true),
    openFlags: v.getUint32(off + F.open_flags.offset, true),
    mode: v.getUint32(off + F.mode.offset, true),
    oldMode: v.getUint32(off + F.old_mode.offset, true),
    dev: v.getUint32(off + F.dev.offset, true),
    ino: v.getBigUint64(off + F.ino.offset, true),
    path: bytes.subarray(data, data + pathLen),
    path2: bytes.subarray(data + pathLen, data + pathLen + path2Len),
  };
}
