import { koffi } from './ffi.js';
import { BpfError } from './errors.js';
import { tailLog, withLog } from './log.js';

/** Call a libbpf function returning a pointer (NULL + errno on failure). */
export function callPtr<T>(op: string, fn: () => T, hint?: string): NonNullable<T> {
  const { result, log } = withLog(fn);
  if (result === null || result === undefined) {
    const errno = koffi.errno() || 22;
    throw new BpfError({ op, errno, hint, log: log ? tailLog(log) : undefined });
  }
  return result as NonNullable<T>;
}

/** Call a libbpf function returning an int (negative errno on failure). */
export function callInt(op: string, fn: () => number, hint?: string): number {
  const { result, log } = withLog(fn);
  if (result < 0) {
    // libbpf 1.x returns -errno; the low-level bpf_* wrappers also set errno.
    const errno = result === -1 ? koffi.errno() || 1 : -result;
    throw new BpfError({ op, errno, hint, log: log ? tailLog(log) : undefined });
  }
  return result;
}
