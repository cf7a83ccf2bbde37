/** Hand-built network records and DNS messages for the unit tests. */
import { VigilHdr, VigilTask } from '../../../src/events/layouts.js';
import { AF_INET, AF_INET6, NetOp, NetRecordType, VigilNetConn, VigilNetDns } from '../../../src/sensors/net/layouts.js';

export interface TaskOpts {
  pid?: number;
  tgid?: number;
  startNs?: bigint;
  comm?: string;
}

function writeTask(b: Buffer, off: number, t: TaskOpts = {}): void {
  const F = VigilTask.fields;
  b.writeUInt32LE(t.pid ?? t.tgid ?? 4242, off + F.pid.offset);
  b.writeUInt32LE(t.tgid ?? 4242, off + F.tgid.offset);
  b.writeUInt32LE(1, off + F.ppid.offset);
  b.writeUInt32LE(0xffffffff, off + F.loginuid.offset);
  b.writeUInt32LE(0xffffffff, off + F.sessionid.offset);
  b.writeBigUInt64LE(t.startNs ?? 1_000_000_000n, off + F.start_ns.offset);
  b.write(t.comm ?? 'tester', off + F.comm.offset, 15, 'latin1');
}

function writeHdr(b: Buffer, type: number, size: number, ktimeNs = 5_000_000_000n): void {
  b.writeUInt16LE(type, VigilHdr.fields.type.offset);
  b.writeUInt8(1, VigilHdr.fields.version.offset);
  b.writeUInt32LE(size, VigilHdr.fields.size.offset);
  b.writeBigUInt64LE(ktimeNs, VigilHdr.fields.ktime_ns.offset);
}

/** 16-byte address field from text (IPv4 in the first 4 bytes, or IPv6). */
export function addr16(ip: string): Buffer {
  const b = Buffer.alloc(16);
  if (ip.includes(':')) {
    const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
    if (v4) {
      const o = v4[2]!.split('.').map(Number);
      ip = `${v4[1]}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
    }
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  } else {
    ip.split('.').forEach((o, i) => (b[i] = Number(o)));
  }
  return b;
}

export interface ConnOpts {
  op?: number;
  result?: number;
  fd?: number;
  family?: number;
  sockType?: number;
  protocol?: number;
  local?: string;
  localPort?: number;
  remote?: string;
  remotePort?: number;
  addr?: string;
  addrPort?: number;
  addrFamily?: number;
  flags?: number;
  task?: TaskOpts;
  size?: number;
  ktimeNs?: bigint;
}

export function connRecord(o: ConnOpts = {}): Buffer {
  const b = Buffer.alloc(VigilNetConn.size);
  const F = VigilNetConn.fields;
  const family = o.family ?? AF_INET;
  writeHdr(b, NetRecordType.NET_CONN, o.size ?? VigilNetConn.size, o.ktimeNs);
  writeTask(b, F.task.offset, o.task);
  b.writeInt32LE(o.result ?? 0, F.result.offset);
  b.writeInt32LE(o.fd ?? 3, F.fd.offset);
  b.writeUInt16LE(o.op ?? NetOp.CONNECT, F.op.offset);
  b.writeUInt16LE(family, F.family.offset);
  b.writeUInt16LE(o.sockType ?? 1, F.sock_type.offset);
  b.writeUInt16LE(o.protocol ?? 6, F.protocol.offset);
  b.writeUInt16LE(o.localPort ?? 0, F.local_port.offset);
  b.writeUInt16LE(o.remotePort ?? 0, F.remote_port.offset);
  b.writeUInt16LE(o.addrPort ?? 0, F.addr_port.offset);
  b.writeUInt16LE(o.addrFamily ?? (o.addr ? (o.addr.includes(':') ? AF_INET6 : AF_INET) : 0), F.addr_family.offset);
  b.writeUInt32LE(o.flags ?? (o.addr ? 1 : 0), F.flags.offset);
  addr16(o.local ?? (family === AF_INET6 ? '::' : '0.0.0.0')).copy(b, F.local_addr.offset);
  addr16(o.remote ?? (family === AF_INET6 ? '::' : '0.0.0.0')).copy(b, F.remote_addr.offset);
  if (o.addr) addr16(o.addr).copy(b, F.addr.offset);
  return b;
}

export interface DnsOpts {
  op?: number;
  family?: number;
  peer?: string;
  peerPort?: number;
  protocol?: number;
  flags?: number;
  msgLen?: number;
  dataLen?: number;
  task?: TaskOpts;
  ktimeNs?: bigint;
}

export function dnsRecord(data: Uint8Array, o: DnsOpts = {}): Buffer {
  const b = Buffer.alloc(VigilNetDns.size + data.length);
  const F = VigilNetDns.fields;
  writeHdr(b, NetRecordType.NET_DNS, b.length, o.ktimeNs);
  writeTask(b, F.task.offset, o.task);
  b.writeInt32LE(5, F.fd.offset);
  b.writeUInt32LE(o.msgLen ?? data.length, F.msg_len.offset);
  b.writeUInt32LE(o.dataLen ?? data.length, F.data_len.offset);
  b.writeUInt16LE(o.op ?? NetOp.SEND, F.op.offset);
  b.writeUInt16LE(o.family ?? AF_INET, F.family.offset);
  b.writeUInt16LE(o.peerPort ?? 53, F.peer_port.offset);
  b.writeUInt16LE(o.flags ?? 0, F.flags.offset);
  b.writeUInt16LE(o.protocol ?? 17, F.protocol.offset);
  addr16(o.peer ?? '127.0.0.53').copy(b, F.peer_addr.offset);
  Buffer.from(data).copy(b, F.data.offset);
  return b;
}

export const view = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Encode a name as labels (no compression). */
export function name(n: string): Buffer {
  const parts = n === '.' ? [] : n.split('.');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

export interface Rr {
  name: Buffer;
  type: number;
  ttl?: number;
  data: Buffer;
}

export function rr(r: Rr): Buffer {
  return Buffer.concat([r.name, u16(r.type), u16(1), u32(r.ttl ?? 300), u16(r.data.length), r.data]);
}

/** A DNS message: header fields, one question, answer records (already encoded). */
export function dnsMessage(o: { id?: number; response?: boolean; rcode?: number; qname?: string | Buffer; qtype?: number; answers?: Buffer[]; ancount?: number; qdcount?: number }): Buffer {
  const flags = (o.response ? 0x8180 : 0x0100) | (o.rcode ?? 0);
  const q = typeof o.qname === 'string' || o.qname === undefined ? name(o.qname ?? 'example.com') : o.qname;
  return Buffer.concat([
    u16(o.id ?? 0x1234),
    u16(flags),
    u16(o.qdcount ?? 1),
    u16(o.ancount ?? o.answers?.length ?? 0),
    u16(0),
    u16(0),
    q,
    u16(o.qtype ?? 1),
    u16(1),
    ...(o.answers ?? []),
  ]);
}

/** A compression pointer to offset `to`. */
export const ptr = (to: number) => Buffer.from([0xc0 | (to >> 8), to & 0xff]);
