/**
 * Typed command-line options: each checks its value when commander parses it,
 * before any command runs, and refuses a bad one with an error that names the
 * option (src/cli/errors.ts). The kind is kept on the option, so the CLI sweep
 * (test/cli/sweep.test.ts) knows which values to try on every option.
 */
import { Argument, Option, type Command } from 'commander';
import { closeSync, openSync, readFileSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError, UsageError, shown } from './errors.js';
import { parseTimeBound } from '../util/text.js';
import { parseDuration, parseSize } from '../config/config.js';
import { parseListen } from '../api/listen.js';

export type OptionKind =
  /** an existing regular file that is read (a config, a credentials file) */
  | 'file'
  /** an SQLite store that is only read: must exist and be a database */
  | 'database-in'
  /** an SQLite store that is written (created when missing) */
  | 'database'
  /** a file that is written or appended (created when missing) */
  | 'out-file'
  /** an existing directory */
  | 'dir'
  /** a bpffs directory (created when missing) */
  | 'pin-dir'
  /** Sigma rule files or directories (their existence is checked by the rule loader) */
  | 'rules-path'
  /** an executable's path (it may not exist yet) */
  | 'exe-path'
  | 'duration'
  /** a duration that may also be in days: 7d, 12h, 2m */
  | 'age'
  /** a size: 512k, 8MiB, 1g, a number of bytes, or unlimited */
  | 'size'
  | 'time'
  | 'count'
  | 'choice'
  | 'sensors'
  | 'url'
  | 'host-id'
  /** an id of letters, digits, '_' and '-' (1 to 64) */
  | 'id'
  /** an absolute path as other hosts name it (not checked here) */
  | 'host-path'
  | 'sha256'
  | 'field-match'
  /** a short name (a category, a rule id): not empty, no control characters */
  | 'name'
  /** free text (a comment) */
  | 'text'
  /** ADDR:PORT for a server: an IP address (or localhost) and a port */
  | 'listen';

export type KindOf = { vigilKind?: OptionKind };

/** The kind of an option or argument declared with these helpers. */
export function kindOf(o: Option | Argument): OptionKind | undefined {
  return (o as KindOf).vigilKind;
}

const PATH_MAX = 4095;
/** the longest Node timer */
const MAX_TIMER_MS = 2 ** 31 - 1;

function name(o: Option | Argument): string {
  return o instanceof Option ? o.long ?? o.flags : o.name().toUpperCase();
}

/** Checks every path value shares: not empty, valid UTF-8, no NUL, not too long. */
export function checkPathText(subject: string, v: string): void {
  if (v === '') throw new UsageError(subject, 'an empty path');
  if (v.includes('\uFFFD')) {
    throw new UsageError(subject, `${shown(v)}: not valid UTF-8 (vigil cannot name such a file exactly)`, { hint: 'rename it, or give a directory or link with a UTF-8 name' });
  }
  if (v.includes('\0')) throw new UsageError(subject, 'a path with a NUL byte');
  if (v.length > PATH_MAX) throw new UsageError(subject, `a path of ${v.length} characters (at most ${PATH_MAX})`);
}

function stat(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new InputError('input.not_a_directory', undefined, `${shown(p)}: a part of the path is not a directory`);
    if (code === 'ENAMETOOLONG') throw new InputError('input.name_too_long', undefined, `${shown(p)}: file name too long`);
    if (code === 'EACCES') throw new InputError('input.permission', undefined, `${shown(p)}: permission denied`);
    throw e;
  }
}

/** The subject of an error about a path option: "--db /x/y". */
function withSubject<T>(subject: string, v: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InputError && e.subject === undefined) {
      throw new InputError(e.code as `input.${string}`, `${subject} ${shown(v)}`, e.message.replace(`${shown(v)}: `, ''), e.hint ? { hint: e.hint } : {});
    }
    throw e;
  }
}

export function checkInputFile(subject: string, v: string): string {
  checkPathText(subject, v);
  return withSubject(subject, v, () => {
    const st = stat(v);
    if (!st) throw new InputError('input.not_found', `${subject} ${shown(v)}`, 'no such file');
    if (st.isDirectory()) throw new InputError('input.is_directory', `${subject} ${shown(v)}`, 'a directory, a file is needed here');
    return v;
  });
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/** A file that is an SQLite database (or empty, or absent when `mayBeAbsent`). */
export function checkDatabase(subject: string, v: string, opts: { mustExist: boolean }): string {
  checkPathText(subject, v);
  return withSubject(subject, v, () => {
    const st = stat(v);
    if (!st) {
      if (opts.mustExist) throw new InputError('input.not_found', `${subject} ${shown(v)}`, 'no such file', { hint: 'no event store there: start `vigil run`, or give the store it writes' });
      const parent = stat(dirname(resolve(v)));
      if (parent && !parent.isDirectory()) throw new InputError('input.not_a_directory', `${subject} ${shown(v)}`, `${shown(dirname(v))} is not a directory`);
      return v;
    }
    if (st.isDirectory()) throw new InputError('input.is_directory', `${subject} ${shown(v)}`, 'a directory, an SQLite database file is needed here');
    if (!st.isFile()) throw new InputError('input.not_a_database', `${subject} ${shown(v)}`, 'not a regular file');
    if (st.size === 0) {
      if (opts.mustExist) throw new InputError('input.not_a_database', `${subject} ${shown(v)}`, 'an empty file, not a vigil store');
      return v;
    }
    const head = Buffer.alloc(16);
    let fd: number;
    try {
      fd = openSync(v, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') throw new InputError('input.permission', `${subject} ${shown(v)}`, 'permission denied', { hint: 'run as root' });
      throw e;
    }
    try {
      readSync(fd, head, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
    if (head.toString('latin1') !== SQLITE_MAGIC) throw new InputError('input.not_a_database', `${subject} ${shown(v)}`, 'not an SQLite database', { hint: 'give the store `vigil run` writes' });
    return v;
  });
}

/** A file vigil writes: not a directory, in a directory (created when missing). */
export function checkOutputFile(subject: string, v: string): string {
  checkPathText(subject, v);
  return withSubject(subject, v, () => {
    const st = stat(v);
    if (st?.isDirectory()) throw new InputError('input.is_directory', `${subject} ${shown(v)}`, 'a directory, a file is needed here');
    const parent = stat(dirname(resolve(v)));
    if (parent && !parent.isDirectory()) throw new InputError('input.not_a_directory', `${subject} ${shown(v)}`, `${shown(dirname(v))} is not a directory`);
    return v;
  });
}

export function checkDir(subject: string, v: string, opts: { mustExist: boolean }): string {
  checkPathText(subject, v);
  return withSubject(subject, v, () => {
    const st = stat(v);
    if (!st && opts.mustExist) throw new InputError('input.not_found', `${subject} ${shown(v)}`, 'no such directory');
    if (st && !st.isDirectory()) throw new InputError('input.not_a_directory', `${subject} ${shown(v)}`, 'not a directory');
    return v;
  });
}

/** The file system type `path` (or its nearest existing parent) is on, from /proc/self/mounts. */
export function fsTypeOf(path: string): string | undefined {
  let p = resolve(path);
  for (;;) {
    try {
      p = realpathSync(p);
      break;
    } catch {
      const up = dirname(p);
      if (up === p) return undefined;
      p = up;
    }
  }
  let best: { dir: string; type: string } | undefined;
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f.length < 3) continue;
    const dir = f[1]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = dir === '/' || p === dir || p.startsWith(`${dir}/`);
    if (inside && (!best || dir.length >= best.dir.length)) best = { dir, type: f[2]! };
  }
  return best?.type;
}

/**
 * A bpffs directory for pins. Arming and disarming remove what is in it, so a
 * directory anywhere else (a home directory, /tmp) is refused.
 */
export function checkPinDir(subject: string, v: string): string {
  checkDir(subject, v, { mustExist: false });
  const type = fsTypeOf(v);
  if (type !== 'bpf') {
    throw new InputError('input.not_bpffs', `${subject} ${shown(v)}`, `not on a bpf file system (${type ?? 'unknown'}): the exec guard pins live in bpffs, and arming or disarming empties this directory`, { hint: 'give a directory under /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)' });
  }
  return v;
}

export function parseCount(subject: string, v: string, opts: { min?: number } = {}): number {
  const min = opts.min ?? 1;
  const t = v.trim();
  const n = /^\d{1,15}$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(subject, `${shown(v) || '""'}: ${min === 0 ? 'a whole number' : 'a positive whole number'}${t.length > 15 && /^\d+$/.test(t) ? ' (too large)' : ''}`);
  return n;
}

function checkName(subject: string, v: string): string {
  if (v.trim() === '') throw new UsageError(subject, 'an empty value');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\uFFFD]/.test(v)) throw new UsageError(subject, `${shown(v)}: control characters or bytes that are not UTF-8`);
  if (v.length > 256) throw new UsageError(subject, `a value of ${v.length} characters (at most 256)`);
  return v;
}

const TEXT_MAX = 4096;

function checkText(subject: string, v: string): string {
  if (v.length > TEXT_MAX) throw new UsageError(subject, `a text of ${v.length} characters (at most ${TEXT_MAX})`);
  if (v.includes('\0')) throw new UsageError(subject, 'a text with a NUL byte');
  return v;
}

type Parse = (v: string, subject: string) => unknown;

const PARSERS: Partial<Record<OptionKind, Parse>> = {
  file: (v, s) => checkInputFile(s, v),
  'database-in': (v, s) => checkDatabase(s, v, { mustExist: true }),
  database: (v, s) => checkDatabase(s, v, { mustExist: false }),
  'out-file': (v, s) => checkOutputFile(s, v),
  dir: (v, s) => checkDir(s, v, { mustExist: true }),
  'pin-dir': (v, s) => checkPinDir(s, v),
  'rules-path': (v, s) => {
    checkPathText(s, v);
    return v;
  },
  'exe-path': (v, s) => {
    checkPathText(s, v);
    const st = stat(v);
    if (st?.isDirectory()) throw new InputError('input.is_directory', `${s} ${shown(v)}`, 'a directory, an executable file is needed here');
    return v;
  },
  duration: (v, s) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (e) {
      throw new UsageError(s, (e as Error).message);
    }
    if (!Number.isFinite(ms) || ms > MAX_TIMER_MS) throw new UsageError(s, `${shown(v)}: too long (at most 24 days)`);
    return v;
  },
  age: (v, s) => {
    const m = /^(\d{1,6})d$/.exec(v.trim());
    let ms: number;
    try {
      ms = m ? Number(m[1]) * 86_400_000 : parseDuration(v);
    } catch (e) {
      throw new UsageError(s, `${(e as Error).message} (or Nd for days)`);
    }
    if (!Number.isFinite(ms) || ms > 1000 * 86_400_000) throw new UsageError(s, `${shown(v)}: too long (at most 1000d)`);
    return v;
  },
  size: (v, s) => {
    const t = v.trim();
    if (t === 'unlimited' || t === '-1') return v;
    let n: number;
    try {
      n = /^\d{1,16}$/.test(t) ? Number(t) : parseSize(t);
    } catch {
      throw new UsageError(s, `${shown(v) || '""'}: a size like 512k, 8MiB, 1g, a number of bytes, or unlimited`);
    }
    if (!Number.isSafeInteger(n)) throw new UsageError(s, `${shown(v)}: too large`);
    return v;
  },
  time: (v, s) => {
    try {
      parseTimeBound(v);
    } catch (e) {
      throw new UsageError(s, (e as Error).message);
    }
    return v;
  },
  count: (v, s) => parseCount(s, v),
  'host-id': (v, s) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new UsageError(s, `${shown(v) || '""'}: letters, digits, '_' and '-' (1 to 64)`);
    return v;
  },
  id: (v, s) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new UsageError(s, `${shown(v) || '""'}: letters, digits, '_' and '-' (1 to 64)`);
    return v;
  },
  'host-path': (v, s) => {
    checkPathText(s, v);
    if (!v.startsWith('/')) throw new UsageError(s, `${shown(v)}: an absolute path (it names the file on the hosts, not here)`);
    return v;
  },
  listen: (v, s) => {
    const r = parseListen(checkName(s, v));
    if (typeof r === 'string') throw new UsageError(s, `${shown(v) || '""'}: ${r}`);
    return v;
  },
  url: (v, s) => {
    checkName(s, v);
    for (const u of v.split(',')) {
      if (!/^(nats|tls|wss?):\/\/[^\s/]+(:\d+)?\/?$/.test(u.trim())) throw new UsageError(s, `${shown(u)}: not a NATS URL (nats://HOST:PORT)`);
    }
    return v;
  },
  sha256: (v, s) => {
    if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new UsageError(s, `${shown(v) || '""'}: not a sha256 digest (64 hex digits)`);
    return v;
  },
  name: (v, s) => checkName(s, v),
  text: (v, s) => checkText(s, v),
};

export interface OptionSpec {
  /** parse the checked string into the value the action sees (default: the string) */
  parse?: (v: string, subject: string) => unknown;
  /** repeatable: values collected into an array */
  repeat?: boolean;
  default?: unknown;
  defaultDescription?: string;
  choices?: readonly string[];
}

/**
 * An option of a kind: `opt('--db <file>', 'store to read', 'database-in')`.
 * The value is checked when parsed (before the command runs).
 */
export function opt(flags: string, description: string, kind: OptionKind, spec: OptionSpec = {}): Option {
  const o = new Option(flags, description);
  (o as KindOf).vigilKind = kind;
  if (spec.choices) o.choices(spec.choices);
  const check = PARSERS[kind];
  const subject = name(o);
  const one = (v: string): unknown => {
    // commander hands an option the next word even when it is `--`: the value was left out
    // (`vigil watch --db -- CMD` would otherwise make a store named "--" and run CMD)
    if (v === '--') throw new UsageError(subject, 'no value given (the next word is --, which ends the options)');
    const checked = check ? check(v, subject) : v;
    return spec.parse ? spec.parse(v, subject) : checked;
  };
  if (!spec.choices) {
    o.argParser(spec.repeat || o.variadic ? (v: string, prev: unknown) => [...(Array.isArray(prev) && prev !== spec.default ? prev : []), one(v)] : (v: string) => one(v));
  }
  if (spec.default !== undefined) o.default(spec.default, spec.defaultDescription);
  return o;
}

/** A positional argument of a kind. */
export function arg(nameAndBrackets: string, description: string, kind: OptionKind, spec: Pick<OptionSpec, 'parse' | 'choices'> = {}): Argument {
  const a = new Argument(nameAndBrackets, description);
  (a as KindOf).vigilKind = kind;
  if (spec.choices) {
    a.choices(spec.choices);
    return a;
  }
  const check = PARSERS[kind];
  const subject = name(a);
  const one = (v: string): unknown => {
    const checked = check ? check(v, subject) : v;
    return spec.parse ? spec.parse(v, subject) : checked;
  };
  a.argParser(a.variadic ? (v: string, prev: unknown) => [...(Array.isArray(prev) ? prev : []), one(v)] : (v: string) => one(v));
  return a;
}

/** Commands that load BPF or need root: the unit-level sweep checks their options only as far as parsing. */
export function needsKernel(cmd: Command): Command {
  (cmd as Command & { vigilNeedsKernel?: boolean }).vigilNeedsKernel = true;
  return cmd;
}

export function isKernelCommand(cmd: Command): boolean {
  return (cmd as Command & { vigilNeedsKernel?: boolean }).vigilNeedsKernel === true;
}
