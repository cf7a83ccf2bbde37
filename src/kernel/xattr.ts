/**
 * Extended attributes of files (Node has no API for them): getxattr,
 * setxattr, removexattr from libc. Errors are SystemError-like objects with
 * code (ENODATA, ENOTSUP, EPERM, ...) and the path, as node:fs throws them.
 */
import { koffi } from './ffi.js';
import { errnoName } from './errors.js';

let lib: ReturnType<typeof load> | null = null;

function load() {
  const l = koffi.load('libc.so.6');
  return {
    getxattr: l.func('intptr_t getxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)'),
    setxattr: l.func('int setxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)'),
    removexattr: l.func('int removexattr(const char *path, const char *name)'),
  };
}

const libc = () => (lib ??= load());

export interface XattrError extends Error {
  code: string;
  errno: number;
  path: string;
  syscall: string;
}

function fail(syscall: string, path: string, name: string): XattrError {
  const errno = koffi.errno();
  const code = errnoName(errno);
  const e = new Error(`${syscall} ${name} of ${path}: ${code}`) as XattrError;
  e.code = code;
  e.errno = errno;
  e.path = path;
  e.syscall = syscall;
  return e;
}

/** The attribute's bytes; null when the file has none of that name (ENODATA). At most `max` bytes are read (ERANGE beyond). */
export function getXattr(path: string, name: string, max = 65536): Buffer | null {
  const buf = Buffer.alloc(max);
  const n = Number(libc().getxattr(path, name, buf, buf.length));
  if (n < 0) {
    const e = fail('getxattr', path, name);
    if (e.code === 'ENODATA') return null;
    throw e;
  }
  return buf.subarray(0, n);
}

export function setXattr(path: string, name: string, value: Buffer): void {
  if ((libc().setxattr(path, name, value, value.length, 0) as number) < 0) throw fail('setxattr', path, name);
}

/** Remove the attribute; false when there was none. */
export function removeXattr(path: string, name: string): boolean {
  if ((libc().removexattr(path, name) as number) < 0) {
    const e = fail('removexattr', path, name);
    if (e.code === 'ENODATA') return false;
    throw e;
  }
  return true;
}
