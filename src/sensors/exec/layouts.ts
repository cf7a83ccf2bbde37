/**
 * TypeScript side of bpf/exec/exec.h: the exec sensor's records. Checked
 * against the object's BTF at load (BpfSensor) and by test/events/layouts.test.ts.
 */
import { f, type Layout } from '../../events/layouts.js';

/** enum vigil_exec_record_type */
export const ExecRecordType = {
  EXEC: 1,
  FORK: 2,
  EXIT: 3,
} as const;

/** enum vigil_exec_flags */
export const ExecFlags = {
  ARGS_TRUNCATED: 1 << 0,
  ARGS_FAULT: 1 << 1,
  EXE_TRUNCATED: 1 << 2,
  CWD_TRUNCATED: 1 << 3,
  EXE_MISSING: 1 << 4,
} as const;


export const VigilExec = {
  name: 'vigil_exec',
  size: 120,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    flags: f(88, 4),
    argc: f(92, 4),
    exe_len: f(96, 4),
    cwd_len: f(100, 4),
    args_len: f(104, 4),
    exe_dev: f(108, 4),
    exe_ino: f(112, 8),
    data: f(120, 0),
  },
} as const satisfies Layout;

export const VigilFork = {
  name: 'vigil_fork',
  size: 88,
  fields: { hdr: f(0, 16, 'vigil_hdr'), task: f(16, 72, 'vigil_task') },
} as const satisfies Layout;

export const VigilExit = {
  name: 'vigil_exit',
  size: 96,
  fields: { hdr: f(0, 16, 'vigil_hdr'), task: f(16, 72, 'vigil_task'), exit_code: f(88, 4), _pad0: f(92, 4) },
} as const satisfies Layout;

