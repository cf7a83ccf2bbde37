/**
 * TypeScript side of bpf/include/vigil_taint.h: provenance state the network
 * and file sensors share in the kernel (vigil_taint, vigil_marks), and the
 * text form of the remote address a taint holds. Checked against BTF by the
 * sensors that load them (their layouts lists) and test/events/layouts.test.ts.
 */
import { f, type Layout } from './layouts.js';

/** enum vigil_taint_flags */
export const TaintFlags = {
  NET: 1 << 0,
  FILE: 1 << 1,
  INHERIT: 1 << 2,
} as const;

export const VigilTaint = {
  name: 'vigil_taint',
  size: 56,
  fields: {
    net_ns: f(0, 8),
    file_ns: f(8, 8),
    src_ino: f(16, 8),
    src_dev: f(24, 4),
    depth: f(28, 4),
    flags: f(32, 4),
    family: f(36, 2),
    port: f(38, 2),
    addr: f(40, 16),
  },
} as const satisfies Layout;

export const VigilMarkKey = {
  name: 'vigil_mark_key',
  size: 16,
  fields: { dev: f(0, 4), _pad0: f(4, 4), ino: f(8, 8) },
} as const satisfies Layout;

export const VigilMark = {
  name: 'vigil_mark',
  size: 16,
  fields: { marked_ns: f(0, 8), depth: f(8, 4), flags: f(12, 4) },
} as const satisfies Layout;

/** Key of the exec guard's prov_allow_uid: a marked inode allowed for one exec uid (checked by the guard's load, not the sensors'). */
export const VigilMarkUidKey = {
  name: 'vigil_mark_uid_key',
  size: 16,
  fields: { dev: f(0, 4), uid: f(4, 4), ino: f(8, 8) },
} as const satisfies Layout;

/**
 * Value of the security.bpf.vigil.mark attribute (VIGIL_MARK_XATTR, vigil_taint.h): the
 * mark the exec guard's origin programs read at exec on Linux 6.15+ (checked by the guard's load).
 */
export const VigilMarkXattr = {
  name: 'vigil_mark_xattr',
  size: 16,
  fields: { magic: f(0, 4), depth: f(4, 4), flags: f(8, 4), _pad0: f(12, 4) },
} as const satisfies Layout;
export const MARK_XATTR = 'security.bpf.vigil.mark';
export const MARK_XATTR_MAGIC = 0x314d4756; // "VGM1"

/** The attribute's value for a mark of `depth` with the writer's `flags` (enum vigil_taint_flags). */
export function encodeMarkXattr(depth: number, flags: number): Buffer {
  const b = Buffer.alloc(VigilMarkXattr.size);
  b.writeUInt32LE(MARK_XATTR_MAGIC, VigilMarkXattr.fields.magic.offset);
  b.writeUInt32LE(depth >>> 0, VigilMarkXattr.fields.depth.offset);
  b.writeUInt32LE(flags >>> 0, VigilMarkXattr.fields.flags.offset);
  return b;
}

export const TAINT_LAYOUTS = [VigilTaint, VigilMarkKey, VigilMark] as const;

/** The maps one agent shares between objects (BpfSensorOptions.sharedMaps). */
export const TAINT_MAP = 'vigil_taint';
export const MARKS_MAP = 'vigil_marks';

export interface Taint {
  netNs: bigint;
  fileNs: bigint;
  srcIno: bigint;
  srcDev: number;
  depth: number;
  flags: number;
  family: number;
  port: number;
  /** text form ("" when the taint has no network part) */
  address: string;
}

const AF_INET = 2;
const AF_INET6 = 10;

/** Dotted IPv4; RFC 5952 IPv6 (compressed by the URL parser); ::ffff:a.b.c.d as IPv4. */
export function addressText(family: number, b: Uint8Array): string {
  if (family === AF_INET) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (family !== AF_INET6) return '';
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

export function decodeTaint(v: DataView, bytes: Uint8Array, off: number): Taint {
  const F = VigilTaint.fields;
  const family = v.getUint16(off + F.family.offset, true);
  const flags = v.getUint32(off + F.flags.offset, true);
  return {
    netNs: v.getBigUint64(off + F.net_ns.offset, true),
    fileNs: v.getBigUint64(off + F.file_ns.offset, true),
    srcIno: v.getBigUint64(off + F.src_ino.offset, true),
    srcDev: v.getUint32(off + F.src_dev.offset, true),
    depth: v.getUint32(off + F.depth.offset, true),
    flags,
    family,
    port: v.getUint16(off + F.port.offset, true),
    address: flags & TaintFlags.NET ? addressText(family, bytes.subarray(off + F.addr.offset, off + F.addr.offset + 16)) : '',
  };
}

/** Key and value of vigil_marks (re-arming marks from the store). */
export function markKey(dev: number, ino: bigint): Buffer {
  const k = Buffer.alloc(VigilMarkKey.size);
  k.writeUInt32LE(dev, VigilMarkKey.fields.dev.offset);
  k.writeBigUInt64LE(ino, VigilMarkKey.fields.ino.offset);
  return k;
}

/** Key of prov_allow_uid (struct vigil_mark_uid_key). */
export function markUidKey(dev: number, ino: bigint, uid: number): Buffer {
  const k = Buffer.alloc(VigilMarkUidKey.size);
  k.writeUInt32LE(dev, VigilMarkUidKey.fields.dev.offset);
  k.writeUInt32LE(uid >>> 0, VigilMarkUidKey.fields.uid.offset);
  k.writeBigUInt64LE(ino, VigilMarkUidKey.fields.ino.offset);
  return k;
}

export function markValue(depth: number, flags: number, markedNs = 0n): Buffer {
  const v = Buffer.alloc(VigilMark.size);
  v.writeBigUInt64LE(markedNs, VigilMark.fields.marked_ns.offset);
  v.writeUInt32LE(depth, VigilMark.fields.depth.offset);
  v.writeUInt32LE(flags, VigilMark.fields.flags.offset);
  return v;
}
