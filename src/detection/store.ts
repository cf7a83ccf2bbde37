/**
 * RuleStore: the rules of a set of paths (directories or files), kept equal to what is on
 * disk while the agent runs.
 *
 * How it stays equal, whatever way a file changes (written in place, replaced by rename as
 * `sed -i`, `mv`, editors' atomic saves, vim's backup dance and `git checkout` do, moved in
 * or out, deleted, or the directory itself replaced or re-pointed by a symlink):
 *  - it watches directories, never files (a watch on a file follows its inode, which a
 *    rename-over replaces): every directory of the trees, the directory of each symlinked
 *    file's target, and the parent of each root (one non-recursive inotify watch each);
 *  - any event in any of them schedules a re-scan of the whole tree (debounced, and at
 *    least once a second during a stream of changes); a periodic check catches what
 *    inotify cannot report (an overflowed queue, a changed intermediate symlink): it stats
 *    the roots, the watched directories and the rule files (treeStamp: asynchronously, in
 *    libuv's threads) and re-scans only when one differs from what it was before the last
 *    scan. It used to re-scan every time: a fresh worker thread every 30 s (the worker is
 *    stopped when idle), ~250 ms of CPU each, most of an idle agent's CPU;
 *  - a scan reads every rule file and compares content hashes with what is loaded: only
 *    changed files are parsed; files gone from the tree are dropped;
 *  - after each scan the watches are reconciled by inode: a directory replaced by another
 *    (mv over, rm -rf and mkdir, a switched symlink) gets a fresh watch, and a scan
 *    follows any new watch so nothing written in between is missed.
 *
 * Reading and parsing run in a worker thread (rule-worker.ts, when its compiled form is
 * available; otherwise in this thread); compiling runs here in slices of a few ms between
 * events (RuleSet.build); the new set replaces the old one in a single assignment. The
 * old set serves every event until then.
 *
 * A file whose new version fails to load keeps its previous good version (the error is
 * reported with "keeping the previous version of this file"); a file that is gone loses
 * its rules at the next scan.
 */
import { EventEmitter } from 'node:events';
import { existsSync, statSync, watch, type FSWatcher } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RuleLimits } from './limits.js';
import type { ParsedDoc } from './parser.js';
import type { ScanRequest } from './rule-worker.js';
import { RuleSet, type RuleSetOptions } from './ruleset.js';
import { scanRules, type ScannedFile, type ScanResult, type WatchDir } from './scan.js';
import { Joiner, type Chunk } from './transfer.js';
import type { RuleError } from './types.js';

interface FileState {
  /** content hash of the version on disk */
  hash: string;
  /** documents in force (of the last good version) */
  docs: ParsedDoc[];
  /** warnings of the version in force */
  warnings: RuleError[];
  /** errors of the latest version (empty when it loaded) */
  errors: RuleError[];
  /** true when `docs` come from an older version because the latest one failed */
  stale: boolean;
}

export interface ReloadInfo {
  /** files added, changed or removed by this reload */
  files: string[];
  /** active rules after the reload */
  rules: number;
  /** errors of the files of this reload */
  errors: RuleError[];
  /** time from the start of the scan to the swap, ms */
  ms: number;
}

export interface RuleStoreOptions extends RuleSetOptions {
  dirs: string[];
  /** quiet time after a change before the re-scan, ms (default 150) */
  debounceMs?: number;
  /** longest delay of a re-scan during a stream of changes, ms (default 1000) */
  maxDelayMs?: number;
  /** periodic re-scan, ms (default 30,000; 0 = off) */
  rescanMs?: number;
  /** read and parse in a worker thread when available (default true) */
  worker?: boolean;
  /** the compiled worker script (default: rule-worker.js next to this module when it is compiled) */
  workerPath?: string;
  /** slice of compile work between two turns of the event loop, ms (default 8) */
  sliceMs?: number;
}

/**
 * What a periodic check compares (RuleStore.check): for each root, the path it resolves to
 * and its stat; for each watched directory and rule file of the last scan, its stat
 * (device, inode, size, modification and change times; a file's through its symlinks).
 * A file written in place changes its size or times, a file replaced by rename its inode,
 * a directory gaining or losing an entry its times, a re-pointed symlink on the way to a
 * root or a file the path or inode; ctime cannot be set back (touch -r, cp -p and tar
 * restore mtime only). A path that cannot be stat'ed stamps as gone.
 */
export async function treeStamp(roots: readonly string[], dirs: readonly WatchDir[], files: Iterable<string>): Promise<string> {
  const one = async (p: string, resolve: boolean): Promise<string> => {
    try {
      const st = await stat(p);
      return `${resolve ? `${await realpath(p)}>` : ''}${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch (e) {
      return `-${(e as NodeJS.ErrnoException).code ?? ''}`;
    }
  };
  // files may be an iterator (a Map's keys): read once
  const fileList = [...files];
  const parts = await Promise.all([...roots.map((r) => one(r, true)), ...dirs.map((d) => one(d.path, false)), ...fileList.map((f) => one(f, false))]);
  const names = [...roots, ...dirs.map((d) => d.path), ...fileList];
  return parts.map((x, i) => `${names[i]}\0${x}`).join('\n');
}

/**
 * The compiled worker next to this module (dist/detection/rule-worker.js). Running from the
 * TypeScript sources (tests) there is none unless a workerPath is given: scans then run
 * in this thread, never in a possibly stale dist/ copy.
 */
function workerPath(): string | null {
  const here = new URL(import.meta.url);
  if (!here.pathname.endsWith('.js')) return null;
  const p = fileURLToPath(new URL('./rule-worker.js', here));
  return existsSync(p) ? p : null;
}

/** A worker thread left idle this long is stopped (a scan starts a new one). */
const WORKER_IDLE_MS = 10_000;

/** Runs scans in a worker thread; one scan at a time, its results pulled message by message. */
class ScanWorker {
  private w: Worker | null = null;
  private seq = 0;
  private inflight: {
    id: number;
    joiner: Joiner;
    docs: Map<string, ParsedDoc[]>;
    resolve: (r: ScanResult) => void;
    reject: (e: Error) => void;
  } | null = null;

  constructor(private readonly path: string) {}

  private start(): Worker {
    const w = new Worker(this.path, { resourceLimits: { maxOldGenerationSizeMb: 2048 } });
    w.unref();
    w.on('message', (m: { id: number; t: string; path?: string; docs?: unknown; files?: unknown; watch?: WatchDir[]; errors?: RuleError[]; message?: string; items?: unknown[]; aid?: number }) => {
      const job = this.inflight;
      if (!job || job.id !== m.id) return;
      if (m.t === 'chunk') job.joiner.chunk(m as Chunk);
      else if (m.t === 'docs') {
        const docs = job.joiner.decode(m.docs) as ParsedDoc[];
        const a = job.docs.get(m.path!);
        if (a) for (const d of docs) a.push(d);
        else job.docs.set(m.path!, docs);
      } else if (m.t === 'done') {
        this.inflight = null;
        const files = job.joiner.decode(m.files) as ScannedFile[];
        for (const f of files) if (f.parsed) f.parsed.docs = job.docs.get(f.path) ?? [];
        job.resolve({ files, watch: m.watch!, errors: m.errors! });
        return;
      } else if (m.t === 'fail') {
        this.inflight = null;
        job.reject(new Error(m.message));
        return;
      }
      // the next message in a later turn of the event loop
      setImmediate(() => {
        if (this.inflight === job) w.postMessage({ t: 'more', id: job.id });
      });
    });
    const fail = (e: Error): void => {
      this.w = null;
      const job = this.inflight;
      this.inflight = null;
      job?.reject(e);
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`rule worker exited (code ${code})`)));
    return w;
  }

  private idle: NodeJS.Timeout | null = null;

  scan(req: Omit<ScanRequest, 'id'>): Promise<ScanResult> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    this.w ??= this.start();
    const id = ++this.seq;
    const p = new Promise<ScanResult>((resolve, reject) => {
      this.inflight = { id, joiner: new Joiner(), docs: new Map(), resolve, reject };
      this.w!.postMessage({ ...req, t: 'scan', id });
    });
    // the thread (and the memory its parses used) goes away when idle
    const later = (): void => {
      this.idle = setTimeout(() => this.stop(), WORKER_IDLE_MS);
      this.idle.unref();
    };
    p.then(later, later);
    return p;
  }

  private stop(): void {
    const w = this.w;
    this.w = null;
    if (w) {
      w.removeAllListeners('exit');
      void w.terminate();
    }
  }

  close(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    this.stop();
    this.inflight?.reject(new Error('closed'));
    this.inflight = null;
  }
}

export class RuleStore extends EventEmitter {
  private files = new Map<string, FileState>();
  private rootErrors: RuleError[] = [];
  private readonly watchers = new Map<string, { w: FSWatcher; dev: number; ino: number }>();
  private watching = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private firstEventAt = 0;
  private periodic: NodeJS.Timeout | null = null;
  private running: Promise<ReloadInfo> | null = null;
  private again = false;
  private readonly worker: ScanWorker | null;
  private _current: RuleSet;
  readonly dirs: string[];

  constructor(private readonly opts: RuleStoreOptions) {
    super();
    this.dirs = [...opts.dirs];
    const wp = opts.worker === false ? null : (opts.workerPath ?? workerPath());
    this.worker = wp ? new ScanWorker(wp) : null;
    // the first load runs here, synchronously: nothing is evaluated before it
    const r = scanRules(this.dirs, new Map(), this.scanOptions());
    this._scans++;
    this.apply(r);
    this.lastWatch = r.watch;
    this._current = new RuleSet(...this.assemble(), this.opts);
  }

  get current(): RuleSet {
    return this._current;
  }

  /** true when scans run in a worker thread */
  get threaded(): boolean {
    return this.worker !== null;
  }

  /** Errors of the latest load attempt of every file (a stale file keeps serving its old rules). */
  fileErrors(): RuleError[] {
    const out: RuleError[] = [...this.rootErrors];
    for (const s of this.files.values()) out.push(...s.errors);
    return out;
  }

  private scanOptions(): { placeholders: Record<string, string[]>; limits: Partial<RuleLimits> } {
    return { placeholders: this.opts.placeholders ?? {}, limits: this.opts.limits ?? {} };
  }

  /** Merge a scan into the file states; returns the files that changed. */
  private apply(r: ScanResult): string[] {
    const changed: string[] = [];
    const next = new Map<string, FileState>();
    for (const f of r.files) {
      const prev = this.files.get(f.path);
      if (!f.parsed) {
        // same content as loaded
        if (prev) next.set(f.path, prev);
        continue;
      }
      changed.push(f.path);
      const errors = f.parsed.errors.filter((e) => e.severity === 'error');
      const warnings = f.parsed.errors.filter((e) => e.severity === 'warning');
      if (errors.length && prev && prev.docs.length) {
        next.set(f.path, {
          hash: f.hash,
          docs: prev.docs,
          warnings: prev.warnings,
          errors: errors.map((e) => ({ ...e, message: `${e.message} (keeping the previous version of this file)` })),
          stale: true,
        });
      } else next.set(f.path, { hash: f.hash, docs: f.parsed.docs, warnings, errors, stale: false });
    }
    for (const p of this.files.keys()) if (!next.has(p)) changed.push(p);
    this.files = next;
    const rootKey = (e: RuleError[]): string => JSON.stringify(e.map((x) => [x.path, x.message]));
    if (rootKey(r.errors) !== rootKey(this.rootErrors)) changed.push(...r.errors.map((e) => e.path), ...this.rootErrors.map((e) => e.path));
    this.rootErrors = r.errors;
    return changed;
  }

  private assemble(): [ParsedDoc[], RuleError[]] {
    const docs: ParsedDoc[] = [];
    const errs: RuleError[] = [...this.rootErrors];
    for (const s of this.files.values()) {
      for (const d of s.docs) docs.push(d);
      errs.push(...s.warnings, ...s.errors);
    }
    return [docs, errs];
  }

  private lastWatch: WatchDir[] = [];
  /** treeStamp taken before the last scan; null: none yet (the next check scans) */
  private stamp: string | null = null;
  private checking = false;
  private _scans = 0;

  /** full scans run (reading every rule file) since the store was made, the first load included */
  get scans(): number {
    return this._scans;
  }

  /**
   * The periodic check: a re-scan when the tree's stamp differs from the one taken before
   * the last scan (a scan after a change leaves a stamp of the tree before it, so the next
   * check scans once more and settles).
   */
  private check(): void {
    if (this.checking || this.closed || this.running || this.timer) return;
    this.checking = true;
    void treeStamp(this.dirs, this.lastWatch, this.files.keys())
      .then((s) => {
        if (s !== this.stamp) this.schedule(0);
      })
      .catch(() => this.schedule(0))
      .finally(() => {
        this.checking = false;
      });
  }

  /** Start watching (directories, see the header). */
  watch(): void {
    if (this.watching || this.closed) return;
    this.watching = true;
    this.reconcile(this.lastWatch);
    const every = this.opts.rescanMs ?? 30_000;
    if (every > 0) {
      this.periodic = setInterval(() => this.check(), every);
      this.periodic.unref();
    }
    // anything that changed between the first load and the watches being in place
    this.schedule(0);
  }

  /** Watch exactly `dirs` (by inode); true when a watch was added. */
  private reconcile(dirs: WatchDir[]): boolean {
    const want = new Map(dirs.map((d) => [d.path, d]));
    let added = false;
    for (const [p, w] of this.watchers) {
      const d = want.get(p);
      if (!d || d.dev !== w.dev || d.ino !== w.ino) {
        w.w.close();
        this.watchers.delete(p);
      }
    }
    for (const d of want.values()) {
      if (this.watchers.has(d.path)) continue;
      try {
        const w = watch(d.path, { persistent: false }, () => this.schedule());
        w.on('error', () => {
          // the directory went away: drop the watch, re-scan
          w.close();
          if (this.watchers.get(d.path)?.w === w) this.watchers.delete(d.path);
          this.schedule();
        });
        this.watchers.set(d.path, { w, dev: d.dev, ino: d.ino });
        added = true;
        // replaced between the scan and the watch: look again
        const st = statSync(d.path);
        if (st.dev !== d.dev || st.ino !== d.ino) this.schedule();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') this.emit('error', e);
        this.schedule();
      }
    }
    return added;
  }

  /** Schedule a re-scan after the debounce (at most maxDelayMs after the first pending event). */
  private schedule(delay = this.opts.debounceMs ?? 150): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.timer) this.firstEventAt = now;
    else clearTimeout(this.timer);
    const latest = this.firstEventAt + (this.opts.maxDelayMs ?? 1000);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.reload().catch(() => undefined);
    }, Math.max(0, Math.min(delay, latest - now)));
    this.timer.unref();
  }

  /**
   * Re-scan now and swap in the new rule set when something changed. Concurrent calls
   * share the scan in flight and one more scan runs after it.
   */
  reload(): Promise<ReloadInfo> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const p = this.scanAndSwap().finally(() => {
      this.running = null;
      if (this.again && !this.closed) {
        this.again = false;
        this.schedule(0);
      }
    });
    this.running = p;
    return p;
  }

  private async scanAndSwap(): Promise<ReloadInfo> {
    const t0 = performance.now();
    let r: ScanResult;
    let stamp: string;
    try {
      // before the scan: a change made while it reads is then in the next check's stamp
      stamp = await treeStamp(this.dirs, this.lastWatch, this.files.keys());
      if (this.closed) return { files: [], rules: this._current.activeCount, errors: [], ms: 0 };
      this._scans++;
      r = this.worker
        ? await this.worker.scan({ roots: this.dirs, known: [...this.files].map(([p, s]) => [p, s.hash]), ...this.scanOptions() })
        : scanRules(this.dirs, new Map([...this.files].map(([p, s]) => [p, s.hash])), this.scanOptions());
    } catch (e) {
      if (this.closed) return { files: [], rules: this._current.activeCount, errors: [], ms: 0 };
      const err: RuleError = { path: this.dirs.join(','), line: 0, col: 0, severity: 'error', message: `rule scan failed, keeping the rules in force: ${(e as Error).message}` };
      this.emit('rule-error', err);
      this.emit('reload', { files: [], rules: this._current.activeCount, errors: [err], ms: performance.now() - t0 });
      throw e;
    }
    if (this.closed) return { files: [], rules: this._current.activeCount, errors: [], ms: 0 };
    const changed = this.apply(r);
    // only a scan that ran stands for the stamp: after a failed one the next check scans again
    this.stamp = stamp;
    this.lastWatch = r.watch;
    if (this.watching && this.reconcile(r.watch)) this.again = true;
    if (!changed.length) return { files: [], rules: this._current.activeCount, errors: [], ms: performance.now() - t0 };
    const [docs, errs] = this.assemble();
    const next = await RuleSet.build(docs, errs, this.opts, this.opts.sliceMs ?? 8);
    if (this.closed) return { files: [], rules: this._current.activeCount, errors: [], ms: 0 };
    this._current = next;
    const errors = changed.flatMap((f) => [...(this.files.get(f)?.errors ?? []), ...this.rootErrors.filter((e) => e.path === f)]);
    const info: ReloadInfo = { files: changed, rules: next.activeCount, errors, ms: performance.now() - t0 };
    for (const e of errors) this.emit('rule-error', e);
    this.emit('reload', info);
    return info;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.w.close();
    this.watchers.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.periodic) clearInterval(this.periodic);
    this.periodic = null;
    this.worker?.close();
  }
}
