/**
 * Marks kept in the SQLite store (the same file as events and deny rules), so
 * the agent can re-arm them in the kernel at start (kernels whose BPF cannot
 * read xattrs) and `vigil provenance show` can name a derived file's source
 * after the source is gone.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OriginRecord } from './format.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS provenance_marks (
  dev INTEGER NOT NULL,
  ino TEXT NOT NULL,
  path TEXT NOT NULL,
  depth INTEGER NOT NULL,
  record TEXT NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (dev, ino)
);
`;

export interface StoredMark {
  /** kernel s_dev */
  dev: number;
  ino: string;
  path: string;
  depth: number;
  record: OriginRecord;
  updatedMs: number;
}

interface Row {
  dev: number;
  ino: string;
  path: string;
  depth: number;
  record: string;
  updated_ms: number;
}

function toMark(r: Row): StoredMark {
  return { dev: r.dev, ino: r.ino, path: r.path, depth: r.depth, record: JSON.parse(r.record) as OriginRecord, updatedMs: r.updated_ms };
}

export class ProvenanceStore {
  private constructor(private readonly db: Database.Database) {}

  static open(file: string, opts: { readonly?: boolean } = {}): ProvenanceStore {
    if (!opts.readonly && file !== ':memory:' && !existsSync(file)) {
      // the store holds events and rules: 0600 in a 0700 directory
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      closeSync(openSync(file, 'a', 0o600));
    }
    const db = new Database(file, opts.readonly ? { readonly: true, fileMustExist: true } : {});
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
    }
    return new ProvenanceStore(db);
  }

  put(m: Omit<StoredMark, 'updatedMs'>): void {
    this.db
      .prepare('INSERT OR REPLACE INTO provenance_marks (dev, ino, path, depth, record, updated_ms) VALUES (?, ?, ?, ?, ?, ?)')
      .run(m.dev, m.ino, m.path, m.depth, JSON.stringify(m.record), Date.now());
  }

  get(dev: number, ino: string): StoredMark | null {
    try {
      const r = this.db.prepare('SELECT * FROM provenance_marks WHERE dev = ? AND ino = ?').get(dev, ino) as Row | undefined;
      return r ? toMark(r) : null;
    } catch (e) {
      if (/no such table/.test((e as Error).message)) return null;
      throw e;
    }
  }

  all(): StoredMark[] {
    try {
      return (this.db.prepare('SELECT * FROM provenance_marks').all() as Row[]).map(toMark);
    } catch (e) {
      if (/no such table/.test((e as Error).message)) return [];
      throw e;
    }
  }

  remove(dev: number, ino: string): boolean {
    return this.db.prepare('DELETE FROM provenance_marks WHERE dev = ? AND ino = ?').run(dev, ino).changes > 0;
  }

  close(): void {
    this.db.close();
  }
}
