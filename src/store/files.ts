/**
 * Who can read the records: every file vigil writes that holds events, alerts
 * or rules is created 0600 and every directory it creates 0700, whatever the
 * umask (the mode is set with chmod after creation, not left to open's mode
 * argument, which the umask narrows and a umask of 0 would not). Files that
 * exist are left as they are (`vigil doctor` warns about those others can read).
 */
import { accessSync, chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
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

export interface RecordFilesReport {
  /** files that exist and group or others can read or write, with their mode */
  exposed: Array<{ path: string; mode: number }>;
  /** files (or, for those not made yet, their directories) vigil cannot write, with the reason */
  unwritable: Array<{ path: string; reason: string }>;
  /** files that exist */
  present: string[];
}

/**
 * What `vigil doctor` says about the store and the logs a run would write:
 * which exist, which others can read, which cannot be written (a read-only
 * mount: EROFS even for root).
 */
export function inspectRecordFiles(paths: readonly string[]): RecordFilesReport {
  const out: RecordFilesReport = { exposed: [], unwritable: [], present: [] };
  for (const p of paths) {
    let exists = false;
    try {
      const st = statSync(p);
      exists = true;
      out.present.push(p);
      if (st.isDirectory()) {
        out.unwritable.push({ path: p, reason: 'a directory where a file belongs' });
        continue;
      }
      if (st.mode & 0o077) out.exposed.push({ path: p, mode: st.mode & 0o777 });
    } catch {
      /* not there yet */
    }
    try {
      accessSync(exists ? p : nearestDir(p), constants.W_OK);
    } catch (e) {
      out.unwritable.push({ path: p, reason: (e as NodeJS.ErrnoException).code === 'EROFS' ? 'read-only file system' : String((e as NodeJS.ErrnoException).code ?? (e as Error).message) });
    }
  }
  return out;
}

/** The closest directory of `p` that exists. */
function nearestDir(p: string): string {
  let d = dirname(resolve(p));
  for (;;) {
    try {
      if (statSync(d).isDirectory()) return d;
    } catch {
      /* up */
    }
    const up = dirname(d);
    if (up === d) return d;
    d = up;
  }
}
