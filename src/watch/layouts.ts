/**
 * TypeScript side of bpf/watch/shell_guard.h: the records, keys and enums of
 * vigil watch's LSM guards. Checked against each guard object's BTF when it is
 * loaded (WatchGuard) and by test/events/layouts.test.ts.
 */
import { f, VigilHdr, VigilTask, type Layout } from '../events/layouts.js';

/** enum vigil_shell_guard_record_type (the watch guards own 64..71) */
export const WatchRecordType = { SHELL_DENIED: 64, FILE_DENIED: 65, NET_DENIED: 66 } as const;

/** enum vigil_shell_guard_stat (vigil_stats slots) */
export const WatchStat = { SHELL_DENIED: 16, FILE_DENIED: 17, NET_DENIED: 18 } as const;

const T = VigilHdr.size;
const B = T + VigilTask.size;

export const VigilShellDenied = {
  name: 'vigil_shell_denied',
  size: B + 16,
  fields: { hdr: f(0, VigilHdr.size, 'vigil_hdr'), task: f(T, VigilTask.size, 'vigil_task'), ino: f(B, 8), dev: f(B + 8, 4), depth: f(B + 12, 4) },
} as const satisfies Layout;

export const VigilShellKey = {
  name: 'vigil_shell_key',
  size: 16,
  fields: { ino: f(0, 8), dev: f(8, 4), _pad0: f(12, 4) },
} as const satisfies Layout;

export const VigilNetDenied = {
  name: 'vigil_net_denied',
  size: B + 32,
  fields: {
    hdr: f(0, VigilHdr.size, 'vigil_hdr'),
    task: f(T, VigilTask.size, 'vigil_task'),
    addr: f(B, 16),
    family: f(B + 16, 2),
    port: f(B + 18, 2),
    depth: f(B + 20, 4),
    op: f(B + 24, 4),
    _pad0: f(B + 28, 4),
  },
} as const satisfies Layout;

export const VigilLpm4Key = { name: 'vigil_lpm4_key', size: 8, fields: { prefixlen: f(0, 4), addr: f(4, 4) } } as const satisfies Layout;
export const VigilLpm6Key = { name: 'vigil_lpm6_key', size: 20, fields: { prefixlen: f(0, 4), addr: f(4, 16) } } as const satisfies Layout;

export const WATCH_LAYOUTS: Layout[] = [VigilShellDenied, VigilShellKey, VigilNetDenied, VigilLpm4Key, VigilLpm6Key];
