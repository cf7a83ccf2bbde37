/**
 * SQLite sink: rows are batched on the main thread (cheap) and inserted by a
 * worker thread (src/sinks/sqlite-worker.ts). At most `maxPending` rows may be
 * unacknowledged; beyond that records are dropped and counted.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { toRow, type StoreRow } from '../store/store.js';
import type { Sink, SinkRecord, SinkStats } from './sink.js';

// Always the compiled worker (also when tests run the TypeScript sources).
const WORKER = fileURLToPath(new URL('../../dist/sinks/sqlite-worker.js', import.meta.url));

export interface SqliteSinkOptions {
  path: string;
  maxPending?: number;
  batchMs?: number;
  batchMax?: number;
  /** keep at most this many records (0 = unlimited) */
  maxRows?: number;
}

export class SqliteSink implements Sink {
  readonly name: string;
  private readonly worker: Worker;
  private batch: StoreRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inflight = 0;
  private nextId = 1;
  private readonly maxPending: number;
  private readonly batchMs: number;
  private readonly batchMax: number;
  private s: SinkStats = { written: 0, dropped: 0, errors: 0, pending: 0 };
  private flushWaiters: Array<() => void> = [];
  private closed = false;
  lastError: string | null = null;

  constructor(readonly opts: SqliteSinkOptions) {
    this.name = `sqlite:${opts.path}`;
    this.maxPending = opts.maxPending ?? 100_000;
    this.batchMs = opts.batchMs ?? 100;
    this.batchMax = opts.batchMax ?? 2000;
    this.worker = new Worker(WORKER, {
      workerData: { path: opts.path, maxRows: opts.maxRows ?? 1_000_000, pruneEvery: 10_000 },
    });
    this.worker.on('message', (m: { type: string; n?: number; message?: string }) => {
      if (m.type === 'ack') {
        this.inflight -= m.n!;
        this.s.written += m.n!;
      } else if (m.type === 'error') {
        this.inflight -= m.n!;
        this.s.errors++;
        this.s.dropped += m.n!;
        this.lastError = m.message ?? 'unknown';
      }
      if (this.inflight === 0 && this.batch.length === 0) for (const w of this.flushWaiters.splice(0)) w();
    });
    this.worker.on('error', (e) => {
      this.s.errors++;
      this.lastError = e.message;
    });
  }

  write(rec: SinkRecord): boolean {
    if (this.closed || this.inflight + this.batch.length >= this.maxPending) {
      this.s.dropped++;
      return false;
    }
    this.batch.push(toRow(rec.kind, rec.value, rec.json));
    if (this.batch.length >= this.batchMax) this.send();
    else if (!this.timer) this.timer = setTimeout(() => this.send(), this.batchMs);
    return true;
  }

  private send(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.batch.length === 0) return;
    const rows = this.batch;
    this.batch = [];
    this.inflight += rows.length;
    this.worker.postMessage({ type: 'batch', rows, id: this.nextId++ });
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
    await new Promise<void>((resolve) => {
      const onMsg = (m: { type: string }) => {
        if (m.type !== 'closed') return;
        this.worker.off('message', onMsg);
        resolve();
      };
      this.worker.on('message', onMsg);
      this.worker.postMessage({ type: 'close' });
    });
    await this.worker.terminate();
  }

  stats(): SinkStats {
    return { ...this.s, pending: this.inflight + this.batch.length };
  }
}
