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

/** Lines of a verifier log that report statistics, not the refusal. */
const VERIFIER_STATS = /^(processed \d+ insns|verification time|stack depth|mark_read)/;

/**
 * The verifier's own last word on a refused program, from libbpf's log:
 * "prog 'vigil_exec': number of funcs in func_info doesn't match number of subprogs".
 * Undefined when the log holds no program load log.
 */
export function verifierReason(log: string | undefined): string | undefined {
  if (!log) return undefined;
  const end = log.lastIndexOf('-- END PROG LOAD LOG --');
  if (end < 0) return undefined;
  const begin = log.lastIndexOf('-- BEGIN PROG LOAD LOG --', end);
  const bodyStart = begin >= 0 ? log.indexOf('\n', begin) + 1 : 0;
  const lines = log.slice(bodyStart, end).split('\n').map((l) => l.trim()).filter((l) => l && !VERIFIER_STATS.test(l));
  const last = lines.at(-1);
  if (!last) return undefined;
  // "libbpf: prog 'NAME': -- BEGIN PROG LOAD LOG --", or after the block "prog 'NAME': failed to load"
  const prog = (begin >= 0 ? /prog '([^']+)': $/.exec(log.slice(log.lastIndexOf('\n', begin) + 1, begin)) : null)?.[1]
    ?? /prog '([^']+)': failed to load/.exec(log.slice(end))?.[1];
  return prog ? `prog '${prog}': ${last}` : last;
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
  /** the verifier's last line when the kernel refused a program (see verifierReason) */
  readonly reason: string | undefined;

  constructor(ctx: BpfErrorContext) {
    const errno = Math.abs(ctx.errno);
    const code = errnoName(errno);
    const reason = verifierReason(ctx.log);
    const hint = ctx.hint ?? defaultHint(ctx.op, code, reason);
    super(`${ctx.op} failed: ${code}${reason ? ` [${reason}]` : ''}${hint ? ` (${hint})` : ''}`);
    this.name = 'BpfError';
    this.op = ctx.op;
    this.errno = errno;
    this.code = code;
    this.hint = hint;
    this.log = ctx.log;
    this.reason = reason;
  }
}

/** What a verifier refusal means, for the ones that say "this kernel is too old". */
export function reasonHint(reason: string): string | undefined {
  if (/func_info doesn't match number of subprogs|unknown func|invalid func/.test(reason)) {
    return 'the program calls a BPF helper or callback this kernel does not have (an object built for a newer kernel); `vigil doctor` shows which build was chosen';
  }
  if (/is not sleepable/.test(reason)) return 'this kernel cannot run a sleepable program at that hook (sleepable LSM programs there: Linux 5.11+)';
  if (/too large|too complex|sequence of \d+ jumps/i.test(reason)) return 'the program is too large or complex for this kernel\'s verifier';
  return undefined;
}

/** Hints for the failures users actually meet. */
export function defaultHint(op: string, code: string, reason?: string): string | undefined {
  const lsm = /lsm|attach_lsm/i.test(op);
  const trampoline = /fentry|fexit|lsm/i.test(op);
  const fromReason = reason ? reasonHint(reason) : undefined;
  if (fromReason) return fromReason;
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      if (lsm) {
        return 'BPF LSM is not usable here: it needs CONFIG_BPF_LSM, BPF trampoline support, and bpf in the active LSM list (add bpf to lsm= on the kernel command line); run `vigil doctor`';
      }
      if (trampoline) return 'this kernel refuses BPF trampolines (fentry/fexit/lsm); run `vigil doctor`';
      if (reason && code === 'EACCES') return 'the verifier refused the program (its reason is above; the full log is in the error)';
      return 'run as root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN); under lockdown=confidentiality BPF reads of kernel memory are refused';
    case 'ENOENT':
      if (/tracepoint/.test(op)) return 'the tracepoint does not exist on this kernel, or tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)';
      if (/pin|obj_get|link__open/.test(op)) return 'nothing is pinned there (is bpffs mounted at /sys/fs/bpf?)';
      return 'a program, map or BTF type the object needs is missing on this kernel';
    case 'EINVAL':
      if (reason) return 'the verifier refused the program (its reason is above; the full log is in the error)';
      if (lsm) return 'the kernel refused the LSM program or hook; `vigil doctor` tells BPF LSM support apart from this object';
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
