/** Decoding of struct vigil_tls_data records. Bad records throw RecordError. */
import { RecordError } from '../../kernel/errors.js';
import { decodeHeader, decodeTask, need, type TaskIds } from '../../events/records.js';
import { TlsFunc, TlsRecordType, VigilTlsData } from './layouts.js';

const FUNCS = new Set<number>(Object.values(TlsFunc));

export interface TlsRecord {
  ktimeNs: bigint;
  task: TaskIds;
  ssl: bigint;
  func: number;
  flags: number;
  /** bytes the call moved */
  len: number;
  cookie: bigint;
  /** the socket's fd, -1 when none was seen */
  fd: number;
  /** a view into the ring: decode before the batch ends */
  data: Uint8Array;
}

export function decodeTlsRecord(v: DataView, bytes: Uint8Array, off: number, len: number): TlsRecord {
  const h = decodeHeader(v, off, len);
  if (h.type !== TlsRecordType.TLS_DATA) throw new RecordError(`unknown record type ${h.type} in the tls sensor's ring`, off);
  need(h.size, VigilTlsData.size, 'tls', off);
  const F = VigilTlsData.fields;
  const dataLen = v.getUint32(off + F.data_len.offset, true);
  if (VigilTlsData.size + dataLen > h.size) throw new RecordError(`tls record: data ${dataLen} bytes overrun its ${h.size} bytes`, off);
  const func = v.getUint32(off + F.func.offset, true);
  if (!FUNCS.has(func)) throw new RecordError(`tls record with unknown function ${func}`, off);
  const data = off + F.data.offset;
  return {
    ktimeNs: h.ktimeNs,
    task: decodeTask(v, bytes, off + F.task.offset),
    ssl: v.getBigUint64(off + F.ssl.offset, true),
    func,
    flags: v.getUint32(off + F.flags.offset, true),
    len: v.getUint32(off + F.len.offset, true),
    cookie: v.getBigUint64(off + F.cookie.offset, true),
    fd: v.getInt32(off + F.fd.offset, true),
    data: bytes.subarray(data, data + dataLen),
  };
}
