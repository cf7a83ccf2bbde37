/**
 * RuleStore: rules loaded from directories, watched with inotify (fs.watch), reloaded on
 * change after a short debounce. A file whose new version fails to load keeps its
 * previous good version (and the error is reported); a deleted file's rules go away.
 */
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import { parseRuleFile, type ParsedDoc } from './parser.js';
import { listRuleFiles, RuleSet, type RuleSetOptions } from './ruleset.js';
import type { RuleError } from './types.js';

interface FileState {
  /** last good documents of this file */
  docs: ParsedDoc[];
  /** warnings of the good version */
  warnings: RuleError[];
  /** errors of the latest attempt (empty when the latest version loaded) */
  errors: RuleError[];
  /** true when `docs` come from an older version because the latest one failed */
  stale: boolean;
}

export interface ReloadInfo {
  files: string[];
  rules: number;
  errors: RuleError[];
}

export interface RuleStoreOptions extends RuleSetOptions {
  dirs: string[];
  debounceMs?: number;
}

export class RuleStore extends EventEmitter {
  private readonly files = new Map<string, FileState>();
  private watchers: FSWatcher[] = [];
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private _current: RuleSet;
  readonly dirs: string[];

  constructor(private readonly opts: RuleStoreOptions) {
    super();
    this.dirs = opts.dirs.map((d) => resolve(d));
    for (const d of this.dirs) {
      let list: string[] = [];
      try {
        list = listRuleFiles(d);
      } catch (e) {
        this.files.set(d, { docs: [], warnings: [], errors: [{ path: d, line: 0, col: 0, severity: 'error', message: `cannot read: ${(e as Error).message}` }], stale: false });
        continue;
      }
      for (const f of list) this.loadFile(f, true);
    }
    this._current = this.build();
  }

  get current(): RuleSet {
    return this._current;
  }

  /** Errors of the latest load attempt of every file (a stale file keeps serving its old rules). */
  fileErrors(): RuleError[] {
    const out: RuleError[] = [];
    for (const s of this.files.values()) out.push(...s.errors);
    return out;
  }

  private loadFile(path: string, initial: boolean): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (!existsSync(path)) {
        this.files.delete(path);
        return;
      }
      const prev = this.files.get(path);
      const err: RuleError = { path, line: 0, col: 0, severity: 'error', message: `cannot read: ${(e as Error).message}` };
      this.files.set(path, { docs: prev?.docs ?? [], warnings: prev?.warnings ?? [], errors: [err], stale: !!prev });
      return;
    }
    const r = parseRuleFile(path, text, { placeholders: this.opts.placeholders ?? {} });
    const errors = r.errors.filter((e) => e.severity === 'error');
    const warnings = r.errors.filter((e) => e.severity === 'warning');
    const prev = this.files.get(path);
    if (errors.length && prev && !initial && prev.docs.length) {
      // keep the previous good version
      this.files.set(path, {
        docs: prev.docs,
        warnings: prev.warnings,
        errors: errors.map((e) => ({ ...e, message: `${e.message} (keeping the previous version of this file)` })),
        stale: true,
      });
      return;
    }
    this.files.set(path, { docs: r.docs, warnings, errors, stale: false });
  }

  private build(): RuleSet {
    const docs: ParsedDoc[] = [];
    const errs: RuleError[] = [];
    for (const s of this.files.values()) {
      docs.push(...s.docs);
      errs.push(...s.warnings, ...s.errors);
    }
    return new RuleSet(docs, errs, this.opts);
  }

  /** Start watching the directories (recursive inotify watches). */
  watch(): void {
    if (this.watchers.length) return;
    for (const d of this.dirs) {
      try {
        const w = watch(d, { recursive: true }, (_ev, name) => {
          if (!name) return this.schedule(null);
          const f = resolve(d, name.toString());
          if (!/\.ya?ml$/i.test(f)) {
            // a directory event (e.g. mkdir/rename): rescan
            return this.schedule(null);
          }
          this.schedule(f);
        });
        w.on('error', (e) => this.emit('error', e));
        this.watchers.push(w);
      } catch (e) {
        this.emit('error', e);
      }
    }
  }

  private rescanAll = false;
  private schedule(file: string | null): void {
    if (file) this.pending.add(file);
    else this.rescanAll = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.opts.debounceMs ?? 150);
    this.timer.unref?.();
  }

  /** Apply pending changes now (also used by tests). */
  flush(): ReloadInfo {
    this.timer = null;
    const files = new Set(this.pending);
    this.pending.clear();
    if (this.rescanAll) {
      this.rescanAll = false;
      const present = new Set<string>();
      for (const d of this.dirs) {
        try {
          for (const f of listRuleFiles(d)) present.add(f);
        } catch {
          /* dir vanished */
        }
      }
      for (const f of this.files.keys()) if (!present.has(f) && !this.dirs.includes(f)) files.add(f);
      for (const f of present) if (!this.files.has(f)) files.add(f);
    }
    for (const f of files) {
      if (!existsSync(f)) this.files.delete(f);
      else this.loadFile(f, false);
    }
    this._current = this.build();
    const errors = [...files].flatMap((f) => this.files.get(f)?.errors ?? []);
    const info: ReloadInfo = { files: [...files], rules: this._current.activeCount, errors };
    for (const e of errors) this.emit('rule-error', e);
    this.emit('reload', info);
    return info;
  }

  /** Reload everything from disk now. */
  reload(): ReloadInfo {
    this.rescanAll = true;
    for (const f of this.files.keys()) this.pending.add(f);
    return this.flush();
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
