/**
 * TypeScript side of bpf/file/file.h. Checked against the object's BTF at load
 * (BpfSensor) and by test/events/layouts.test.ts, enums included.
 */
import { f, type Layout } from '../../events/layouts.js';

/** enum vigil_file_record_type */
export const FileRecordType = { FILE: 16, FILE_MARK: 17 } as const;

/** enum vigil_file_op */
export const FileOp = {
  OPEN_WRITE: 1,
  OPEN_READ: 2,
  UNLINK: 3,
  RENAME: 4,
  CHMOD: 5,
  TRUNCATE: 6,
} as const;

/** enum vigil_file_flags */
export const FileFlags = {
  PATH_TRUNCATED: 1 << 0,
  PATH2_TRUNCATED: 1 << 1,
  PATH_KERNEL: 1 << 2,
  PATH_JOINED: 1 << 3,
  PATH2_JOINED: 1 << 4,
  PATH_FAULT: 1 << 5,
  CREATED: 1 << 6,
  DIR: 1 << 7,
  OLD_MODE: 1 << 8,
} as const;

/** enum vigil_file_stat (vigil_stats slots) */
export const FileStat = {
  FILE_EVENTS: 16,
  FILE_FILTERED: 17,
  FILE_DEDUP: 18,
  FILE_SELF: 19,
  FILE_PENDING_LOST: 20,
  FILE_FAILED_SKIPPED: 21,
  FILE_TAIL_FAILED: 22,
  FILE_MARK: 23,
  FILE_MARK_LOST: 24,
  FILE_DERIVED: 25,
  FILE_DEPTH: 26,
  FILE_MARK_DEDUP: 27,
  FILE_TAINT_LOST: 28,
  FILE_MARK_STALE: 29,
} as const;

/** enum vigil_file_prov_flags */
export const FileProvFlags = { ON: 1 << 0 } as const;

/** enum vigil_file_prefix_flags */
export const FilePrefixFlags = { EXCLUDE: 1 << 0, INCLUDE: 1 << 1, READ: 1 << 2 } as const;

/** enum vigil_file_failed */
export const FileFailed = { NONE: 0, DENIED: 1, ALL: 2 } as const;

export const FILE_PREFIX_MAX = 256;

export const VigilFile = {
  name: 'vigil_file',
  size: 136,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    result: f(88, 8),
    op: f(96, 4),
    flags: f(100, 4),
    open_flags: f(104, 4),
    mode: f(108, 4),
    old_mode: f(112, 4),
    dev: f(116, 4),
    ino: f(120, 8),
    path_len: f(128, 4),
    path2_len: f(132, 4),
    data: f(136, 0),
  },
} as const satisfies Layout;

export const VigilFileSettings = {
  name: 'vigil_file_settings',
  size: 32,
  fields: {
    self_tgid: f(0, 4),
    has_include: f(4, 4),
    read_prefixes: f(8, 4),
    failed: f(12, 4),
    dedup_ns: f(16, 8),
    prov_flags: f(24, 4),
    prov_max_depth: f(28, 4),
  },
} as const satisfies Layout;

/** struct vigil_file_mark: a tainted process opened a regular file for writing (provenance). */
export const VigilFileMark = {
  name: 'vigil_file_mark',
  size: 168,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    ino: f(88, 8),
    dev: f(96, 4),
    path_len: f(100, 4),
    flags: f(104, 4),
    depth: f(108, 4),
    taint: f(112, 56, 'vigil_taint'),
    data: f(168, 0),
  },
} as const satisfies Layout;

export const VigilFilePrefixKey = {
  name: 'vigil_file_prefix_key',
  size: 260,
  fields: { prefixlen: f(0, 4), data: f(4, 256) },
} as const satisfies Layout;

/** Enums checked against the BTF: [C enum name, C prefix, values]. */
export const FILE_ENUMS: Array<[string, string, Record<string, number>]> = [
  ['vigil_file_record_type', 'VIGIL_REC_', FileRecordType],
  ['vigil_file_op', 'VIGIL_FOP_', FileOp],
  ['vigil_file_flags', 'VIGIL_FF_', FileFlags],
  ['vigil_file_stat', 'VIGIL_STAT_', FileStat],
  ['vigil_file_prefix_flags', 'VIGIL_FP_', FilePrefixFlags],
  ['vigil_file_failed', 'VIGIL_FAILED_', FileFailed],
  ['vigil_file_prov_flags', 'VIGIL_FPROV_', FileProvFlags],
];
