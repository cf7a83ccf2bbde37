/**
 * Path prefix filters of the file sensor, compiled for the kernel's LPM trie
 * (longest prefix wins there). Each entry carries the verdict it inherits from
 * the longest shorter prefix that says something, so the longest match alone
 * decides:
 *   include: when any is set, writes/deletes/renames/chmod/truncate are reported
 *            only under one of them;
 *   exclude: nothing is reported under it (reads included), unless a longer
 *            include or read prefix says otherwise for its subtree;
 *   read:    read-only opens under it are reported (file_access).
 * Prefixes are byte prefixes: "/tmp" also matches "/tmpfoo"; write "/tmp/".
 */
import { FILE_PREFIX_MAX, FilePrefixFlags } from './layouts.js';

export interface PrefixConfig {
  include: string[];
  exclude: string[];
  read: string[];
}

export interface CompiledPrefix {
  prefix: Buffer;
  flags: number;
}

type Verdict = boolean | undefined;

export function compilePrefixes(cfg: PrefixConfig): { entries: CompiledPrefix[]; hasInclude: boolean; hasRead: boolean } {
  const own = new Map<string, { write: Verdict; read: Verdict }>();
  const get = (p: string) => {
    let v = own.get(p);
    if (!v) own.set(p, (v = { write: undefined, read: undefined }));
    return v;
  };
  for (const p of cfg.exclude) Object.assign(get(p), { write: false, read: false });
  for (const p of cfg.include) get(p).write = true;
  for (const p of cfg.read) get(p).read = true;
  const keys = [...own.keys()];
  for (const k of keys) {
    if (Buffer.byteLength(k) > FILE_PREFIX_MAX) throw new Error(`path prefix longer than ${FILE_PREFIX_MAX} bytes: ${JSON.stringify(k.slice(0, 40))}…`);
    if (!k.startsWith('/')) throw new Error(`path prefix must be absolute: ${JSON.stringify(k)}`);
  }
  const hasInclude = cfg.include.length > 0;
  // shortest first: each entry inherits from its longest explicit ancestor
  keys.sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b));
  const entries: CompiledPrefix[] = [];
  for (const k of keys) {
    let write: Verdict = own.get(k)!.write;
    let read: Verdict = own.get(k)!.read;
    for (const anc of keys) {
      if (anc === k || Buffer.byteLength(anc) >= Buffer.byteLength(k) || !k.startsWith(anc)) continue;
      // keys are sorted: a later ancestor is longer, so it overrides
      const a = own.get(anc)!;
      if (own.get(k)!.write === undefined && a.write !== undefined) write = a.write;
      if (own.get(k)!.read === undefined && a.read !== undefined) read = a.read;
    }
    let flags = 0;
    if (write === false) flags |= FilePrefixFlags.EXCLUDE;
    if (write === true) flags |= FilePrefixFlags.INCLUDE;
    if (read === true) flags |= FilePrefixFlags.READ;
    entries.push({ prefix: Buffer.from(k), flags });
  }
  return { entries, hasInclude, hasRead: cfg.read.length > 0 };
}

/** The same decision the kernel makes (for tests and `vigil doctor`). */
export function verdict(entries: CompiledPrefix[], hasInclude: boolean, path: string, read: boolean): boolean {
  const p = Buffer.from(path).subarray(0, FILE_PREFIX_MAX);
  let best: CompiledPrefix | undefined;
  for (const e of entries) if (p.subarray(0, e.prefix.length).equals(e.prefix) && (!best || e.prefix.length > best.prefix.length)) best = e;
  const f = best?.flags ?? 0;
  if (read) return (f & FilePrefixFlags.READ) !== 0;
  if (f & FilePrefixFlags.EXCLUDE) return false;
  return hasInclude ? (f & FilePrefixFlags.INCLUDE) !== 0 : true;
}
