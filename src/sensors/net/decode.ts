/**
 * Decoding of the network sensor's records (connections, DNS messages) into
 * plain objects. Bad records throw RecordError; the sensor counts them and goes on.
 */
import { RecordError } from '../../kernel/errors.js';
import { decodeHeader, decodeTask, need, type TaskIds } from '../../events/records.js';
import { DNS_MAX, NetRecordType, VigilNetConn, VigilNetDns } from './layouts.js';

export interface ConnRecord {
  type: 'conn';
  ktimeNs: bigint;
  task: TaskIds;
  /** 0 or -errno */
  result: number;
  fd: number;
  /** enum vigil_net_op */
  op: number;
  /** the socket's address family (AF_INET, AF_INET6) */
  family: number;
  sockType: number;
  protocol: number;
  localPort: number;
  remotePort: number;
  /** copies (16 bytes each) */
  localAddr: Buffer;
  remoteAddr: Buffer;
  /** the caller's sockaddr (connect, bind): present when flags has ADDR */
  addrFamily: number;
  addrPort: number;
  addr: Buffer;
  flags: number;
}

export interface DnsRecord {
  type: 'dns';
  ktimeNs: bigint;
  task: TaskIds;
  fd: number;
  /** VIGIL_NET_SEND or VIGIL_NET_RECV */
  op: number;
  family: number;
  peerPort: number;
  peerAddr: Buffer;
  protocol: number;
  flags: number;
  /** bytes the syscall moved */
  msgLen: number;
  /** the captured head of the message (a copy) */
  data: Buffer;
}

export type NetRecord = ConnRecord | DnsRecord;

const copy16 = (bytes: Uint8Array, off: number): Buffer => Buffer.from(bytes.subarray(off, off + 16));

/** Decode one network record. Other types and inconsistent lengths: RecordError. */
export function decodeNetRecord(v: DataView, bytes: Uint8Array, off: number, len: number): NetRecord {
  const h = decodeHeader(v, off, len);
  switch (h.type) {
    case NetRecordType.NET_CONN: {
      need(h.size, VigilNetConn.size, 'network connection', off);
      const F = VigilNetConn.fields;
      return {
        type: 'conn',
        ktimeNs: h.ktimeNs,
        task: decodeTask(v, bytes, off + F.task.offset),
        result: v.getInt32(off + F.result.offset, true),
        fd: v.getInt32(off + F.fd.offset, true),
        op: v.getUint16(off + F.op.offset, true),
        family: v.getUint16(off + F.family.offset, true),
        sockType: v.getUint16(off + F.sock_type.offset, true),
        protocol: v.getUint16(off + F.protocol.offset, true),
        localPort: v.getUint16(off + F.local_port.offset, true),
        remotePort: v.getUint16(off + F.remote_port.offset, true),
        addrPort: v.getUint16(off + F.addr_port.offset, true),
        addrFamily: v.getUint16(off + F.addr_family.offset, true),
        flags: v.getUint32(off + F.flags.offset, true),
        localAddr: copy16(bytes, off + F.local_addr.offset),
        remoteAddr: copy16(bytes, off + F.remote_addr.offset),
        addr: copy16(bytes, off + F.addr.offset),
      };
    }
    case NetRecordType.NET_DNS: {
      need(h.size, VigilNetDns.size, 'dns', off);
      const F = VigilNetDns.fields;
      const dataLen = v.getUint32(off + F.data_len.offset, true);
      if (dataLen > DNS_MAX || VigilNetDns.size + dataLen > h.size) {
        throw new RecordError(`dns record: ${dataLen} data bytes overrun its ${h.size} bytes (at most ${DNS_MAX})`, off);
      }
      const data = off + F.data.offset;
      return {
        type: 'dns',
        ktimeNs: h.ktimeNs,
        task: decodeTask(v, bytes, off + F.task.offset),
        fd: v.getInt32(off + F.fd.offset, true),
        op: v.getUint16(off + F.op.offset, true),
        family: v.getUint16(off + F.family.offset, true),
        peerPort: v.getUint16(off + F.peer_port.offset, true),
        flags: v.getUint16(off + F.flags.offset, true),
        protocol: v.getUint16(off + F.protocol.offset, true),
        msgLen: v.getUint32(off + F.msg_len.offset, true),
        peerAddr: copy16(bytes, off + F.peer_addr.offset),
        data: Buffer.from(bytes.subarray(data, data + dataLen)),
      };
    }
    default:
      throw new RecordError(`unknown record type ${h.type}`, off);
  }
}
