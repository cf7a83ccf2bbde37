/**
 * The embedded event store: SQLite (better-sqlite3) in WAL mode so `vigil
 * events` can read while the agent writes.
 *
 * Each process is stored once (table `processes`: one row per program a process
 * ran: its fork and each exec are rows of their own, linked to the parent's row)
 * and events refer to it: an event row keeps the event's own fields as JSON and a
 * bit mask of the process fields it carried that were left out because the
 * process row (or its parent's) holds them. `rebuildEvent` puts them back, with
 * the whole lineage in Ancestors. Rows written without a process (alerts, older
 * stores) keep their full JSON.
 */
import Database from 'better-sqlite3';
import { ensurePrivateFile } from './files.js';
import { jsonString } from './json.js';

export const STORE_SCHEMA_VERSION = 5;

/** One event or alert row: kind, epoch ms, category, process row id, process-field mask, rule id, level, JSON. */
export type StoreRow = [
  kind: 'event' | 'alert',
  ts: number,
  category: string,
  proc: number | null,
  pmask: number,
  ruleId: string | null,
  level: string | null,
  json: string,
];

/** One process row: id, ProcessGuid, pid, ppid, parent row id, image, command line, cwd, uid, detail JSON. */
export type ProcessRow = [
  id: number,
  guid: string,
  pid: number,
  ppid: number,
  parent: number | null,
  image: string,
  commandLine: string,
  cwd: string,
  uid: number,
  detail: string | null,
];

// A batch crosses to the worker as one string: one copy, instead of an object per
// field through the structured clone. Fields end with US (\x1f), rows with RS
// (\x1e), the process rows come first and end with GS (\x1d); NUL is SQL NULL.
// JSON escapes control characters, so only the other text fields are checked.
const US = '\x1f';
const RS = '\x1e';
const GS = '\x1d';
const NUL = '\x00';
const CONTROL = /[\x00\x1d-\x1f]/;

const field = (v: string | number | null): string => (v === null ? NUL : typeof v === 'number' ? String(v) : v);

/** The batch as one string, or null when a text field holds a separator (then send the arrays). */
export function packBatch(rows: readonly StoreRow[], procs: readonly ProcessRow[]): string | null {
  let out = '';
  for (const p of procs) {
    if (CONTROL.test(p[1]) || CONTROL.test(p[5]) || CONTROL.test(p[6]) || CONTROL.test(p[7])) return null;
    out += p[0] + US + p[1] + US + p[2] + US + p[3] + US + field(p[4]) + US + p[5] + US + p[6] + US + p[7] + US + p[8] + US + field(p[9]) + RS;
  }
  out += GS;
  for (const r of rows) {
    if (CONTROL.test(r[2]) || (r[5] !== null && CONTROL.test(r[5])) || (r[6] !== null && CONTROL.test(r[6]))) return null;
    out += r[0] + US + r[1] + US + r[2] + US + field(r[3]) + US + r[4] + US + field(r[5]) + US + field(r[6]) + US + r[7] + RS;
  }
  return out;
}

const text = (v: string): string | null => (v === NUL ? null : v);
const num = (v: string): number | null => (v === NUL ? null : Number(v));

/** The rows of a packed batch. */
export function unpackBatch(packed: string): { rows: StoreRow[]; procs: ProcessRow[] } {
  const gs = packed.indexOf(GS);
  const procs: ProcessRow[] = [];
  const rows: StoreRow[] = [];
  for (const line of packed.slice(0, gs).split(RS)) {
    if (!line) continue;
    const f = line.split(US);
    procs.push([Number(f[0]), f[1]!, Number(f[2]), Number(f[3]), num(f[4]!), f[5]!, f[6]!, f[7]!, Number(f[8]), text(f[9]!)]);
  }
  for (const line of packed.slice(gs + 1).split(RS)) {
    if (!line) continue;
    const f = line.split(US);
    rows.push([f[0] as 'event' | 'alert', Number(f[1]), f[2]!, num(f[3]!), Number(f[4]), text(f[5]!), text(f[6]!), f[7]!]);
  }
  return { rows, procs };
}

/** A process as the pipeline knows it (a process table entry). */
export interface ProcessRef {
  /** unique per entry in this agent run */
  readonly key: number;
  /** key of the parent's entry when this one was made (0: unknown) */
  readonly parentKey: number;
  readonly guid?: string | undefined;
  readonly pid: number;
  readonly ppid: number;
  readonly image: string;
  readonly commandLine: string;
  readonly cwd: string;
  readonly uid: number;
}

/**
 * Process fields an event row may leave out, with the bit that says so. Each is
 * left out only when its value is exactly what the process row (or its parent's
 * row) holds, so putting it back gives the same value.
 */
export const PMASK = {
  ProcessGuid: 1,
  ProcessId: 2,
  Image: 4,
  CommandLine: 8,
  CurrentDirectory: 16,
  ParentProcessId: 32,
  ParentProcessGuid: 64,
  ParentImage: 128,
  ParentCommandLine: 256,
  /** rebuilt from the chain of process rows */
  Ancestors: 512,
  /** vigil.argv, argc, exe_dev, exe_ino: in the process row's detail */
  Detail: 1024,
} as const;

/** vigil.* fields of a process_creation that describe the program: kept in the process row's detail. */
export const DETAIL_FIELDS = ['argv', 'argc', 'exe_dev', 'exe_ino'] as const;

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
  /** false: do not use the text index (records_text) for field matches; tests compare both plans */
  textIndex?: boolean;
}

export interface StoredRecord {
  id: number;
  ts: number;
  /** the record as it was emitted (events: rebuilt with their process fields and whole lineage) */
  json: string;
}

/** A process row as read back. */
interface ProcRow {
  id: number;
  guid: string;
  pid: number;
  ppid: number;
  parent: number | null;
  image: string;
  command_line: string;
  cwd: string;
  detail: string | null;
}

export class EventStore {
  readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /**
   * Open the store. A writer creates it 0600 in directories made 0700 (SQLite
   * gives its -wal and -shm files the database's mode), and proves it can write:
   * a store SQLite could only open read-only (a read-only mount, an immutable
   * file) throws SQLITE_READONLY here instead of failing every insert later.
   */
  static open(path: string, opts: { readonly?: boolean; textIndex?: boolean } = {}): EventStore {
    if (!opts.readonly && path !== ':memory:') ensurePrivateFile(path);
    const db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    try {
      db.pragma('busy_timeout = 5000');
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        migrate(db);
        // store.text_index: the index is made (the stored events indexed) or dropped to match
        setTextIndex(db, opts.textIndex ?? true);
        // the first schema-4 stores (a few commits) indexed by a trigger: insertBatch does it now
        db.exec('DROP TRIGGER IF EXISTS records_text_insert');
        // a write that changes nothing: SQLite opens a file it cannot write read-only without a word
        db.pragma(`user_version = ${db.pragma('user_version', { simple: true }) as number}`);
      }
    } catch (e) {
      db.close();
      throw e;
    }
    return new EventStore(db);
  }

  private insertStmt?: Database.Statement;
  private insertProcStmt?: Database.Statement;
  private tx?: (procs: ProcessRow[], rows: StoreRow[]) => void;

  /** Insert process rows, then records (and each event row's text into records_text), in one transaction. */
  insertBatch(rows: StoreRow[], procs: ProcessRow[] = []): void {
    const stmt = (this.insertStmt ??= this.db.prepare('INSERT INTO records (kind, ts, category, proc, pmask, rule_id, level, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'));
    const pstmt = (this.insertProcStmt ??= this.db.prepare(
      'INSERT INTO processes (id, guid, pid, ppid, parent, image, command_line, cwd, uid, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ));
    const text = this.hasTextIndex() ? (this.textChunks ??= new TextChunks(this.db)) : null;
    const tstmt = text ? (this.insertTextStmt ??= this.db.prepare('INSERT INTO records (kind, ts, category, proc, pmask, rule_id, level, json, tkey) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')) : null;
    this.tx ??= this.db.transaction((ps: ProcessRow[], rs: StoreRow[]) => {
      for (const p of ps) {
        pstmt.run(p);
        if (text) this.textProcs.set(p[0], { id: p[0], guid: p[1], pid: p[2], ppid: p[3], parent: p[4], image: p[5], command_line: p[6], cwd: p[7], detail: p[9] });
      }
      for (const r of rs) {
        if (text && tstmt && r[0] === 'event') {
          const p = this.proc(r[3], this.textProcs);
          const row = text.row(r[7], p, p ? this.proc(p.parent, this.textProcs) : null, r[4], r[2]);
          text.add(Number(tstmt.run(r, row.key).lastInsertRowid), row);
          // a process's last event: its row leaves the cache (read back from the table if met again)
          if (r[2] === 'process_termination' && r[3] !== null) this.textProcs.delete(r[3]);
        } else {
          stmt.run(r);
        }
      }
      // a chunk ends with its transaction: the index holds every committed event
      text?.flush();
      // the writer's cache of process rows for the text: bounded
      if (this.textProcs.size > 100_000) this.textProcs.clear();
    });
    this.tx(procs, rows);
  }

  private textChunks?: TextChunks;
  private insertTextStmt?: Database.Statement;
  /** process rows by id, for the text of the event rows that refer to them */
  private readonly textProcs = new Map<number, ProcRow | null>();

  /** Next free process row id (the writer hands out ids itself). */
  nextProcessId(): number {
    return ((this.db.prepare('SELECT MAX(id) AS m FROM processes').get() as { m: number | null }).m ?? 0) + 1;
  }

  /**
   * Keep at most `maxRows` records (oldest go first), then, with `processes`,
   * the process rows no kept record refers to, directly or as an ancestor.
   * Returns records deleted.
   */
  prune(maxRows: number, processes = true): number {
    const row = this.db.prepare('SELECT MAX(id) AS m FROM records').get() as { m: number | null };
    if (!row.m) return 0;
    const n = this.db.prepare('DELETE FROM records WHERE id <= ?').run(row.m - maxRows).changes;
    if (n && processes) this.pruneProcesses();
    return n;
  }

  /** Delete process rows that no record refers to, directly or as an ancestor. Returns rows deleted. */
  pruneProcesses(): number {
    return this.db
      .prepare(
        `WITH RECURSIVE keep(id) AS (
           SELECT proc FROM records WHERE proc IS NOT NULL
           UNION
           SELECT p.parent FROM processes p JOIN keep k ON p.id = k.id WHERE p.parent IS NOT NULL
         )
         DELETE FROM processes WHERE id NOT IN (SELECT id FROM keep)`,
      )
      .run().changes;
  }

  countProcesses(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM processes').get() as { n: number }).n;
  }

  /**
   * Records matching the query, events rebuilt with their process fields and
   * their whole lineage (at most `maxDepth` ancestors).
   */
  query(q: StoreQuery, maxDepth = 16): StoredRecord[] {
    const { sql, args, probe, chunked } = this.plan(q, maxDepth);
    type Row = { id: number; ts: number; json: string; proc: number | null; pmask: number };
    let rows: Row[] | null = null;
    if (probe) {
      // a walk of the index that starts far from its end (an old range newest first, a recent
      // one oldest first) costs the seek: the range's first PROBE_ROWS rows in time order are
      // tried first, and are the answer when they hold `limit` matches
      const got = this.db.prepare(probe.sql).all(...probe.args) as Row[];
      if (got.length >= (q.limit ?? 100)) rows = got;
    }
    if (!rows) {
      rows = this.db.prepare(sql).all(...args) as Row[];
      if (chunked) rows = rows.sort((a, b) => (chunked.desc ? b.id - a.id : a.id - b.id)).slice(0, chunked.limit);
    }
    const procs = new Map<number, ProcRow | null>();
    return rows.map((r) => ({ id: r.id, ts: r.ts, json: r.proc === null || !r.pmask ? r.json : JSON.stringify(this.rebuild(r, procs, maxDepth)) }));
  }

  /** SQLite's plan for a query (EXPLAIN QUERY PLAN details, outer loop first): tests check the indexes used. */
  explain(q: StoreQuery): string[] {
    const { sql, args } = this.plan(q, 16);
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail);
  }

  private textTable?: boolean;

  /**
   * Whether the store has the text index in its chunked form (schema 5; a read-only open of
   * an older store has not: schema 4's index of a document per row is not used, and is
   * made again in chunks when a writer opens the store).
   */
  hasTextIndex(): boolean {
    return (this.textTable ??= hasChunkedIndex(this.db));
  }

  /** The SQL and arguments of a query. */
  private plan(
    q: StoreQuery,
    maxDepth: number,
  ): { sql: string; args: unknown[]; probe?: { sql: string; args: unknown[] }; chunked?: { desc: boolean; limit: number } } {
    const where: string[] = [];
    const args: unknown[] = [];
    // a literal, not a parameter: the partial index of alerts needs to see it
    where.push(q.kind === 'alert' ? "r.kind = 'alert'" : "r.kind = 'event'");
    if (q.since !== undefined) {
      where.push('r.ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('r.ts <= ?');
      args.push(q.until);
    }
    if (q.category) {
      where.push('r.category = ?');
      args.push(q.category);
    }
    if (q.ruleId) {
      where.push('r.rule_id = ?');
      args.push(q.ruleId);
    }
    const base = where.length;
    const baseArgs = args.length;
    let ancestors = false;
    const grams = new Set<string>();
    for (const f of q.fields ?? []) {
      const { sql: expr, args: eargs, ancestors: a } = fieldExpr(f.field);
      ancestors ||= a;
      if (f.op === '=') {
        where.push(`${expr} = ?`);
        args.push(...eargs, coerce(f.value));
      } else {
        where.push(`lower(CAST(${expr} AS TEXT)) GLOB ?`);
        args.push(...eargs, globToSqlite(f.value.toLowerCase()));
      }
      for (const g of matchTrigrams(f) ?? []) grams.add(g);
    }
    // the likeliest to be rare first: at a value's edge (US), then of more distinct
    // characters, then the later ones (a value's tail tells more: paths, ids)
    const score = (g: string) => (g.includes(US_CHAR) ? 10 : 0) + new Set(g).size;
    const all = [...grams].reverse();
    const picked = all.map((g, i) => [g, score(g), i] as const).sort((x, y) => y[1] - x[1] || x[2] - y[2]).slice(0, MAX_TRIGRAMS).map((x) => x[0]);
    grams.clear();
    for (const g of picked) grams.add(g);
    if (ancestors) this.registerAncestorFunction(maxDepth);
    const order = q.order === 'asc' ? 'ASC' : 'DESC';
    const limit = q.limit ?? 100;
    const from = `records r LEFT JOIN processes p ON p.id = r.proc LEFT JOIN processes pp ON pp.id = p.parent`;
    const cols = 'r.id, r.ts, r.json, r.proc, r.pmask';
    // a field match with a literal of three characters or more: the text index gives the
    // candidate rows newest (or oldest) first, each checked by the exact condition above;
    // not when a time range holds few rows (records_ts reads them all faster)
    if (grams.size && q.kind !== 'alert' && q.textIndex !== false && this.hasTextIndex() && !this.fewInRange(q)) {
      const match = [...grams].map((g) => `"${g.replace(/"/g, '""')}"`).join(' AND ');
      // a time bound also bounds the row ids the index walks: the candidates newer (or older)
      // than the range are skipped, not read and refused one by one. A document is a chunk of
      // rows named by its last row id (TextChunks): one that ends up to CHUNK_IDS - 1 ids after
      // the range may still hold rows of it
      const [lo, hi] = this.idRange(q);
      const seek = order === 'DESC' ? q.until !== undefined : q.since !== undefined;
      const ts = `r.ts ${order}, r.id ${order}`;
      return {
        // NOT INDEXED: a chunk's rows by their ids (records_category would read the category's rows in the range for every chunk)
        sql: `SELECT ${cols} FROM records_text f CROSS JOIN records_text_chunks c CROSS JOIN ${from.replace('records r', 'records r NOT INDEXED')}
          WHERE records_text MATCH ? AND f.rowid BETWEEN ? AND ? AND c.last = f.rowid AND r.id BETWEEN c.first AND c.last AND r.tkey = c.tkey
          AND ${where.join(' AND ')} ORDER BY f.rowid ${order} LIMIT ?`,
        // chunks come in order, a chunk's rows in id order whichever the query's (SQLite would
        // sort every candidate to order them within a chunk): the rows up to the chunk that
        // holds the limit-th are enough, ordered and cut by query()
        args: [match, lo, Math.min(Number.MAX_SAFE_INTEGER, hi + CHUNK_IDS - 1), ...args, limit + CHUNK_IDS - 1],
        chunked: { desc: order === 'DESC', limit },
        ...(seek
          ? {
              probe: {
                sql: `SELECT ${cols} FROM (SELECT * FROM records r WHERE ${where.slice(0, base).join(' AND ')} ORDER BY ${ts} LIMIT ${PROBE_ROWS}) r
                  LEFT JOIN processes p ON p.id = r.proc LEFT JOIN processes pp ON pp.id = p.parent WHERE ${where.slice(base).join(' AND ')} ORDER BY ${ts} LIMIT ?`,
                args: [...args.slice(0, baseArgs), ...args.slice(baseArgs), limit],
              },
            }
          : {}),
      };
    }
    // with a category, a time bound or for alerts, an index on ts gives the rows in time order:
    // newest first without reading and sorting every candidate (the rowid breaks ties, in
    // insertion order); without them the rowid is the order (a scan from the newest row)
    const orderBy = q.category || q.kind === 'alert' || q.since !== undefined || q.until !== undefined ? `r.ts ${order}, r.id ${order}` : `r.id ${order}`;
    return { sql: `SELECT ${cols} FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${orderBy} LIMIT ?`, args: [...args, limit] };
  }

  /**
   * The row ids a time range's records lie between: the least id at or after `since`
   * and the greatest at or before `until`, from records_ts (ids follow insertion, not
   * time, so these are read, not assumed).
   */
  private idRange(q: StoreQuery): [number, number] {
    let lo = 0;
    let hi = Number.MAX_SAFE_INTEGER;
    // each bound reads the range's side of records_ts up to ID_SCAN entries; a side longer
    // than that gives no bound (the walk then reads more candidates, the rows are the same)
    const bound = (sql: string, t: number): { v: number | null; n: number } =>
      this.db.prepare(`SELECT ${sql} AS v, COUNT(*) AS n FROM (SELECT id FROM records INDEXED BY records_ts WHERE ts ${sql.startsWith('min') ? '>=' : '<='} ? LIMIT ?)`).get(t, ID_SCAN + 1) as { v: number | null; n: number };
    if (q.since !== undefined) {
      const b = bound('min(id)', q.since);
      if (b.n <= ID_SCAN) lo = b.v ?? hi;
    }
    if (q.until !== undefined) {
      const b = bound('max(id)', q.until);
      if (b.n <= ID_SCAN) hi = b.v ?? 0;
    }
    return [lo, hi];
  }

  /** A time range (both bounds) holding fewer than FEW_ROWS records: cheaper read through records_ts than the text index. */
  private fewInRange(q: StoreQuery): boolean {
    if (q.since === undefined || q.until === undefined) return false;
    const n = (this.db.prepare('SELECT COUNT(*) AS n FROM (SELECT 1 FROM records WHERE ts BETWEEN ? AND ? LIMIT ?)').get(q.since, q.until, FEW_ROWS) as { n: number }).n;
    return n < FEW_ROWS;
  }

  private procStmt?: Database.Statement;

  /** A process row by id (cached per query). */
  private proc(id: number | null, cache: Map<number, ProcRow | null>): ProcRow | null {
    if (id === null) return null;
    let p = cache.get(id);
    if (p === undefined) {
      this.procStmt ??= this.db.prepare('SELECT id, guid, pid, ppid, parent, image, command_line, cwd, detail FROM processes WHERE id = ?');
      p = (this.procStmt.get(id) as ProcRow | undefined) ?? null;
      cache.set(id, p);
    }
    return p;
  }

  private rebuild(r: { json: string; proc: number | null; pmask: number }, cache: Map<number, ProcRow | null>, maxDepth: number): Record<string, unknown> {
    const p = this.proc(r.proc, cache);
    const stored = JSON.parse(r.json) as Record<string, unknown>;
    if (!p) return stored;
    const parent = this.proc(p.parent, cache);
    return rebuildEvent(stored, r.pmask, p, parent, (id) => this.proc(id, cache), maxDepth);
  }

  private ancestorFn = false;

  /**
   * SQL functions for fields a process row holds in another shape:
   * vigil_ancestor(proc, n, field) (-f Ancestors.N.Field) and
   * vigil_detail(detail, command_line, path) (-f vigil.argv.N and the like).
   */
  private registerAncestorFunction(maxDepth: number): void {
    if (this.ancestorFn) return;
    this.ancestorFn = true;
    // the connection is busy with the query while a function runs: look rows up through a second one
    const side = new Database(this.db.name, { readonly: true, fileMustExist: true });
    const get = side.prepare('SELECT id, guid, pid, ppid, parent, image, command_line, cwd, detail FROM processes WHERE id = ?');
    this.side = side;
    this.db.function('vigil_detail', { deterministic: true }, (detail: unknown, cmd: unknown, path: unknown) => {
      let v: unknown = expandDetail(typeof detail === 'string' ? detail : null, String(cmd ?? ''));
      for (const k of String(path).split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
      if (v === undefined || v === null) return null;
      return typeof v === 'object' ? JSON.stringify(v) : (v as string | number);
    });
    const cache = new Map<number, ProcRow | null>();
    const proc = (id: number | null): ProcRow | null => {
      if (id === null) return null;
      let p = cache.get(id);
      if (p === undefined) cache.set(id, (p = (get.get(id) as ProcRow | undefined) ?? null));
      return p;
    };
    this.db.function('vigil_ancestor', { deterministic: true }, (id: unknown, n: unknown, field: unknown) => {
      const p = proc(typeof id === 'number' ? id : null);
      if (!p) return null;
      const list = lineage(p, proc, maxDepth).list;
      const a = list[Number(n)] as Record<string, unknown> | undefined;
      const v = a?.[String(field)];
      return v === undefined ? null : (v as string | number);
    });
  }

  count(kind: 'event' | 'alert' = 'event'): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM records WHERE kind = ?').get(kind) as { n: number }).n;
  }

  private side: Database.Database | null = null;

  close(): void {
    this.side?.close();
    this.db.close();
  }
}

/** A row's JSON as an object (null: not JSON, or not an object: nothing of it is indexed, and no field of it matches). */
function parseRow(json: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * The values of an event row (its JSON parsed: parseRow) the text index (records_text) holds, each given to `emit`
 * (a chunk's text has each distinct value once, between US (\x1f) characters: TextChunks):
 * every scalar value of its JSON but `timestamp` and `Ancestors`, and the values it gets
 * back from its process row, the row's detail and its parent's row (those its pmask names:
 * CommandLine also for vigil.argv, which may be rebuilt from it).
 * Member names of objects nested in a member's value are there too (such a value matches
 * as its JSON text), except the names of `vigil`'s own members (a match on `vigil` as a
 * whole is not indexed: matchTrigrams): they were ~16 % of the text and every row has them.
 * Booleans are 1 and 0, as json_extract gives them; numbers as JavaScript writes them
 * (vigil's events hold integers). A field match's literal text is in this text for every
 * row it matches (matchTrigrams): the index only narrows, the exact condition decides.
 * The values of CUT's fields are there in part only (cutValue).
 */
function valuesOf(o: Record<string, unknown> | null, p: ProcRow | null, parent: ProcRow | null, pmask: number, emit: (v: string) => void): void {
  if (o) {
    for (const k in o) {
      if (k === 'timestamp' || k === 'Ancestors') continue;
      const x = o[k];
      if (k === 'vigil' && x !== null && typeof x === 'object' && !Array.isArray(x)) {
        // its members' values (and what is nested deeper, names too), not its own names
        const w = x as Record<string, unknown>;
        for (const k2 in w) cutOrValues(w[k2], VIGIL_CUT.get(k2), emit);
      } else {
        cutOrValues(x, TOP_CUT.get(k), emit);
      }
    }
  }
  // of the process rows, only the values the row's event gets back from them (pmask): a file
  // event has no ParentImage, a process_termination no CommandLine (~40 % of the text was these)
  if (p) {
    if (pmask & PMASK.ProcessGuid) emit(cutValue(p.guid, GUID_CUT));
    if (pmask & PMASK.ProcessId) emit(String(p.pid));
    if (pmask & PMASK.ParentProcessId) emit(String(p.ppid));
    if (pmask & PMASK.Image) emit(p.image);
    // vigil.argv may be rebuilt from CommandLine
    if (pmask & (PMASK.CommandLine | PMASK.Detail)) emit(p.command_line);
    if (pmask & PMASK.CurrentDirectory) emit(p.cwd);
    if (pmask & PMASK.Detail && p.detail) {
      // vigil.argv, argc, exe_dev, exe_ino: vigil's members, so their values only
      try {
        const d = JSON.parse(p.detail) as Record<string, unknown>;
        for (const k in d) values(d[k], emit);
      } catch {
        /* a detail that is not JSON: not indexed */
      }
    }
  }
  if (parent) {
    if (pmask & PMASK.ParentProcessGuid) emit(cutValue(parent.guid, GUID_CUT));
    if (pmask & PMASK.ParentImage) emit(parent.image);
    if (pmask & PMASK.ParentCommandLine) emit(parent.command_line);
  }
}

/**
 * How much of a value the text index holds, for the fields whose values are nearly all
 * unique to their row: `keep` its first characters, or `drop` its last ones (a value no
 * longer than that is held whole). A chunk's rows then share these values (TextChunks
 * holds each distinct value once): ProcessGuid's 38 characters, boot_ns, start_ns and seq
 * were 85 % of the text of an exec storm's rows (51 trigrams a row), and FTS5's cost is
 * per trigram. A match on such a field gives the trigrams of the part held (matchTrigrams):
 * a GUID's first 6 characters (`{` and 20 bits of a hash: three trigrams to match) leave
 * about one chunk in 20,000 that holds them by chance, another GUID's or other values'
 * (under one per match at 1,000,000 events, ~15,000 chunks; its rows are read and refused);
 * the clocks to 10 ms and seq to its hundreds leave a few chunks to read. GUIDs were held
 * to 13 characters before (bench/exec-storm's pair: their values were ~10 % of the agent's
 * CPU then; 6 keeps about half of that); a store indexed then holds a superset, which a
 * match on the shorter part still finds.
 */
interface Cut {
  keep?: number;
  drop?: number;
}
const GUID_CUT: Cut = { keep: 6 };
/** the event's own members so cut, by name */
const TOP_CUT = new Map<string, Cut>([
  ['ProcessGuid', GUID_CUT],
  ['ParentProcessGuid', GUID_CUT],
]);
/** vigil's members so cut, by name */
const VIGIL_CUT = new Map<string, Cut>([
  ['boot_ns', { drop: 7 }],
  ['start_ns', { drop: 7 }],
  ['seq', { drop: 2 }],
]);
/** CUT's fields by their path in a field match */
const CUT = new Map<string, Cut>([...TOP_CUT, ...[...VIGIL_CUT].map(([k, c]) => [`vigil.${k}`, c] as const)]);
const SURROGATE = /[\ud800-\udfff]/;

/** A member's value to `emit`: in part (cutValue) when its field is cut and it is a string or number, else whole (values). */
function cutOrValues(x: unknown, c: Cut | undefined, emit: (v: string) => void): void {
  if (c && (typeof x === 'string' || typeof x === 'number')) emit(cutValue(String(x), c));
  else values(x, emit);
}

/** The part of a value of a CUT field the text index holds, in characters (code points). */
function cutValue(s: string, c: Cut): string {
  const n = c.keep ?? c.drop!;
  if (s.length <= n) return s;
  if (!SURROGATE.test(s)) return c.keep !== undefined ? s.slice(0, n) : s.slice(0, s.length - n);
  const cps = Array.from(s);
  if (cps.length <= n) return s;
  return (c.keep !== undefined ? cps.slice(0, n) : cps.slice(0, cps.length - n)).join('');
}

/** x's scalar values (and nested members' names) given to `emit`. */
function values(x: unknown, emit: (v: string) => void): void {
  if (x === null || x === undefined) return;
  if (typeof x !== 'object') return emit(typeof x === 'boolean' ? (x ? '1' : '0') : String(x));
  if (Array.isArray(x)) {
    for (const y of x) values(y, emit);
    return;
  }
  const o = x as Record<string, unknown>;
  for (const k in o) {
    emit(k);
    values(o[k], emit);
  }
}

/**
 * Record ids a document of the text index (a chunk: TextChunks) spans at most. A match
 * reads the candidate chunks' rows (at most 64 ids apart each) and checks each by the exact
 * condition; query() reads CHUNK_IDS - 1 rows past its limit to order them.
 */
const CHUNK_IDS = 64;

/** An event row on its way into a chunk: its parsed JSON, its process rows and its chunk key. */
interface TextRow {
  key: number;
  v: Record<string, unknown> | null;
  p: ProcRow | null;
  parent: ProcRow | null;
  pmask: number;
}

/** A chunk being filled: its first and last row ids and its text (each distinct value once). */
interface OpenChunk {
  key: number;
  first: number;
  last: number;
  text: string;
  seen: Set<string>;
}

/**
 * The text index's writer: event rows' values (valuesOf) gathered into chunks, each
 * filed as one document whose rowid is its last row's id. A chunk holds rows of one program
 * (the Image of the row's process, or its category without one), written in one
 * transaction, at most CHUNK_IDS ids apart: several fill side by side, and each row's `tkey`
 * says which it is in (a number per program within the transaction; records_text_chunks
 * keeps the chunk's span and key). Rows of one program share most of their values, filed
 * once per chunk (FTS5's cost is per trigram filed; bench/exec-storm: the index's cost per
 * exec ~145 → ~64 µs against a document per row), and a
 * match on two fields (User=root with Image~*\/ls) is not misled by another program's rows
 * next to them. Deleting a chunk's last row deletes the chunk (triggers): the store is
 * pruned oldest first, so a chunk goes with its newest row.
 */
class TextChunks {
  private readonly ins: Database.Statement;
  private readonly span: Database.Statement;
  /** the open chunks by key */
  private readonly open = new Map<number, OpenChunk>();
  private readonly keys = new Map<string, number>();
  constructor(db: Database.Database) {
    this.ins = db.prepare('INSERT INTO records_text (rowid, t) VALUES (?, ?)');
    this.span = db.prepare('INSERT INTO records_text_chunks (last, first, tkey) VALUES (?, ?, ?)');
  }
  /** An event row's chunk key (its program) and parsed JSON, before it is inserted with that key. */
  row(json: string, p: ProcRow | null, parent: ProcRow | null, pmask: number, category: string): TextRow {
    const v = parseRow(json);
    const image = p && pmask & PMASK.Image ? p.image : v?.Image;
    const keyText = typeof image === 'string' ? image : `\0${category}`;
    let key = this.keys.get(keyText);
    if (key === undefined) this.keys.set(keyText, (key = this.keys.size + 1));
    return { key, v, p, parent, pmask };
  }
  /** The row, inserted with its key as `id` (greater than every id added before): its values join its chunk. */
  add(id: number, r: TextRow): void {
    let c = this.open.get(r.key);
    if (c && id - c.first >= CHUNK_IDS) {
      this.file(c);
      c = undefined;
    }
    if (!c) {
      c = { key: r.key, first: id, last: id, text: US, seen: new Set() };
      this.open.set(r.key, c);
    }
    c.last = id;
    const chunk = c;
    valuesOf(r.v, r.p, r.parent, r.pmask, (v) => {
      if (chunk.seen.has(v)) return;
      chunk.seen.add(v);
      chunk.text += v + US;
    });
  }
  /** File every open chunk (a transaction's end): keys start again with the next one. */
  flush(): void {
    for (const c of this.open.values()) this.file(c);
    this.open.clear();
    this.keys.clear();
  }
  private file(c: OpenChunk): void {
    this.ins.run(c.last, c.text);
    this.span.run(c.last, c.first, c.key);
  }
}

/** The text index in chunks (schema 5): records_text and its chunk table. */
function hasChunkedIndex(db: Database.Database): boolean {
  return (db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name IN ('records_text', 'records_text_chunks')").get() as { n: number }).n === 2;
}

/** Index the event rows a store holds (the index made anew), 10,000 rows at a time. */
function indexStored(db: Database.Database): void {
  const page = db.prepare("SELECT id, category, json, proc, pmask FROM records WHERE kind = 'event' AND id > ? ORDER BY id LIMIT 10000");
  const setKey = db.prepare('UPDATE records SET tkey = ? WHERE id = ?');
  const getProc = db.prepare('SELECT id, guid, pid, ppid, parent, image, command_line, cwd, detail FROM processes WHERE id = ?');
  const chunks = new TextChunks(db);
  const cache = new Map<number, ProcRow | null>();
  const proc = (id: number | null): ProcRow | null => {
    if (id === null) return null;
    let p = cache.get(id);
    if (p === undefined) {
      if (cache.size > 100_000) cache.clear();
      cache.set(id, (p = (getProc.get(id) as ProcRow | undefined) ?? null));
    }
    return p;
  };
  let last = 0;
  for (;;) {
    const rows = page.all(last) as Array<{ id: number; category: string; json: string; proc: number | null; pmask: number }>;
    if (!rows.length) return chunks.flush();
    for (const r of rows) {
      const p = proc(r.proc);
      const t = chunks.row(r.json, p, p ? proc(p.parent) : null, r.pmask, r.category);
      setKey.run(t.key, r.id);
      chunks.add(r.id, t);
    }
    // a page is a transaction's worth: its keys end with it
    chunks.flush();
    last = rows[rows.length - 1]!.id;
  }
}

function migrate(db: Database.Database): void {
  const v = db.pragma('user_version', { simple: true }) as number;
  if (v >= STORE_SCHEMA_VERSION) return;
  db.transaction(() => {
    const hasRecords = !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").get();
    if (hasRecords && v < 2) {
      // version 1: every row held its full event; they stay as they are (proc NULL)
      db.exec(`
        ALTER TABLE records ADD COLUMN proc INTEGER;
        ALTER TABLE records ADD COLUMN pmask INTEGER NOT NULL DEFAULT 0;
      `);
    }
    if (hasRecords && !(db.prepare("SELECT 1 FROM pragma_table_info('records') WHERE name = 'tkey'").get())) {
      // version 5: an event row's chunk of the text index (TextChunks)
      db.exec('ALTER TABLE records ADD COLUMN tkey INTEGER');
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        ts INTEGER NOT NULL,
        category TEXT NOT NULL,
        proc INTEGER,
        pmask INTEGER NOT NULL DEFAULT 0,
        rule_id TEXT,
        level TEXT,
        json TEXT NOT NULL,
        tkey INTEGER
      );
      -- two indexes per event row at most: (category, ts) for category and time queries,
      -- (ts) for time bounds without a category (version 3: --since and the API's searches
      -- read a millisecond's rows exactly, which was a scan of the table); alerts and rules
      -- get partial ones. docs/events.md, STORE, lists them and what each query uses
      DROP INDEX IF EXISTS records_kind_ts;
      CREATE INDEX IF NOT EXISTS records_category ON records (category, ts);
      CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
      CREATE INDEX IF NOT EXISTS records_alerts ON records (ts) WHERE kind = 'alert';
      CREATE INDEX IF NOT EXISTS records_rule ON records (rule_id) WHERE rule_id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS processes (
        id INTEGER PRIMARY KEY,
        guid TEXT NOT NULL,
        pid INTEGER NOT NULL,
        ppid INTEGER NOT NULL,
        parent INTEGER,
        image TEXT NOT NULL,
        command_line TEXT NOT NULL,
        cwd TEXT NOT NULL,
        uid INTEGER,
        detail TEXT
      );
    `);
    // version 4: field matches through a trigram index of each event row's text (records_text,
    // made by setTextIndex after this: the store's events are indexed then, once; or not, with
    // store.text_index off); version 5: the index holds chunks of rows (TextChunks), made
    // anew by setTextIndex from a version 4 store's rows
    db.pragma(`user_version = ${STORE_SCHEMA_VERSION}`);
  })();
}

/**
 * Make the store's text index (records_text) exist or not (store.text_index). Made: FTS5,
 * contentless (it holds the trigrams and row ids, not the text); insertBatch adds each
 * transaction's event rows in chunks (TextChunks), a trigger takes a chunk out with its last
 * row; the events already stored are indexed here (a version 4 index is made again).
 * Dropped: field matches read the rows (docs/events.md); turned on again, the index is made
 * again from every stored event.
 */
function setTextIndex(db: Database.Database, on: boolean): void {
  const has = !!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'records_text'").get();
  if (on ? hasChunkedIndex(db) : !has) return;
  db.transaction(() => {
    // off, or schema 4's index (a document per row): dropped; on: made in chunks
    db.exec(`DROP TRIGGER IF EXISTS records_text_delete; DROP TRIGGER IF EXISTS records_text_chunk_delete;
      DROP TABLE IF EXISTS records_text; DROP TABLE IF EXISTS records_text_chunks;`);
    if (!on) return;
    db.exec(`
        CREATE VIRTUAL TABLE records_text USING fts5(t, tokenize = 'trigram', detail = none, content = '', contentless_delete = 1);
        -- a deleted row is a tombstone until its segment is merged anyway: pruning 10,000 rows took
        -- ~950 ms with FTS5's default (a segment 10% deleted is rewritten at once), ~100 ms without
        INSERT INTO records_text (records_text, rank) VALUES ('deletemerge', 0);
        -- a chunk's span (TextChunks): its document's rowid is its last row's id
        CREATE TABLE records_text_chunks (last INTEGER PRIMARY KEY, first INTEGER NOT NULL, tkey INTEGER NOT NULL);
        -- exact rowids only: FTS5 deletes by a rowid range scan the whole index
        CREATE TRIGGER records_text_delete AFTER DELETE ON records WHEN old.kind = 'event' BEGIN
          DELETE FROM records_text_chunks WHERE last = old.id;
        END;
        CREATE TRIGGER records_text_chunk_delete AFTER DELETE ON records_text_chunks BEGIN
          DELETE FROM records_text WHERE rowid = old.last;
        END;
      `);
    indexStored(db);
  })();
}

/** Trigrams of a query at most (each one more doclist to intersect; any subset still only narrows). */
const MAX_TRIGRAMS = 8;
/** Rows of a time range tried in time order before a walk of the text index that starts with a seek. */
const PROBE_ROWS = 20_000;
/** Entries of records_ts read at most for each row-id bound of a time range. */
const ID_SCAN = 250_000;
/** A time range with fewer records is read through records_ts rather than the text index. */
const FEW_ROWS = 5000;
const US_CHAR = '\x1f';
/** Characters a JSON text has around and inside values (an object's or array's value as text): literals end there. */
const JSON_MARKS = new Set(['"', '\\', '{', '}', '[', ']', ',', ':']);

/**
 * The runs of literal characters of a pattern (null: a wildcard), split at JSON
 * punctuation, with `anchor` before a run at the start and after one at the end.
 */
function literalRuns(toks: ReadonlyArray<string | null>, anchor: string): string[] {
  const runs: string[] = [];
  let run = '';
  let skip = 0;
  let last = false;
  for (let k = 0; k < toks.length; k++) {
    const c = toks[k] ?? null;
    last = false;
    if (c === null || skip > 0 || JSON_MARKS.has(c)) {
      // after a backslash a JSON text holds an escape (\n, \u0041): its letters are no literal
      if (skip > 0) skip--;
      else if (c === '\\') skip = 5;
      runs.push(run);
      run = '';
      continue;
    }
    if (k === 0) run = anchor;
    run += c;
    last = true;
  }
  runs.push(run + (last ? anchor : ''));
  return runs;
}

/** A glob's characters, escapes resolved, with null for a wildcard (* and ?), and where its first * is (its length without one). */
function globTokens(glob: string): { toks: Array<string | null>; star: number } {
  const g = Array.from(glob);
  const toks: Array<string | null> = [];
  let star = -1;
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '\\' && i + 1 < g.length) toks.push(g[++i]!);
    else {
      if (c === '*' && star < 0) star = toks.length;
      toks.push(c === '*' || c === '?' ? null : c);
    }
  }
  return { toks, star: star < 0 ? toks.length : star };
}

/**
 * The trigrams every row a field match matches has in its indexed text (valuesOf),
 * or null when the match has no literal of three characters (then the text index is
 * not used for it): `F=V` gives V between US characters (numbers as JavaScript writes
 * them); `F~GLOB` gives its literal runs (split at wildcards and at JSON punctuation,
 * since an object's or array's value matches as its JSON text), with a US character
 * where the glob is anchored at the start or end of the value. Not indexed: timestamp,
 * Ancestors (rebuilt from the process rows), `vigil` as a whole (its own member names
 * are not in the text), and the US anchors of vigil.argv (which may be rebuilt from
 * CommandLine). Of CUT's fields, the trigrams of the part of the value the text holds
 * (cutValue), where a glob says which that is.
 */
export function matchTrigrams(f: FieldMatch): string[] | null {
  // vigil as a whole: its own member names are not in the text (valuesOf)
  if (f.field === 'timestamp' || f.field === 'Ancestors' || f.field.startsWith('Ancestors.') || f.field === 'vigil') return null;
  const anchors = !(f.field === 'vigil.argv' || f.field.startsWith('vigil.argv.'));
  const a = anchors ? US_CHAR : '';
  const runs: string[] = [];
  const cut = CUT.get(f.field);
  if (cut) {
    // the text holds the part cutValue keeps of a string or number value (of a value of
    // another type, all of it: the literals of a part of its JSON text are in it too)
    if (/[^\x00-\x7f]/.test(f.value)) return null; // JavaScript and SQLite (lower(): ASCII only) may count such characters apart
    let toks: Array<string | null>;
    let star: number;
    if (f.op === '=') {
      const v = coerce(f.value);
      if (typeof v === 'number' && !Number.isSafeInteger(v)) return null;
      toks = Array.from(String(v));
      star = toks.length;
    } else {
      ({ toks, star } = globTokens(f.value.toLowerCase()));
    }
    // where the kept part ends is known up to the first * (a value has as many characters as a glob without *)
    let end: number;
    if (cut.keep !== undefined) end = Math.min(star, cut.keep);
    else if (star < toks.length) return null;
    else end = toks.length > cut.drop! ? toks.length - cut.drop! : toks.length;
    const whole = end === toks.length;
    toks = whole ? toks : [...toks.slice(0, end), null];
    if (f.op === '~' || toks[0] === '{' || toks[0] === '[') runs.push(...literalRuns(toks, f.op === '~' ? a : ''));
    else runs.push(a + toks.join('') + (whole ? a : ''));
  } else if (f.op === '=') {
    const v = coerce(f.value);
    // numbers: only integers JavaScript and SQLite write alike
    if (typeof v === 'number' && !Number.isSafeInteger(v)) return null;
    const text = typeof v === 'number' ? String(v) : v;
    // a value that may be an object's or array's JSON text ({…}, […]): its literal runs only
    if (text.startsWith('{') || text.startsWith('[')) runs.push(...literalRuns(Array.from(text), ''));
    else runs.push(a + text + a);
  } else {
    // the glob as literal characters and wildcards (null), escapes resolved as globToSqlite does
    runs.push(...literalRuns(globTokens(f.value.toLowerCase()).toks, a));
  }
  const out = new Set<string>();
  for (const r of runs) {
    const cps = Array.from(r);
    for (let i = 0; i + 3 <= cps.length; i++) out.add(cps.slice(i, i + 3).join(''));
  }
  return out.size ? [...out] : null;
}

/** Columns holding a moved process field (p: the event's process row, pp: its parent's). */
const MOVED_COLUMNS: Record<string, [bit: number, column: string]> = {
  ProcessGuid: [PMASK.ProcessGuid, 'p.guid'],
  ProcessId: [PMASK.ProcessId, 'p.pid'],
  Image: [PMASK.Image, 'p.image'],
  CommandLine: [PMASK.CommandLine, 'p.command_line'],
  CurrentDirectory: [PMASK.CurrentDirectory, 'p.cwd'],
  ParentProcessId: [PMASK.ParentProcessId, 'p.ppid'],
  ParentProcessGuid: [PMASK.ParentProcessGuid, 'pp.guid'],
  ParentImage: [PMASK.ParentImage, 'pp.image'],
  ParentCommandLine: [PMASK.ParentCommandLine, 'pp.command_line'],
};

/** SQL for a field's value in a (rebuilt) event row of `records r`. */
function fieldExpr(field: string): { sql: string; args: unknown[]; ancestors: boolean } {
  const moved = MOVED_COLUMNS[field];
  if (moved) return { sql: `(CASE WHEN r.pmask & ${moved[0]} THEN ${moved[1]} ELSE json_extract(r.json, ?) END)`, args: [jsonPath(field)], ancestors: false };
  const anc = /^Ancestors\.(\d+)\.(ProcessId|Image|CommandLine)$/.exec(field);
  if (anc) {
    return {
      sql: `(CASE WHEN r.pmask & ${PMASK.Ancestors} THEN vigil_ancestor(r.proc, ?, ?) ELSE json_extract(r.json, ?) END)`,
      args: [Number(anc[1]), anc[2], jsonPath(field)],
      ancestors: true,
    };
  }
  const det = /^vigil\.((?:argv|argc|exe_dev|exe_ino)(?:\..+)?)$/.exec(field);
  if (det) {
    return {
      sql: `(CASE WHEN r.pmask & ${PMASK.Detail} THEN vigil_detail(p.detail, p.command_line, ?) ELSE json_extract(r.json, ?) END)`,
      args: [det[1], jsonPath(field)],
      ancestors: true,
    };
  }
  return { sql: 'json_extract(r.json, ?)', args: [jsonPath(field)], ancestors: false };
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

/** Epoch ms of a record (its timestamp, else now). */
export function recordTime(kind: 'event' | 'alert', value: Record<string, unknown>): number {
  const ev = (kind === 'alert' ? (value.event as Record<string, unknown> | undefined) : value) ?? {};
  const tsStr = (kind === 'alert' ? value.timestamp : ev.timestamp) as string | undefined;
  const ts = tsStr ? isoMs(tsStr) : NaN;
  return Number.isFinite(ts) ? ts : Date.now();
}

// Date.parse is slow on six fractional digits; events of one second share their head
let headText = '';
let headMs = NaN;
const ISO_US = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** Epoch ms of an ISO-8601 UTC timestamp (fast for vigil's "…:SS.ffffffZ", exact for any Date.parse takes). */
export function isoMs(ts: string): number {
  if (ts.length !== 27) return Date.parse(ts);
  // the second's head was checked when it was cached: only the fraction is left to check
  if (!(headText !== '' && ts.startsWith(headText) && fractionOk(ts))) {
    if (!ISO_US.test(ts)) return Date.parse(ts);
    headText = ts.slice(0, 19);
    headMs = Date.parse(`${headText}Z`);
  }
  return headMs + (ts.charCodeAt(20) - 48) * 100 + (ts.charCodeAt(21) - 48) * 10 + (ts.charCodeAt(22) - 48);
}

/** ".ffffffZ" at 19..26 of a 27-character timestamp (what ISO_US asks of that part) */
function fractionOk(ts: string): boolean {
  if (ts.charCodeAt(19) !== 46 || ts.charCodeAt(26) !== 90) return false;
  for (let i = 20; i < 26; i++) {
    const c = ts.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return false;
  }
  return true;
}

/** A record kept whole (no process row): alerts, events without a process. */
export function toRow(kind: 'event' | 'alert', value: Record<string, unknown>, json: string): StoreRow {
  const ev = (kind === 'alert' ? (value.event as Record<string, unknown> | undefined) : value) ?? {};
  const str = (x: unknown) => (typeof x === 'string' ? x : null);
  return [kind, recordTime(kind, value), String(ev.category ?? 'unknown'), null, 0, kind === 'alert' ? str(value.rule_id) : null, kind === 'alert' ? str(value.level) : null, json];
}

/** The vigil.* detail of a process row; argv comes back from the command line when it was not kept. */
export function expandDetail(detail: string | null, commandLine: string): Record<string, unknown> {
  const d = detail ? (JSON.parse(detail) as Record<string, unknown>) : {};
  if (!('argv' in d)) d.argv = commandLine === '' ? [] : commandLine.split(' ');
  return d;
}

/** Ancestors from a chain of process rows: parent first, at most maxDepth. */
export function lineage(p: ProcRow, get: (id: number | null) => ProcRow | null, maxDepth: number): { list: Array<{ ProcessId: number; Image: string; CommandLine: string }>; cut: boolean } {
  const list: Array<{ ProcessId: number; Image: string; CommandLine: string }> = [];
  const seen = new Set<number>([p.id]);
  let cur = p;
  for (;;) {
    if (cur.ppid <= 0) return { list, cut: false };
    const par = get(cur.parent);
    if (list.length >= maxDepth) return { list, cut: true };
    if (!par || seen.has(par.id)) {
      if (!par) list.push({ ProcessId: cur.ppid, Image: '', CommandLine: '' });
      return { list, cut: false };
    }
    seen.add(par.id);
    list.push({ ProcessId: par.pid, Image: par.image, CommandLine: par.command_line });
    cur = par;
  }
}

const EVENT_ORDER = [
  'category', 'timestamp', 'Hostname', 'ProcessId', 'ProcessGuid', 'Image', 'CommandLine', 'CurrentDirectory', 'User', 'LogonId',
  'ParentProcessId', 'ParentProcessGuid', 'ParentImage', 'ParentCommandLine', 'Ancestors',
];

/**
 * An event as emitted, from its stored row: the process fields put back from
 * the process row (p) and its parent's (parent), Ancestors rebuilt from the
 * chain of rows with whole command lines (at most maxDepth; then
 * vigil.ancestors_truncated).
 */
export function rebuildEvent(
  stored: Record<string, unknown>,
  pmask: number,
  p: ProcRow,
  parent: ProcRow | null,
  get: (id: number | null) => ProcRow | null,
  maxDepth: number,
): Record<string, unknown> {
  const moved: Record<string, unknown> = {};
  if (pmask & PMASK.ProcessGuid) moved.ProcessGuid = p.guid;
  if (pmask & PMASK.ProcessId) moved.ProcessId = p.pid;
  if (pmask & PMASK.Image) moved.Image = p.image;
  if (pmask & PMASK.CommandLine) moved.CommandLine = p.command_line;
  if (pmask & PMASK.CurrentDirectory) moved.CurrentDirectory = p.cwd;
  if (pmask & PMASK.ParentProcessId) moved.ParentProcessId = p.ppid;
  if (parent) {
    if (pmask & PMASK.ParentProcessGuid) moved.ParentProcessGuid = parent.guid;
    if (pmask & PMASK.ParentImage) moved.ParentImage = parent.image;
    if (pmask & PMASK.ParentCommandLine) moved.ParentCommandLine = parent.command_line;
  }
  let cut = false;
  if (pmask & PMASK.Ancestors) {
    const l = lineage(p, get, maxDepth);
    moved.Ancestors = l.list;
    cut = l.cut;
  }
  const out: Record<string, unknown> = {};
  for (const k of EVENT_ORDER) {
    if (k in moved) out[k] = moved[k];
    else if (k in stored) out[k] = stored[k];
  }
  for (const k of Object.keys(stored)) if (!(k in out)) out[k] = stored[k];
  const vigil = stored.vigil as Record<string, unknown> | undefined;
  if (vigil && (pmask & (PMASK.Detail | PMASK.Ancestors))) {
    const v: Record<string, unknown> = {};
    const detail = pmask & PMASK.Detail ? expandDetail(p.detail, p.command_line) : null;
    let placed = !detail;
    const place = () => {
      for (const d of DETAIL_FIELDS) if (detail && d in detail) v[d] = detail[d];
      placed = true;
    };
    // the detail fields sat before truncated and raw
    for (const [k, x] of Object.entries(vigil)) {
      if (!placed && (k === 'truncated' || k === 'raw')) place();
      v[k] = x;
    }
    if (!placed) place();
    if (pmask & PMASK.Ancestors) {
      // the stored flag was about the bounded list; the rebuilt one is whole up to maxDepth
      const { truncated, raw, ...rest } = v;
      delete rest.ancestors_truncated;
      const w: Record<string, unknown> = rest;
      if (cut) w.ancestors_truncated = true;
      if (truncated !== undefined) w.truncated = truncated;
      if (raw !== undefined) w.raw = raw;
      out.vigil = w;
    } else {
      out.vigil = v;
    }
  }
  return out;
}

/** A process row as the splitter compares it: guid, pid, ppid, image, command line, cwd. */
export interface RowValues {
  readonly guid: string;
  readonly pid: number;
  readonly ppid: number;
  readonly image: string;
  readonly commandLine: string;
  readonly cwd: string;
  /** memo of splitEvent: the ProcessId, ProcessGuid and Image members' JSON text (values fixed for a row) */
  idFrag?: string | undefined;
}

/**
 * An event as its store row holds it: the JSON without the process fields the
 * process rows hold, the mask of those, and (for the process_creation that made
 * the process row) the row's detail JSON.
 */
export interface StoreSplit {
  json: string;
  pmask: number;
  detail: string | null;
}

/** The mask bits that need the parent's row. */
export const PMASK_PARENT = PMASK.ParentProcessGuid | PMASK.ParentImage | PMASK.ParentCommandLine;

/** `json` without json[i, i+n) */
function cut(json: string, i: number, n: number): string {
  return json.slice(0, i) + json.slice(i + n);
}

/**
 * Split an event for the store without serializing it again: the process
 * fields are cut out of its JSON text where they hold exactly the values of its
 * process row (p) and its parent's (parent), and the mask says which were.
 * Cuts work on the text the agent serialized once: a fragment such as
 * `,"ProcessId":7,"ProcessGuid":"{…}","Image":"/bin/x"` can only occur at the
 * top level of the object (JSON strings escape their quotes) and is searched
 * for as a whole; a field not found is simply kept.
 * `detail`: for the process_creation that made p's row, the vigil.argv, argc,
 * exe_dev and exe_ino text (argv left out when CommandLine splits back into it).
 */
export function splitEvent(json: string, ev: Record<string, unknown>, p: RowValues, parent: RowValues | null, ownsDetail: boolean): StoreSplit {
  let pmask = 0;
  let out = json;
  // ProcessId, ProcessGuid and Image (every event about a process), then CommandLine and CurrentDirectory
  let frag = (p.idFrag ??= `,"ProcessId":${p.pid},"ProcessGuid":"${p.guid}","Image":${jsonString(p.image)}`);
  let i = out.indexOf(frag);
  if (i > 0) {
    pmask |= PMASK.ProcessId | PMASK.ProcessGuid | PMASK.Image;
    let n = frag.length;
    if (ev.CommandLine === p.commandLine) {
      const f2 = `,"CommandLine":${jsonString(p.commandLine)}`;
      if (out.startsWith(f2, i + n)) {
        pmask |= PMASK.CommandLine;
        n += f2.length;
        if (ev.CurrentDirectory === p.cwd) {
          const f3 = `,"CurrentDirectory":${jsonString(p.cwd)}`;
          if (out.startsWith(f3, i + n)) {
            pmask |= PMASK.CurrentDirectory;
            n += f3.length;
          }
        }
      }
    }
    out = cut(out, i, n);
  }
  if (ev.ParentProcessId === p.ppid) {
    frag = `,"ParentProcessId":${p.ppid}`;
    i = out.indexOf(frag);
    if (i > 0) {
      let n = frag.length;
      pmask |= PMASK.ParentProcessId;
      if (parent) {
        const f2 = `,"ParentProcessGuid":"${parent.guid}","ParentImage":${jsonString(parent.image)},"ParentCommandLine":${jsonString(parent.commandLine)}`;
        if (out.startsWith(f2, i + n)) {
          pmask |= PMASK.ParentProcessGuid | PMASK.ParentImage | PMASK.ParentCommandLine;
          n += f2.length;
        }
      }
      out = cut(out, i, n);
    }
  }
  if (Array.isArray(ev.Ancestors)) {
    // entries are flat objects of escaped strings: the first `]` ends the array
    i = out.indexOf(',"Ancestors":[');
    const end = i > 0 ? out.indexOf(']', i + 14) : -1;
    if (end > 0) {
      pmask |= PMASK.Ancestors;
      out = cut(out, i, end + 1 - i);
    }
  }
  let detail: string | null = null;
  const vigil = ev.vigil as Record<string, unknown> | undefined;
  if (ownsDetail && vigil && Array.isArray(vigil.argv)) {
    i = out.indexOf(',"argv":[');
    const end = i > 0 ? out.indexOf('],"argc":', i) : -1;
    const tail = end > 0 ? `],"argc":${vigil.argc as number},"exe_dev":${vigil.exe_dev as number},"exe_ino":"${vigil.exe_ino as string}"` : '';
    if (end > 0 && out.startsWith(tail, end)) {
      const n = end + tail.length - i;
      const argv = vigil.argv as string[];
      const keepArgv = !argvDerivable(argv, p.commandLine);
      detail = `{${keepArgv ? out.slice(i + 1, end + 1) + ',' : ''}${tail.slice(2)}}`;
      pmask |= PMASK.Detail;
      out = cut(out, i, n);
    }
  }
  return { json: out, pmask, detail };
}

/** argv comes back from CommandLine by splitting at spaces (no argument empty or holding a space). */
export function argvDerivable(argv: readonly string[], commandLine: string): boolean {
  if (argv.length === 0) return commandLine === '';
  for (const a of argv) if (a === '' || a.includes(' ')) return false;
  return argv.join(' ') === commandLine;
}
