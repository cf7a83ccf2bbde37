/**
 * Deny rules in SQLite: the durable record `vigil deny` edits and the agent
 * reconciles the kernel maps against. Lives in the same database file as the
 * event store (own tables, own schema version), WAL mode.
 */
import Database from 'better-sqlite3';
import { openRulesDatabase } from '../store/files.js';
import type { Mode } from './abi.js';

export type RuleKind = 'path' | 'sha256';

export interface DenyRule {
  id: number;
  kind: RuleKind;
  /** path rules: the absolute path as given, and as resolved (symlinks followed) */
  path: string | null;
  resolvedPath: string | null;
  /** sha256 rules: lower-case hex; a path given with --sha256 is kept as `path` (its inode is denied too) */
  sha256: string | null;
  mode: Mode;
  comment: string | null;
  createdMs: number;
}

export type NewRule = Omit<DenyRule, 'id' | 'createdMs'>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS guard_rules (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('path', 'sha256')),
  path TEXT,
  resolved_path TEXT,
  sha256 TEXT,
  mode TEXT NOT NULL CHECK (mode IN ('monitor', 'enforce')),
  comment TEXT,
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS guard_settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

interface Row {
  id: number;
  kind: RuleKind;
  path: string | null;
  resolved_path: string | null;
  sha256: string | null;
  mode: Mode;
  comment: string | null;
  created_ms: number;
}

export class RulesStore {
  private constructor(private readonly db: Database.Database) {}

  static open(file: string, opts: { readonly?: boolean } = {}): RulesStore {
    // the store of events and rules: 0600 (src/store/files.ts)
    return new RulesStore(openRulesDatabase(file, SCHEMA, opts));
  }

  add(r: NewRule): DenyRule {
    const now = Date.now();
    const info = this.db
      .prepare('INSERT INTO guard_rules (kind, path, resolved_path, sha256, mode, comment, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(r.kind, r.path, r.resolvedPath, r.sha256, r.mode, r.comment, now);
    return { ...r, id: Number(info.lastInsertRowid), createdMs: now };
  }

  /**
   * Add a rule unless one with the same target (the same path, or the same
   * digest and path) is stored: then that one is kept, its mode and comment
   * updated. A retried `vigil deny add` never stores a rule twice.
   */
  addOrKeep(r: NewRule): { rule: DenyRule; created: boolean; changed: boolean } {
    const same = this.list().find((x) => x.kind === r.kind && x.path === r.path && x.sha256 === r.sha256);
    if (!same) return { rule: this.add(r), created: true, changed: true };
    if (same.mode === r.mode && (r.comment === null || same.comment === r.comment)) return { rule: same, created: false, changed: false };
    const comment = r.comment ?? same.comment;
    this.db.prepare('UPDATE guard_rules SET mode = ?, comment = ? WHERE id = ?').run(r.mode, comment, same.id);
    return { rule: { ...same, mode: r.mode, comment }, created: false, changed: true };
  }

  get(id: number): DenyRule | undefined {
    const row = this.db.prepare('SELECT * FROM guard_rules WHERE id = ?').get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  list(): DenyRule[] {
    try {
      return (this.db.prepare('SELECT * FROM guard_rules ORDER BY id').all() as Row[]).map(fromRow);
    } catch (e) {
      if (/no such table/.test((e as Error).message)) return []; // read-only open of a fresh store
      throw e;
    }
  }

  remove(id: number): boolean {
    return this.db.prepare('DELETE FROM guard_rules WHERE id = ?').run(id).changes > 0;
  }

  setResolved(id: number, resolvedPath: string | null): void {
    this.db.prepare('UPDATE guard_rules SET resolved_path = ? WHERE id = ?').run(resolvedPath, id);
  }

  /** Global mode (default enforce: each rule's own mode applies). */
  globalMode(): Mode {
    try {
      const row = this.db.prepare("SELECT value FROM guard_settings WHERE key = 'mode'").get() as { value: string } | undefined;
      return row?.value === 'monitor' ? 'monitor' : 'enforce';
    } catch {
      return 'enforce';
    }
  }

  /**
   * Why the guard could not be armed here, the last time it was tried (by
   * `vigil deny add|apply` or `vigil run`); null once it was armed.
   */
  armFailure(): { reason: string; atMs: number; by: string } | null {
    try {
      const row = this.db.prepare("SELECT value FROM guard_settings WHERE key = 'arm_failure'").get() as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as { reason: string; atMs: number; by: string }) : null;
    } catch {
      return null;
    }
  }

  setArmFailure(f: { reason: string; by: string } | null): void {
    if (!f) this.db.prepare("DELETE FROM guard_settings WHERE key = 'arm_failure'").run();
    else {
      this.db
        .prepare("INSERT INTO guard_settings (key, value) VALUES ('arm_failure', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .run(JSON.stringify({ reason: f.reason, atMs: Date.now(), by: f.by }));
    }
  }

  /** A value of guard_settings (e.g. 'backend': what the running agent enforces with), null when absent. */
  setting(key: string): string | null {
    try {
      const row = this.db.prepare('SELECT value FROM guard_settings WHERE key = ?').get(key) as { value: string } | undefined;
      return row?.value ?? null;
    } catch {
      return null;
    }
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO guard_settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  setGlobalMode(mode: Mode): void {
    this.db.prepare("INSERT INTO guard_settings (key, value) VALUES ('mode', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(mode);
  }

  close(): void {
    this.db.close();
  }
}

function fromRow(r: Row): DenyRule {
  return {
    id: r.id,
    kind: r.kind,
    path: r.path,
    resolvedPath: r.resolved_path,
    sha256: r.sha256,
    mode: r.mode,
    comment: r.comment,
    createdMs: r.created_ms,
  };
}
