/**
 * TypeScript side of bpf/net/net.h: the network sensor's records, settings and
 * enums. Checked against the object's BTF at load (BpfSensor, checkEnum in the
 * sensor) and by test/events/layouts.test.ts.
 */
import { f, type Layout } from '../../events/layouts.js';

/** enum vigil_net_record_type (the network sensor owns 32..47) */
export const NetRecordType = {
  NET_CONN: 32,
  NET_DNS: 33,
} as const;

/** enum vigil_net_op */
export const NetOp = {
  CONNECT: 1,
  ACCEPT: 2,
  BIND: 3,
  LISTEN: 4,
  SEND: 5,
  RECV: 6,
} as const;

/** enum vigil_net_flags */
export const NetFlags = {
  ADDR: 1 << 0,
  DNS_TRUNCATED: 1 << 1,
  LOCAL_UNSET: 1 << 2,
} as const;

/** enum vigil_net_stat: the sensor's kernel counters (vigil_stats slots 16..31) */
export const NetStat = {
  CONNECT: 16,
  ACCEPT: 17,
  BIND: 18,
  LISTEN: 19,
  DNS: 20,
  DNS_TRUNCATED: 21,
  DNS_FAULT: 22,
  PENDING_FULL: 23,
  LOOPBACK: 24,
  NO_SOCK: 25,
  OTHER_PROTO: 26,
  DNS_STALE: 27,
  UDP_PORT0: 28,
  TAINT: 29,
  TAINT_LOST: 30,
  TAINT_FORK: 31,
} as const;

/** enum vigil_net_setting_flags */
export const NetSettingFlags = {
  LOOPBACK: 1 << 0,
  TAINT: 1 << 1,
  TAINT_LOOPBACK: 1 << 2,
} as const;

/** Names of the kernel counters in the stats (slot → name). */
export const NET_STAT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(NetStat).map(([k, v]) => [v, k.toLowerCase()]),
);

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const IPPROTO_TCP = 6;

export const VigilNetConn = {
  name: 'vigil_net_conn',
  size: 168,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    result: f(88, 4),
    fd: f(92, 4),
    op: f(96, 2),
    family: f(98, 2),
    sock_type: f(100, 2),
    protocol: f(102, 2),
    local_port: f(104, 2),
    remote_port: f(106, 2),
    addr_port: f(108, 2),
    addr_family: f(110, 2),
    flags: f(112, 4),
    _pad0: f(116, 4),
    local_addr: f(120, 16),
    remote_addr: f(136, 16),
    addr: f(152, 16),
  },
} as const satisfies Layout;

export const VigilNetDns = {
  name: 'vigil_net_dns',
  size: 128,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    fd: f(88, 4),
    msg_len: f(92, 4),
    data_len: f(96, 4),
    op: f(100, 2),
    family: f(102, 2),
    peer_port: f(104, 2),
    flags: f(106, 2),
    protocol: f(108, 2),
    _pad0: f(110, 2),
    peer_addr: f(112, 16),
    data: f(128, 0),
  },
} as const satisfies Layout;

/** Value of the `net_settings` array (one entry), written after load. */
export const VigilNetSettings = {
  name: 'vigil_net_settings',
  size: 8,
  fields: { self_pid: f(0, 4), flags: f(4, 4) },
} as const satisfies Layout;

/** VIGIL_DNS_MAX: DNS message bytes the kernel keeps per send or receive. */
export const DNS_MAX = 512;

/** Every enum of net.h with its C prefix, for checkEnum (at load and in tests). */
export const NET_ENUMS: ReadonlyArray<{ name: string; prefix: string; values: Record<string, number> }> = [
  { name: 'vigil_net_record_type', prefix: 'VIGIL_REC_', values: NetRecordType },
  { name: 'vigil_net_op', prefix: 'VIGIL_NET_', values: NetOp },
  { name: 'vigil_net_flags', prefix: 'VIGIL_NF_', values: NetFlags },
  { name: 'vigil_net_stat', prefix: 'VIGIL_NET_STAT_', values: NetStat },
  { name: 'vigil_net_setting_flags', prefix: 'VIGIL_NS_', values: NetSettingFlags },
];
