/**
 * Decoding of the parts every kernel record shares (header, task) into plain
 * objects; each sensor decodes the rest of its records in its folder. Bad records (short, wrong version, inconsistent lengths, unknown type) throw
 * RecordError; the sensor counts them and goes on.
 */
import { RecordError } from '../kernel/errors.js';
import { ABI_VERSION, VigilHdr, VigilTask } from './layouts.js';
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

/** Throw a RecordError when a record is shorter than its fixed part. */
export function need(len: number, min: number, what: string, off: number): void {
  if (len < min) throw new RecordError(`${what} record of ${len} bytes, expected at least ${min}`, off);
}
