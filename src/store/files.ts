/**
 * Who can read the records: every file vigil writes that holds events, alerts
 * or rules is created 0600 and every directory it creates 0700, whatever the
 * umask (the mode is set with chmod after creation, not left to open's mode
 * argument, which the umask narrows and a umask of 0 would not). With a
 * configured group (`files.group`, setRecordGroup), they are created 0640 and
 * 0750 and given that group (chown), so its members read them, nobody else.
 * Files that exist are left as they are (`vigil doctor` warns about those
 * others can read).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, closeSync, constants, fchmodSync, fchownSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;
export const GROUP_FILE_MODE = 0o640;
export const GROUP_DIR_MODE = 0o750;

/** The group that may read the records (null: the owner only). Set once per command from the resolved config. */
let recordGroup: { name: string; gid: number } | null = null;

export function setRecordGroup(g: { name: string; gid: number } | null): void {
  recordGroup = g;
}

export function getRecordGroup(): { name: string; gid: number } | null {
  return recordGroup;
}

/**
 * The gid of a group name (or a numeric gid as written), through NSS
 * (`getent group`, so LDAP and sssd groups count), else /etc/group; null when
 * there is no such group.
 */
export function lookupGroup(name: string): number | null {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    const line = execFileSync('getent', ['group', '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    const gid = Number(line.split(':')[2]);
    if (Number.isSafeInteger(gid)) return gid;
  } catch {
    /* no such group (exit 2), or no getent: /etc/group */
  }
  try {
    for (const l of readFileSync('/etc/group', 'utf8').split('\n')) {
      const f = l.split(':');
      if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2]!)) return Number(f[2]);
    }
  } catch {
    /* none */
  }
  return null;
}

/** mkdir -p with every directory it creates 0700 (0750 and the group, when one is configured). */
export function makePrivateDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  if (first === undefined) return;
  const g = recordGroup;
  // the directories created: from `first` down to `dir`
  const target = resolve(dir);
  let d = resolve(first);
  for (;;) {
    if (g) chownSync(d, -1, g.gid);
    chmodSync(d, g ? GROUP_DIR_MODE : DIR_MODE);
    if (d === target) break;
    const rest = target.slice(d.length + 1).split('/')[0]!;
    d = `${d}/${rest}`;
  }
}

/**
 * Create `path` (and its directories) 0600 (0640 and the group, when one is
 * configured) when it does not exist; returns whether it was created. An
 * existing file keeps its mode and group. (SQLite gives a store's -wal and
 * -shm the store's mode, owner and group.)
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
    const g = recordGroup;
    if (g) fchownSync(fd, -1, g.gid);
    fchmodSync(fd, g ? GROUP_FILE_MODE : FILE_MODE);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Whether a file of this mode and group is readable beyond what is allowed:
 * others may do nothing; the group may read when it is the configured group
 * (`gid`), nothing otherwise.
 */
export function tooOpen(mode: number, fileGid: number, gid: number | null): boolean {
  if (mode & 0o007) return true;
  if (!(mode & 0o070)) return false;
  return gid === null || fileGid !== gid || (mode & 0o030) !== 0;
}

/** The file's mode when more than its owner (and the configured group, reading) can use it. */
export function exposedMode(path: string, gid: number | null = recordGroup?.gid ?? null): number | null {
  try {
    const st = statSync(path);
    const m = st.mode & 0o777;
    return tooOpen(m, st.gid, gid) ? m : null;
  } catch {
    return null;
  }
}

export interface RecordFilesReport {
  /** files that exist and others (or a group other than the configured one) can read or write, with their mode and gid */
  exposed: Array<{ path: string; mode: number; gid: number }>;
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
export function inspectRecordFiles(paths: readonly string[], gid: number | null = recordGroup?.gid ?? null): RecordFilesReport {
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
      if (tooOpen(st.mode & 0o777, st.gid, gid)) out.exposed.push({ path: p, mode: st.mode & 0o777, gid: st.gid });
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

/**
 * Open a SQLite file that keeps rules beside the events (deny rules, allow rules):
 * created like every record file (ensurePrivateFile) and, unless read-only, in WAL
 * mode with a 5 s busy timeout and `schema` applied (idempotent DDL).
 */
export function openRulesDatabase(file: string, schema: string, opts: { readonly?: boolean } = {}): Database.Database {
  if (!opts.readonly && file !== ':memory:') ensurePrivateFile(file);
  const db = new Database(file, opts.readonly ? { readonly: true, fileMustExist: true } : {});
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec(schema);
  }
  return db;
}
