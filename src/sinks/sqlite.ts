/**
 * SQLite sink: rows are built and batched on the main thread (cheap) and
 * inserted by a worker thread (src/sinks/sqlite-worker.ts). Each process is
 * written once (src/store/store.ts): the first event about a process table entry
 * writes its row (and its ancestors' rows not written yet); events rows refer to
 * it and leave out the process fields it holds. At most `maxPending` event rows
 * may be unacknowledged; beyond that records are dropped and counted.
 *
 * One writer per store: a lock file ("STORE.lock", flock, holds the pid)
 * refuses a second agent. A store that cannot be written is refused when the
 * sink opens (EventStore.open proves it can write); one that fails later (disk
 * full, I/O error) drops and counts the batches that fail, and says so once
 * per episode (onFault: failing, then resumed with the count lost).
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { EventStore, PMASK_PARENT, packBatch, recordTime, splitEvent, toRow, type ProcessRef, type ProcessRow, type StoreRow } from '../store/store.js';
import { dirname } from 'node:path';
import { acquireLock, type FileLock } from '../kernel/lock.js';
import { makePrivateDir } from '../store/files.js';
import { BoundedFifo } from '../util/fifo.js';
import type { SinkFaultHandler } from './fault.js';
import type { Sink, SinkProcess, SinkRecord, SinkStats } from './sink.js';

// Always the compiled worker (also when tests run the TypeScript sources).
const WORKER = fileURLToPath(new URL('../../dist/sinks/sqlite-worker.js', import.meta.url));

export interface SqliteSinkOptions {
  path: string;
  maxPending?: number;
  batchMs?: number;
  batchMax?: number;
  /** keep at most this many records (0 = unlimited) */
  maxRows?: number;
  /** the store's text index for field matches (store.text_index; default on): off drops it, on makes it */
  textIndex?: boolean;
  /** process table entries remembered as written (beyond: written again if met again) */
  maxProcesses?: number;
  /**
   * the process table's `max_exited` (default 2048): the sink remembers twice as many
   * exited processes as written, so it never forgets one the table still keeps (an event
   * whose parent the table still knows must find that parent's row, or the row would be
   * written twice)
   */
  tableMaxExited?: number;
  /** told once when inserts start failing and once when they resume */
  onFault?: SinkFaultHandler;
}

/** What the sink remembers of a process row it wrote. */
interface Written {
  id: number;
  key: number;
  guid: string;
  pid: number;
  ppid: number;
  image: string;
  commandLine: string;
  cwd: string;
}

/** Ancestors written ahead of a process at most (the store rebuilds lineage from them). */
const MAX_CHAIN = 64;

export class SqliteSink implements Sink {
  readonly name: string;
  private readonly worker: Worker;
  private batch: StoreRow[] = [];
  private procs: ProcessRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inflight = 0;
  private nextId = 1;
  private nextProc: number;
  private readonly written = new Map<number, Written>();
  /** keys of written processes whose process_termination came, the most recent exits */
  private readonly exitedKeys: BoundedFifo<number>;
  private readonly maxPending: number;
  private readonly batchMs: number;
  private readonly batchMax: number;
  private readonly maxProcesses: number;
  private s: SinkStats = { written: 0, dropped: 0, errors: 0, pending: 0 };
  private flushWaiters: Array<() => void> = [];
  private closed = false;
  /** process rows written (each process once) */
  processRows = 0;
  lastError: string | null = null;
  private readonly lock: FileLock | null;
  /** the failure episode under way */
  private failing: { since: number; droppedBefore: number } | null = null;

  constructor(readonly opts: SqliteSinkOptions) {
    this.name = `sqlite:${opts.path}`;
    this.maxPending = opts.maxPending ?? 100_000;
    this.batchMs = opts.batchMs ?? 100;
    this.batchMax = opts.batchMax ?? 2000;
    this.maxProcesses = opts.maxProcesses ?? 65536;
    this.exitedKeys = new BoundedFifo(2 * Math.max(1, opts.tableMaxExited ?? 2048));
    // one agent per store (before anything writes to it)
    if (opts.path !== ':memory:') makePrivateDir(dirname(opts.path));
    this.lock = opts.path === ':memory:' ? null : acquireLock(opts.path);
    // create or migrate the store here, and learn the next process row id: this
    // sink hands out process ids itself, so event rows can refer to them at once
    try {
      const st = EventStore.open(opts.path, { textIndex: opts.textIndex ?? true });
      try {
        this.nextProc = st.nextProcessId();
      } finally {
        st.close();
      }
    } catch (e) {
      this.lock?.release();
      throw e;
    }
    this.worker = new Worker(WORKER, {
      workerData: { path: opts.path, maxRows: opts.maxRows ?? 1_000_000, pruneEvery: 10_000, textIndex: opts.textIndex ?? true },
    });
    this.readyPromise = new Promise((resolve) => (this.onReady = resolve));
    this.worker.on('message', (m: { type: string; n?: number; message?: string }) => {
      if (m.type === 'ready') {
        this.onReady?.();
        return;
      }
      if (m.type === 'ack') {
        this.inflight -= m.n!;
        this.s.written += m.n!;
        if (this.failing) {
          const lost = this.s.dropped - this.failing.droppedBefore;
          const ms = Date.now() - this.failing.since;
          this.failing = null;
          this.opts.onFault?.({ sink: this.name, state: 'resumed', lost, ms });
        }
      } else if (m.type === 'error') {
        this.inflight -= m.n!;
        this.s.errors++;
        if (!this.failing) {
          this.failing = { since: Date.now(), droppedBefore: this.s.dropped };
          this.opts.onFault?.({ sink: this.name, state: 'failing', error: new Error(m.message ?? 'unknown'), lost: m.n! });
        }
        this.s.dropped += m.n!;
        this.lastError = m.message ?? 'unknown';
      }
      if (this.inflight === 0 && this.batch.length === 0) for (const w of this.flushWaiters.splice(0)) w();
    });
    this.worker.on('error', (e) => {
      this.s.errors++;
      this.lastError = e.message;
    });
    // a worker that ends unasked (it failed to open the store, or crashed) writes nothing more:
    // what it held and what comes later is dropped and counted, and flush() and close() return
    this.worker.on('exit', (code) => {
      this.gone = true;
      if (this.closed) return;
      this.s.dropped += this.inflight;
      this.inflight = 0;
      if (!this.failing) {
        this.failing = { since: Date.now(), droppedBefore: this.s.dropped };
        this.opts.onFault?.({ sink: this.name, state: 'failing', error: new Error(`the store's writer thread ended (exit code ${code}): ${this.lastError ?? 'no error reported'}`), lost: 0 });
      }
      this.onReady?.();
      for (const w of this.flushWaiters.splice(0)) w();
    });
  }

  /** the worker thread has ended */
  private gone = false;

  write(rec: SinkRecord): boolean {
    if (this.closed || this.inflight + this.batch.length >= this.maxPending) {
      this.s.dropped++;
      return false;
    }
    const p = rec.kind === 'event' ? rec.process : undefined;
    if (p) {
      let w = this.written.get(p.key);
      let row: ProcessRow | null = null;
      if (!w) {
        w = this.writeProcess(p, rec.parentOf, 0);
        row = this.procs[this.procs.length - 1]!;
      }
      const parent = this.parentRow(p, rec.parentOf);
      let split = rec.stored;
      // the builder's split holds when its parent is the row we link (and a detail only with a new row)
      if (!split || ((split.pmask & PMASK_PARENT) && parent?.key !== p.parentKey) || (split.detail !== null && !row)) {
        split = splitEvent(rec.json, rec.value, w, parent, row !== null && rec.value.category === 'process_creation');
      }
      if (row && split.detail) row[9] = split.detail;
      this.batch.push(['event', recordTime('event', rec.value), String(rec.value.category ?? 'unknown'), w.id, split.pmask, null, null, split.json]);
      if (rec.value.category === 'process_termination') this.forgetExited(p.key);
    } else {
      this.batch.push(toRow(rec.kind, rec.value, rec.json));
    }
    if (this.batch.length >= this.batchMax) this.send();
    else if (!this.timer) this.timer = setTimeout(() => this.send(), this.batchMs);
    return true;
  }

  /** The row an entry's parent was written as (writing it, and up, if needed). */
  private parentRow(p: ProcessRef, parentOf: SinkRecord['parentOf'], depth = 0): Written | null {
    if (p.parentKey) {
      const w = this.written.get(p.parentKey);
      if (w) return w;
    }
    if (depth >= MAX_CHAIN || !parentOf) return null;
    const q = parentOf(p);
    if (!q || q.key === p.key) return null;
    return this.written.get(q.key) ?? this.writeProcess(q, parentOf, depth + 1);
  }

  /** Write a row for an entry (its ancestors' first, where not written yet); detail is filled in by the caller. */
  private writeProcess(p: SinkProcess, parentOf: SinkRecord['parentOf'], depth: number): Written {
    const parent = this.parentRow(p, parentOf, depth);
    const id = this.nextProc++;
    const w: Written = { id, key: p.key, guid: p.guid, pid: p.pid, ppid: p.ppid, image: p.image, commandLine: p.commandLine, cwd: p.cwd };
    if (this.written.size >= this.maxProcesses) {
      // forget the oldest quarter (a process met again is written again)
      let n = this.maxProcesses >> 2;
      for (const k of this.written.keys()) {
        if (n-- <= 0) break;
        this.written.delete(k);
      }
    }
    this.written.set(p.key, w);
    this.procs.push([id, p.guid, p.pid, p.ppid, parent ? parent.id : null, p.image, p.commandLine, p.cwd, p.uid, null]);
    this.processRows++;
    return w;
  }

  /**
   * A process's last event is written: once twice the table's max_exited later exits have
   * come, its entry is forgotten. The process table has let it go by then, so no event
   * can name it as a parent any more; until then its children's events still find its row.
   * Without this the map held every process of the last 65,536 (~20 MB of the agent's heap
   * in an exec storm, all of it promoted and marked).
   */
  private forgetExited(key: number): void {
    const old = this.exitedKeys.push(key);
    if (old !== undefined) this.written.delete(old);
  }

  /** process entries remembered as written (tests) */
  get rememberedProcesses(): number {
    return this.written.size;
  }

  private send(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.batch.length === 0 && this.procs.length === 0) return;
    const rows = this.batch;
    const procs = this.procs;
    this.batch = [];
    this.procs = [];
    if (this.gone) {
      this.s.dropped += rows.length;
      return;
    }
    this.inflight += rows.length;
    const packed = packBatch(rows, procs);
    this.worker.postMessage(packed !== null ? { type: 'batch', packed, n: rows.length, id: this.nextId++ } : { type: 'batch', rows, procs, id: this.nextId++ });
  }

  private onReady: (() => void) | null = null;
  private readonly readyPromise: Promise<void>;

  /** Resolves once the worker has the store open (records written before are queued, not lost). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  flush(): Promise<void> {
    this.send();
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.flushWaiters.push(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (!this.gone) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.worker.off('message', onMsg);
          this.worker.off('exit', done);
          resolve();
        };
        const onMsg = (m: { type: string; message?: string }) => {
          if (m.type !== 'closed') return;
          if (m.message) {
            this.s.errors++;
            this.lastError = m.message;
          }
          done();
        };
        this.worker.on('message', onMsg);
        this.worker.on('exit', done);
        this.worker.postMessage({ type: 'close' });
      });
    }
    await this.worker.terminate();
    this.lock?.release();
  }

  stats(): SinkStats {
    return { ...this.s, pending: this.inflight + this.batch.length };
  }
}
