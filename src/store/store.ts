/**
 * The embedded event store: SQLite (better-sqlite3) in WAL mode so `vigil
 * events` can read while the agent writes. Events and alerts keep their full
 * JSON plus a few indexed columns; field queries use json_extract.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export const STORE_SCHEMA_VERSION = 1;

/** One row to insert: kind, epoch ms, category, pid, image, command line, rule id, level, JSON. */
export type StoreRow = [
  kind: 'event' | 'alert',
  ts: number,
  category: string,
  pid: number | null,
  image: string | null,
  commandLine: string | null,
  ruleId: string | null,
  level: string | null,
  json: string,
];

export interface FieldMatch {
  /** dotted path into the event, e.g. Image or vigil.comm */
  field: string;
  /** '=' exact, '~' glob with * and ?, case-insensitive */
  op: '=' | '~';
  value: string;
}

export interface StoreQuery {
  kind?: 'event' | 'alert';
  since?: number;
  until?: number;
  category?: string;
  fields?: FieldMatch[];
  ruleId?: string;
  limit?: number;
  /** newest first (default) or oldest first */
  order?: 'asc' | 'desc';
}

export interface StoredRecord {
  id: number;
  ts: number;
  json: string;
}

export class EventStore {
  readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(path: string, opts: { readonly?: boolean } = {}): EventStore {
    if (!opts.readonly) mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db);
    }
    db.pragma('busy_timeout = 5000');
    return new EventStore(db);
  }

  private insertStmt?: Database.Statement;

  insertBatch(rows: StoreRow[]): void {
    const stmt = (this.insertStmt ??= this.db.prepare(
      'INSERT INTO records (kind, ts, category, pid, image, command_line, rule_id, level, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ));
    const tx = this.db.transaction((rs: StoreRow[]) => {
      for (const r of rs) stmt.run(r);
    });
    tx(rows);
  }

  /** Keep at most `maxRows` records (oldest go first). Returns rows deleted. */
  prune(maxRows: number): number {
    const row = this.db.prepare('SELECT MAX(id) AS m FROM records').get() as { m: number | null };
    if (!row.m) return 0;
    return this.db.prepare('DELETE FROM records WHERE id <= ?').run(row.m - maxRows).changes;
  }

  query(q: StoreQuery): StoredRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    where.push('kind = ?');
    args.push(q.kind ?? 'event');
    if (q.since !== undefined) {
      where.push('ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('ts <= ?');
      args.push(q.until);
    }
    if (q.category) {
      where.push('category = ?');
      args.push(q.category);
    }
    if (q.ruleId) {
      where.push('rule_id = ?');
      args.push(q.ruleId);
    }
    for (const f of q.fields ?? []) {
      const path = jsonPath(f.field);
      if (f.op === '=') {
        where.push('json_extract(json, ?) = ?');
        args.push(path, coerce(f.value));
      } else {
        where.push('lower(CAST(json_extract(json, ?) AS TEXT)) GLOB ?');
        args.push(path, globToSqlite(f.value.toLowerCase()));
      }
    }
    const order = q.order === 'asc' ? 'ASC' : 'DESC';
    const sql = `SELECT id, ts, json FROM records WHERE ${where.join(' AND ')} ORDER BY id ${order} LIMIT ?`;
    args.push(q.limit ?? 100);
    return this.db.prepare(sql).all(...args) as StoredRecord[];
  }

  count(kind: 'event' | 'alert' = 'event'): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM records WHERE kind = ?').get(kind) as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}

function migrate(db: Database.Database): void {
  const v = db.pragma('user_version', { simple: true }) as number;
  if (v >= STORE_SCHEMA_VERSION) return;
  db.exec(`
    CREATE TABLE IF NOT EXISTS records (
      id INTEGER PRIMARY KEY,
      kind TEXT NOT NULL,
      ts INTEGER NOT NULL,
      category TEXT NOT NULL,
      pid INTEGER,
      image TEXT,
      command_line TEXT,
      rule_id TEXT,
      level TEXT,
      json TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS records_kind_ts ON records (kind, ts);
    CREATE INDEX IF NOT EXISTS records_category ON records (category, ts);
    CREATE INDEX IF NOT EXISTS records_rule ON records (rule_id) WHERE rule_id IS NOT NULL;
  `);
  db.pragma(`user_version = ${STORE_SCHEMA_VERSION}`);
}

/** Field name → SQLite JSON path; each dotted part quoted so odd names stay data. */
export function jsonPath(field: string): string {
  return '$' + field.split('.').map((p) => (/^\d+$/.test(p) ? `[${p}]` : `."${p.replace(/"/g, '\\"')}"`)).join('');
}

function coerce(v: string): string | number {
  return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
}

/** Our glob (* ?, backslash escapes) → SQLite GLOB (with [] escaping of specials). */
export function globToSqlite(g: string): string {
  let out = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '\\' && i + 1 < g.length) {
      const n = g[++i]!;
      out += n === '*' || n === '?' || n === '[' ? `[${n}]` : n;
    } else if (c === '[' || c === ']') out += `[${c}]`;
    else out += c;
  }
  return out;
}

/** Columns of a record for insertion. */
export function toRow(kind: 'event' | 'alert', value: Record<string, unknown>, json: string): StoreRow {
  const ev = (kind === 'alert' ? (value.event as Record<string, unknown> | undefined) : value) ?? {};
  const tsStr = (kind === 'alert' ? value.timestamp : ev.timestamp) as string | undefined;
  const ts = tsStr ? Date.parse(tsStr) : Date.now();
  const str = (x: unknown) => (typeof x === 'string' ? x : null);
  return [
    kind,
    Number.isFinite(ts) ? ts : Date.now(),
    String(ev.category ?? 'unknown'),
    typeof ev.ProcessId === 'number' ? ev.ProcessId : null,
    str(ev.Image),
    str(ev.CommandLine),
    kind === 'alert' ? str(value.rule_id) : null,
    kind === 'alert' ? str(value.level) : null,
    json,
  ];
}
