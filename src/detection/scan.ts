/**
 * Reading rule trees: walk the configured paths (following symlinked directories and
 * files, never looping), read each rule file within the limits, hash its content, and
 * parse the files whose content changed. Pure and synchronous: the rule store runs it in
 * a worker thread (rule-worker.ts) so reading and parsing never stall the event path,
 * and `vigil rules` runs it directly.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { limitMessages, ruleLimits, type RuleLimits } from './limits.js';
import { parseRuleFile, type ParsedDoc } from './parser.js';
import type { RuleError } from './types.js';

export const RULE_FILE = /\.ya?ml$/i;

/** A directory the store watches, identified by its inode (a replaced directory is a new one). */
export interface WatchDir {
  path: string;
  dev: number;
  ino: number;
}

export interface WalkResult {
  /** rule files in load order (paths as reached from the root; symlinks not resolved) */
  files: string[];
  /** directories whose changes can change the rule set */
  watch: WatchDir[];
  /** a root that is missing or unreadable */
  errors: RuleError[];
}

function watchDir(path: string, out: Map<string, WatchDir>): void {
  try {
    const real = realpathSync(path);
    if (out.has(real)) return;
    const st = statSync(real);
    if (st.isDirectory()) out.set(real, { path: real, dev: st.dev, ino: st.ino });
  } catch {
    /* gone: the next scan sees it */
  }
}

/**
 * List the rule files (*.yml, *.yaml; names starting with '.' skipped) under `roots`.
 * Watched: every directory walked, the directory holding the target of every symlinked
 * file, and the parent of each root (so a root that is replaced, removed, created or
 * re-pointed is noticed).
 */
export function walkRules(roots: string[]): WalkResult {
  const files: string[] = [];
  const watch = new Map<string, WatchDir>();
  const errors: RuleError[] = [];
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  const addFile = (f: string, symlinked: boolean): void => {
    if (seenFiles.has(f)) return;
    seenFiles.add(f);
    files.push(f);
    if (symlinked) {
      try {
        watchDir(dirname(realpathSync(f)), watch);
      } catch {
        /* dangling */
      }
    }
  };
  const walk = (d: string, st: Stats): void => {
    const key = `${st.dev}:${st.ino}`;
    if (seenDirs.has(key)) return; // a symlink loop, or the same tree twice
    seenDirs.add(key);
    watchDir(d, watch);
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      errors.push({ path: d, line: 0, col: 0, severity: 'error', message: `cannot read: ${(e as Error).message}` });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const f = join(d, e.name);
      if (e.isSymbolicLink()) {
        let t: Stats;
        try {
          t = statSync(f);
        } catch {
          // a dangling link: its target's directory may get the file back
          try {
            watchDir(dirname(resolve(d, readlinkSync(f))), watch);
          } catch {
            /* ignore */
          }
          continue;
        }
        if (t.isDirectory()) walk(f, t);
        else if (t.isFile() && RULE_FILE.test(e.name)) addFile(f, true);
      } else if (e.isDirectory()) {
        let t: Stats;
        try {
          t = statSync(f);
        } catch {
          continue;
        }
        walk(f, t);
      } else if (e.isFile() && RULE_FILE.test(e.name)) addFile(f, false);
    }
  };
  for (const r of roots) {
    const root = resolve(r);
    watchDir(dirname(root), watch);
    let st: Stats;
    try {
      st = statSync(root);
    } catch (e) {
      errors.push({ path: r, line: 0, col: 0, severity: 'error', message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    if (st.isDirectory()) walk(r, st);
    else {
      // a file named explicitly is a rule file whatever its name
      addFile(r, false);
      try {
        watchDir(dirname(realpathSync(root)), watch);
      } catch {
        /* ignore */
      }
    }
  }
  return { files, watch: [...watch.values()], errors };
}

export interface ScanOptions {
  placeholders?: Record<string, string[]>;
  limits?: Partial<RuleLimits>;
}

/** One rule file as found by a scan. */
export interface ScannedFile {
  path: string;
  /** content hash (or a marker for a file that was not read) */
  hash: string;
  /** present when the file was parsed (new or changed content): its documents and problems */
  parsed?: { docs: ParsedDoc[]; errors: RuleError[] };
}

export interface ScanResult {
  files: ScannedFile[];
  watch: WatchDir[];
  /** problems of the roots themselves (missing, unreadable) */
  errors: RuleError[];
}

export function hashText(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Walk `roots`, read every rule file within the limits and parse those whose content
 * hash is not `known[path]`. Never throws.
 */
export function scanRules(roots: string[], known: ReadonlyMap<string, string>, opts: ScanOptions = {}): ScanResult {
  const limits = ruleLimits(opts.limits);
  const walked = walkRules(roots);
  const files: ScannedFile[] = [];
  let total = 0;
  for (const path of walked.files) {
    const fail = (hash: string, message: string): void => {
      files.push({ path, hash, parsed: { docs: [], errors: [{ path, line: 0, col: 0, severity: 'error', message }] } });
    };
    let st: Stats;
    try {
      st = statSync(path);
    } catch {
      continue; // gone since the walk
    }
    if (st.size > limits.maxFileBytes) {
      fail(`size:${st.size}:${st.mtimeMs}:${st.ino}`, limitMessages.file(st.size, limits));
      continue;
    }
    let buf: Buffer;
    try {
      buf = readFileSync(path);
    } catch (e) {
      fail(`unreadable:${(e as NodeJS.ErrnoException).code ?? ''}`, `cannot read: ${(e as Error).message}`);
      continue;
    }
    if (buf.length > limits.maxFileBytes) {
      fail(`size:${buf.length}:${st.mtimeMs}:${st.ino}`, limitMessages.file(buf.length, limits));
      continue;
    }
    if (total + buf.length > limits.maxTotalBytes) {
      fail(`total:${hashText(buf)}`, limitMessages.total(buf.length, limits));
      continue;
    }
    total += buf.length;
    const hash = hashText(buf);
    if (known.get(path) === hash) {
      files.push({ path, hash });
      continue;
    }
    const r = parseRuleFile(path, buf.toString('utf8'), { placeholders: opts.placeholders ?? {}, limits });
    files.push({ path, hash, parsed: r });
  }
  return { files, watch: walked.watch, errors: walked.errors };
}
