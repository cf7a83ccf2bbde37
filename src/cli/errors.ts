/**
 * vigil's error model (docs/cli.md, EXIT STATUS and ERRORS).
 *
 * Every failure a user can meet is a VigilError: a stable `code` ("input.not_found"),
 * the option, key or path it concerns (`subject`), a `hint` that says what to do,
 * and the underlying error as `cause` (a BpfError, an SQLite or a system error).
 * main() prints it as one line; the stack (and a BPF verifier log) only with
 * --debug. The first part of the code is its class, and the class is the exit
 * status, the same for every command:
 *
 *   0   ok
 *   1   failed     the command ran and its answer is no: rule files with errors,
 *                  a rule that does not exist, sensors that cannot run here (doctor)
 *   2   usage      the command line is wrong: unknown command or option, a missing
 *                  argument, a value of the wrong form
 *   3   unavailable this host or a service cannot do it now: BPF or BPF LSM refused,
 *                  not root, a server that does not answer
 *   4   input      a file or configuration vigil was given is wrong: config errors
 *                  (file:line:col), a path that does not exist, a directory where a
 *                  file belongs, a file that is not a database
 *   70  internal   a bug in vigil (sysexits EX_SOFTWARE): please report it
 */
import { safeText } from '../util/text.js';
import type { LockHeldError } from '../kernel/lock.js';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unavailable: 3,
  input: 4,
  internal: 70,
} as const;

export type ErrorClass = Exclude<keyof typeof EXIT, 'ok'>;

/** "usage.bad_value" → "usage" (config.* errors are input errors). */
export function errorClass(code: string): ErrorClass {
  const head = code.split('.')[0]!;
  if (head === 'config') return 'input';
  return head in EXIT && head !== 'ok' ? (head as ErrorClass) : 'internal';
}

export interface VigilErrorOptions {
  /** the option ("--db"), config key ("db") or path it concerns */
  subject?: string | undefined;
  /** what the user can do about it */
  hint?: string | undefined;
  cause?: unknown;
}

export class VigilError extends Error {
  readonly code: string;
  readonly subject: string | undefined;
  readonly hint: string | undefined;

  constructor(code: string, message: string, opts: VigilErrorOptions = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'VigilError';
    this.code = code;
    this.subject = opts.subject;
    this.hint = opts.hint;
  }

  get exitCode(): number {
    return EXIT[errorClass(this.code)];
  }

  /** The one line main() prints (without the "vigil: " prefix). */
  line(note?: string): string {
    return `${this.subject ? `${this.subject}: ` : ''}${this.message}${this.hint ? `; ${this.hint}` : ''}${note ? ` (${note})` : ''} [${this.code}]`;
  }
}

/** A wrong command line (exit 2). `subject` is the option or argument. */
export class UsageError extends VigilError {
  constructor(subject: string | undefined, message: string, opts: Omit<VigilErrorOptions, 'subject'> & { code?: string } = {}) {
    super(opts.code ?? 'usage.bad_value', message, { ...opts, subject });
    this.name = 'UsageError';
  }
}

/** A file or configuration that is wrong (exit 4). */
export class InputError extends VigilError {
  constructor(code: `input.${string}` | `config.${string}`, subject: string | undefined, message: string, opts: Omit<VigilErrorOptions, 'subject'> = {}) {
    super(code, message, { ...opts, subject });
    this.name = 'InputError';
  }
}

/** This host or a service cannot do it now (exit 3). */
export class UnavailableError extends VigilError {
  constructor(code: `unavailable.${string}`, message: string, opts: VigilErrorOptions = {}) {
    super(code, message, opts);
    this.name = 'UnavailableError';
  }
}

const LEGACY: Record<number, string> = { 1: 'failed', 2: 'usage.bad_value', 3: 'unavailable', 4: 'input' };

/**
 * The older form: a message and an exit status. Kept for the commands that
 * still throw it; the status picks the class (1 failed, 2 usage, 3 unavailable,
 * 4 input).
 */
export class CliError extends VigilError {
  constructor(message: string, code = 1) {
    super(LEGACY[code] ?? 'failed', message);
    this.name = 'CliError';
  }
}

/** A value shown in a message: control characters escaped, cut to `max` characters. */
export function shown(v: string, max = 80): string {
  const s = safeText(v);
  return s.length > max ? `${s.slice(0, max - 1)}…(${v.length} characters)` : s;
}

/** A BPF refusal in a few words: the operation, the errno, the verifier's last line when there is one. */
export function bpfRefusal(e: { op: string; code: string }): string {
  const verifier = (e as { reason?: string }).reason;
  return `${e.op}: ${e.code}${verifier ? ` [${verifier}]` : ''}`;
}

/** What a system error (ENOENT, EISDIR, ...) on `path` means, as an error of its class. */
export function fromSystemError(e: NodeJS.ErrnoException, subject: string | undefined, doing?: string): VigilError | undefined {
  const what = doing ? `${doing}: ` : '';
  const path = e.path !== undefined ? shown(String(e.path), 200) : undefined;
  const sub = subject ?? path;
  const at = subject && path && !subject.includes(path) ? ` (${path})` : '';
  switch (e.code) {
    case 'ENOENT':
      return new InputError('input.not_found', sub, `${what}no such file or directory${at}`, { cause: e });
    case 'EISDIR':
      return new InputError('input.is_directory', sub, `${what}is a directory, a file is needed here${at}`, { cause: e });
    case 'ENOTDIR':
      return new InputError('input.not_a_directory', sub, `${what}a part of the path is not a directory${at}`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new InputError('input.permission', sub, `${what}permission denied${at}`, { cause: e, hint: 'run as root or fix the file\'s mode' });
    case 'EROFS':
      return new InputError('input.read_only', sub, `${what}read-only file system${at}`, { cause: e });
    case 'ELOOP':
      return new InputError('input.symlink_loop', sub, `${what}too many levels of symbolic links${at}`, { cause: e });
    case 'ENAMETOOLONG':
      return new InputError('input.name_too_long', sub, `${what}file name too long`, { cause: e });
    case 'ENOSPC':
      return new UnavailableError('unavailable.no_space', `${what}no space left on device${at}`, { subject: sub, cause: e });
    case 'EMFILE':
    case 'ENFILE':
      return new UnavailableError('unavailable.too_many_files', `${what}too many open files${at}`, { subject: sub, cause: e, hint: 'raise ulimit -n' });
    default:
      return undefined;
  }
}

/** What an SQLite error (better-sqlite3's SqliteError) on the store `path` means. */
export function fromSqliteError(e: { code?: string; message: string }, subject: string | undefined): VigilError | undefined {
  const code = e.code ?? '';
  if (!code.startsWith('SQLITE_')) return undefined;
  if (code === 'SQLITE_NOTADB') return new InputError('input.not_a_database', subject, 'not an SQLite database', { cause: e, hint: 'give the store `vigil run` writes' });
  if (code.startsWith('SQLITE_CORRUPT')) return new InputError('input.corrupt_database', subject, `the database is corrupt (${e.message})`, { cause: e });
  if (code.startsWith('SQLITE_CANTOPEN')) return new InputError('input.cannot_open', subject, `cannot open the database (${e.message})`, { cause: e, hint: 'a file is needed (not a directory) in a directory that exists' });
  if (code.startsWith('SQLITE_READONLY')) return new InputError('input.read_only', subject, `the database is read-only (${e.message})`, { cause: e });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new UnavailableError('unavailable.busy', `the database is locked by another process (${e.message})`, { subject, cause: e });
  if (code === 'SQLITE_FULL') return new UnavailableError('unavailable.no_space', 'the disk is full', { subject, cause: e });
  if (code.startsWith('SQLITE_IOERR')) return new InputError('input.io_error', subject, `cannot read the database (${e.message}): a directory, or a file vigil cannot read`, { cause: e });
  return new InputError('input.database', subject, `database error: ${e.message}`, { cause: e });
}

/** A failure opening an output (a sink): one line naming the flag or key that gave the path. */
export function openError(e: unknown, subject: string, path: string): unknown {
  if (e instanceof VigilError) return e;
  const sub = `${subject} ${shown(path, 200)}`;
  // (the lock's class is not imported here: it would load koffi for every command)
  if (e instanceof Error && (e as { code?: unknown }).code === 'ELOCKED' && 'holder' in e) return lockError(e as LockHeldError, sub);
  const err = e as NodeJS.ErrnoException;
  return fromSqliteError(err as { code?: string; message: string }, sub) ?? fromSystemError(err, sub) ?? e;
}

/** Another agent holds the lock: one line naming it (exit 3). */
export function lockError(e: LockHeldError, subject: string): VigilError {
  return new UnavailableError('unavailable.locked', `${e.message}`, {
    subject,
    cause: e,
    hint: e.holder !== null ? `stop that agent first (kill ${e.holder}) or give another path` : 'stop the other agent first or give another path',
  });
}
