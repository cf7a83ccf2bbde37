/**
 * Decoding of the exec sensor's records (exec, fork, exit) into plain objects.
 * Bad records throw RecordError; the sensor counts them and goes on.
 */
import { RecordError } from '../../kernel/errors.js';
import { decodeHeader, decodeTask, need, type TaskIds } from '../../events/records.js';
import { ExecRecordType, VigilExec, VigilExit, VigilFork } from './layouts.js';

export interface ExecRecord {
  type: 'exec';
  ktimeNs: bigint;
  task: TaskIds;
  flags: number;
  argc: number;
  exeDev: number;
  exeIno: bigint;
  /**
   * views of the record's bytes (no copy): valid only while the record is being
   * handled (the ring space is released after the batch); copy what you keep
   */
  exe: Buffer;
  cwd: Buffer;
  args: Buffer;
}

export interface ForkRecord {
  type: 'fork';
  ktimeNs: bigint;
  task: TaskIds;
}

export interface ExitRecord {
  type: 'exit';
  ktimeNs: bigint;
  task: TaskIds;
  exitCode: number;
}

export type ProcessRecord = ExecRecord | ForkRecord | ExitRecord;

/** Decode one process record (exec/fork/exit). Other types: RecordError. */
export function decodeProcessRecord(v: DataView, bytes: Uint8Array, off: number, len: number): ProcessRecord {
  const h = decodeHeader(v, off, len);
  const size = h.size;
  switch (h.type) {
    case ExecRecordType.EXEC: {
      need(size, VigilExec.size, 'exec', off);
      const F = VigilExec.fields;
      const exeLen = v.getUint32(off + F.exe_len.offset, true);
      const cwdLen = v.getUint32(off + F.cwd_len.offset, true);
      const argsLen = v.getUint32(off + F.args_len.offset, true);
      const data = off + F.data.offset;
      if (VigilExec.size + exeLen + cwdLen + argsLen > size) {
        throw new RecordError(`exec record: exe ${exeLen} + cwd ${cwdLen} + args ${argsLen} bytes overrun its ${size} bytes`, off);
      }
      return {
        type: 'exec',
        ktimeNs: h.ktimeNs,
        task: decodeTask(v, bytes, off + F.task.offset),
        flags: v.getUint32(off + F.flags.offset, true),
        argc: v.getUint32(off + F.argc.offset, true),
        exeDev: v.getUint32(off + F.exe_dev.offset, true),
        exeIno: v.getBigUint64(off + F.exe_ino.offset, true),
        exe: Buffer.from(bytes.buffer, bytes.byteOffset + data, exeLen),
        cwd: Buffer.from(bytes.buffer, bytes.byteOffset + data + exeLen, cwdLen),
        args: Buffer.from(bytes.buffer, bytes.byteOffset + data + exeLen + cwdLen, argsLen),
      };
    }
    case ExecRecordType.FORK:
      need(size, VigilFork.size, 'fork', off);
      return { type: 'fork', ktimeNs: h.ktimeNs, task: decodeTask(v, bytes, off + VigilFork.fields.task.offset) };
    case ExecRecordType.EXIT:
      need(size, VigilExit.size, 'exit', off);
      return {
        type: 'exit',
        ktimeNs: h.ktimeNs,
        task: decodeTask(v, bytes, off + VigilExit.fields.task.offset),
        exitCode: v.getInt32(off + VigilExit.fields.exit_code.offset, true),
      };
    default:
      throw new RecordError(`unknown record type ${h.type}`, off);
  }
}
