/**
 * One writer per store, log and pinned guard: an advisory flock(2) on a lock
 * file next to what it guards ("<path>.lock", mode 0600) that holds the
 * holder's pid. The kernel drops a flock when its holder dies (SIGKILL
 * included), so a stale lock file never blocks a restart: the next agent
 * takes the lock and writes its own pid. A lock file removed and re-created
 * while we waited is detected (inode compared after locking) and retried.
 *
 * flock is per open file description: a second lock on the same file from the
 * same process is refused like one from another process.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readFileSync, statSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { koffi, libcFlock } from './ffi.js';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
const EINTR = 4;

/** The lock is held by another process (its pid when the lock file names one). */
export class LockHeldError extends Error {
  readonly code = 'ELOCKED';
  constructor(
    /** what the lock guards (the store, the log, the pin directory) */
    readonly target: string,
    readonly lockPath: string,
    /** the holder's pid, or null when the file does not name one yet */
    readonly holder: number | null,
  ) {
    super(`in use by another vigil process${holder !== null ? ` (pid ${holder})` : ''}, lock ${lockPath}`);
    this.name = 'LockHeldError';
  }
}

export interface FileLock {
  readonly path: string;
  /** release the lock and remove the lock file (idempotent) */
  release(): void;
}

/** The pid a lock file names, or null. */
export function lockHolder(lockPath: string): number | null {
  try {
    const m = /^(\d+)\n?$/.exec(readFileSync(lockPath, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Take the lock guarding `target` (lock file `lockPath`, default "<target>.lock")
 * or throw LockHeldError naming the holder. System errors (EROFS, EACCES, ENOENT
 * of the directory) are thrown as they are.
 */
export function acquireLock(target: string, lockPath = `${target}.lock`): FileLock {
  for (let attempt = 0; ; attempt++) {
    const fd = openSync(lockPath, constants.O_RDWR | constants.O_CREAT, 0o600);
    let r: number;
    do r = libcFlock(fd, LOCK_EX | LOCK_NB);
    while (r !== 0 && koffi.errno() === EINTR);
    if (r !== 0) {
      const errno = koffi.errno();
      closeSync(fd);
      if (errno !== EWOULDBLOCK) throw Object.assign(new Error(`flock ${lockPath}: errno ${errno}`), { errno, path: lockPath });
      // the holder writes its pid right after locking: give it a moment
      let holder = lockHolder(lockPath);
      for (let i = 0; holder === null && i < 20; i++) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        holder = lockHolder(lockPath);
      }
      throw new LockHeldError(target, lockPath, holder);
    }
    // the file we locked must still be the one at lockPath (a releaser unlinks it)
    let same = false;
    try {
      const a = fstatSync(fd);
      const b = statSync(lockPath);
      same = a.ino === b.ino && a.dev === b.dev;
    } catch {
      same = false;
    }
    if (!same) {
      closeSync(fd);
      if (attempt < 10) continue;
      throw new LockHeldError(target, lockPath, lockHolder(lockPath));
    }
    fchmodSync(fd, 0o600);
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    let released = false;
    return {
      path: lockPath,
      release() {
        if (released) return;
        released = true;
        // unlink while still holding it: a waiter that opened the old file sees the inode change
        try {
          unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
        closeSync(fd);
      },
    };
  }
}
