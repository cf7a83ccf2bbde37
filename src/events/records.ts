/**
 * Decoding of raw kernel records (layouts in ./layouts.ts) into plain objects.
 * Bad records (short, wrong version, inconsistent lengths, unknown type) throw
 * RecordError; the sensor counts them and goes on.
 */
import { RecordError } from '../kernel/errors.js';
import { ABI_VERSION, RecordType, VigilExec, VigilExit, VigilFork, VigilHdr, VigilTask } from './layouts.js';
import { cString } from './bytes.js';

export interface TaskIds {
  pid: number;
  tgid: number;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  loginuid: number;
  sessionid: number;
  startNs: bigint;
  parentStartNs: bigint;
  cgroupId: bigint;
  comm: string;
}

export interface ExecRecord {
  type: 'exec';
  ktimeNs: bigint;
  task: TaskIds;
  flags: number;
  argc: number;
  exeDev: number;
  exeIno: bigint;
  /** copies: safe to keep after the ring space is released */
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

export interface RecordHeader {
  type: number;
  version: number;
  size: number;
  ktimeNs: bigint;
}

export function decodeHeader(v: DataView, off: number, len: number): RecordHeader {
  if (len < VigilHdr.size) throw new RecordError(`record of ${len} bytes is shorter than its ${VigilHdr.size}-byte header`, off);
  const version = v.getUint8(off + VigilHdr.fields.version.offset);
  if (version !== ABI_VERSION) throw new RecordError(`record version ${version}, this vigil reads version ${ABI_VERSION}`, off);
  const size = v.getUint32(off + VigilHdr.fields.size.offset, true);
  if (size > len || size < VigilHdr.size) throw new RecordError(`record says ${size} bytes, ${len} were delivered`, off);
  return {
    type: v.getUint16(off + VigilHdr.fields.type.offset, true),
    version,
    size,
    ktimeNs: v.getBigUint64(off + VigilHdr.fields.ktime_ns.offset, true),
  };
}

export function decodeTask(v: DataView, bytes: Uint8Array, off: number): TaskIds {
  const F = VigilTask.fields;
  const c = off + F.comm.offset;
  return {
    pid: v.getUint32(off + F.pid.offset, true),
    tgid: v.getUint32(off + F.tgid.offset, true),
    ppid: v.getUint32(off + F.ppid.offset, true),
    uid: v.getUint32(off + F.uid.offset, true),
    gid: v.getUint32(off + F.gid.offset, true),
    euid: v.getUint32(off + F.euid.offset, true),
    loginuid: v.getUint32(off + F.loginuid.offset, true),
    sessionid: v.getUint32(off + F.sessionid.offset, true),
    startNs: v.getBigUint64(off + F.start_ns.offset, true),
    parentStartNs: v.getBigUint64(off + F.parent_start_ns.offset, true),
    cgroupId: v.getBigUint64(off + F.cgroup_id.offset, true),
    comm: cString(bytes.subarray(c, c + F.comm.size)),
  };
}

function need(len: number, min: number, what: string, off: number): void {
  if (len < min) throw new RecordError(`${what} record of ${len} bytes, expected at least ${min}`, off);
}

/** Decode one process record (exec/fork/exit). Other types: RecordError. */
export function decodeProcessRecord(v: DataView, bytes: Uint8Array, off: number, len: number): ProcessRecord {
  const h = decodeHeader(v, off, len);
  const size = h.size;
  switch (h.type) {
    case RecordType.EXEC: {
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
        exe: Buffer.from(bytes.subarray(data, data + exeLen)),
        cwd: Buffer.from(bytes.subarray(data + exeLen, data + exeLen + cwdLen)),
        args: Buffer.from(bytes.subarray(data + exeLen + cwdLen, data + exeLen + cwdLen + argsLen)),
      };
    }
    case RecordType.FORK:
      need(size, VigilFork.size, 'fork', off);
      return { type: 'fork', ktimeNs: h.ktimeNs, task: decodeTask(v, bytes, off + VigilFork.fields.task.offset) };
    case RecordType.EXIT:
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
