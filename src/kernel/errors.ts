import { constants as osConstants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

export interface BpfErrorContext {
  /** the libbpf operation that failed, e.g. "bpf_object__load(exec.bpf.o)" */
  op: string;
  /** positive errno */
  errno: number;
  /** what the user can do about it; derived from op/errno when not given */
  hint?: string;
  /** the tail of libbpf's log (verifier output) captured during the call */
  log?: string;
}

/**
 * Every failure of the kernel binding. `message` names the operation, the errno
 * and a hint; `log` holds what libbpf printed (verifier log included).
 */
export class BpfError extends Error {
  readonly op: string;
  readonly errno: number;
  readonly code: string;
  readonly hint: string | undefined;
  readonly log: string | undefined;

  constructor(ctx: BpfErrorContext) {
    const errno = Math.abs(ctx.errno);
    const code = errnoName(errno);
    const hint = ctx.hint ?? defaultHint(ctx.op, code);
    super(`${ctx.op} failed: ${code}${hint ? ` (${hint})` : ''}`);
    this.name = 'BpfError';
    this.op = ctx.op;
    this.errno = errno;
    this.code = code;
    this.hint = hint;
    this.log = ctx.log;
  }
}

/** Hints for the failures users actually meet. */
export function defaultHint(op: string, code: string): string | undefined {
  const lsm = /lsm|attach_lsm/i.test(op);
  const trampoline = /fentry|fexit|lsm/i.test(op);
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      if (lsm) {
        return 'BPF LSM is not usable here: it needs CONFIG_BPF_LSM, BPF trampoline support, and bpf in the active LSM list (add bpf to lsm= on the kernel command line); run `vigil doctor`';
      }
      if (trampoline) return 'this kernel refuses BPF trampolines (fentry/fexit/lsm); run `vigil doctor`';
      return 'run as root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN); under lockdown=confidentiality BPF reads of kernel memory are refused';
    case 'ENOENT':
      if (/tracepoint/.test(op)) return 'the tracepoint does not exist on this kernel, or tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)';
      if (/pin|obj_get|link__open/.test(op)) return 'nothing is pinned there (is bpffs mounted at /sys/fs/bpf?)';
      return 'a program, map or BTF type the object needs is missing on this kernel';
    case 'EINVAL':
      if (lsm) return 'the kernel does not know this LSM hook or BPF LSM is not compiled in (CONFIG_BPF_LSM)';
      return 'the kernel rejected the arguments: an object built for a newer kernel, or a wrong key/value size';
    case 'E2BIG':
      return 'the program is too large or complex for this kernel\'s verifier';
    case 'ENOTSUPP':
    case 'EOPNOTSUPP':
      return 'this kernel does not support the feature';
    case 'ESRCH':
      return 'BTF for the kernel is missing (/sys/kernel/btf/vmlinux); CO-RE needs CONFIG_DEBUG_INFO_BTF=y';
    case 'EEXIST':
      return 'already exists (a pinned object at that path, or a key with BPF_NOEXIST)';
    case 'ENOSPC':
      return 'the map is full';
    default:
      return undefined;
  }
}

/** A decoded record that does not match the expected layout. */
export class RecordError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'RecordError';
  }
}
