/**
 * Who can read the records: every file vigil writes that holds events, alerts
 * or rules is created 0600 and every directory it creates 0700, whatever the
 * umask (the mode is set with chmod after creation, not left to open's mode
 * argument, which the umask narrows and a umask of 0 would not). Files that
 * exist are left as they are (`vigil doctor` warns about those others can read).
 */
import { chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** mkdir -p with every directory it creates 0700. */
export function makePrivateDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  if (first === undefined) return;
  // the directories created: from `first` down to `dir`
  const target = resolve(dir);
  let d = resolve(first);
  for (;;) {
    chmodSync(d, DIR_MODE);
    if (d === target) break;
    const rest = target.slice(d.length + 1).split('/')[0]!;
    d = `${d}/${rest}`;
  }
}

/**
 * Create `path` (and its directories) 0600 when it does not exist; returns
 * whether it was created. An existing file keeps its mode.
 */
export function ensurePrivateFile(path: string): boolean {
  makePrivateDir(dirname(path));
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, FILE_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    fchmodSync(fd, FILE_MODE);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Whether group or others can read (or write) the file: mode & 0o077. */
export function exposedMode(path: string): number | null {
  try {
    const m = statSync(path).mode & 0o777;
    return m & 0o077 ? m : null;
  } catch {
    return null;
  }
}
