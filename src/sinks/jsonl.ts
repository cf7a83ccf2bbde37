/**
 * JSONL audit log: one JSON object per line, appended, rotated by size
 * (FILE → FILE.1 → … → FILE.<keep>). Lines are only ever written whole; a file
 * left with a partial last line by a crash is cut back to its last newline on
 * open. Writes are asynchronous and bounded by `maxPendingBytes`: beyond that,
 * records are dropped and counted.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, existsSync, unlinkSync, mkdirSync } from 'node:fs';
import { write as fsWrite } from 'node:fs';
import { dirname } from 'node:path';
import type { Sink, SinkRecord, SinkStats } from './sink.js';

export interface JsonlSinkOptions {
  path: string;
  /** rotate when the file would exceed this (0 = never) */
  maxBytes?: number;
  /** rotated files kept */
  keep?: number;
  maxPendingBytes?: number;
  /** which records go here */
  kinds?: Array<SinkRecord['kind']>;
  name?: string;
}

export class JsonlSink implements Sink {
  readonly name: string;
  private fd: number;
  private size: number;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly maxPending: number;
  private readonly kinds: Set<string>;
  private queue: string[] = [];
  private queuedBytes = 0;
  private inflight = false;
  private waiters: Array<() => void> = [];
  private s: SinkStats = { written: 0, dropped: 0, errors: 0, pending: 0 };
  private closed = false;
  lastError: Error | null = null;

  constructor(readonly opts: JsonlSinkOptions) {
    this.name = opts.name ?? `jsonl:${opts.path}`;
    this.maxBytes = opts.maxBytes ?? 100 * 1024 * 1024;
    this.keep = opts.keep ?? 5;
    this.maxPending = opts.maxPendingBytes ?? 64 * 1024 * 1024;
    this.kinds = new Set(opts.kinds ?? ['event']);
    mkdirSync(dirname(opts.path), { recursive: true });
    this.fd = openSync(opts.path, 'a+', 0o640);
    this.size = repairPartialLine(this.fd);
  }

  write(rec: SinkRecord): boolean {
    if (!this.kinds.has(rec.kind)) return true;
    const n = rec.json.length + 1;
    if (this.closed || this.queuedBytes + n > this.maxPending) {
      this.s.dropped++;
      return false;
    }
    this.queue.push(rec.json);
    this.queuedBytes += n;
    this.s.pending++;
    // text becomes bytes every 64 KiB: the strings die young (no promotion, no major GC)
    if (this.queuedBytes - this.packedBytes >= 65536) this.pack();
    // one write per turn of the event loop: a batch of records becomes one write
    if (!this.inflight && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.kick);
    }
    return true;
  }

  private scheduled = false;
  /** queued lines already turned into bytes, with how many lines each chunk holds */
  private chunks: Buffer[] = [];
  private chunkLines: number[] = [];
  private packedBytes = 0;

  private pack(): void {
    if (this.queue.length === 0) return;
    this.queue.push('');
    const buf = Buffer.from(this.queue.join('\n'));
    this.chunks.push(buf);
    this.chunkLines.push(this.queue.length - 1);
    this.queue = [];
    this.packedBytes = this.queuedBytes;
  }

  private readonly kick = (): void => {
    this.scheduled = false;
    if (!this.inflight) this.pump();
  };

  private pump(): void {
    this.pack();
    if (this.chunks.length === 0) {
      this.inflight = false;
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    this.inflight = true;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const lines = this.chunkLines.reduce((a, b) => a + b, 0);
    this.chunks = [];
    this.chunkLines = [];
    this.queuedBytes = 0;
    this.packedBytes = 0;
    if (this.maxBytes > 0 && this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    this.writeAll(buf, 0, (err) => {
      if (err) {
        this.s.errors++;
        this.s.dropped += lines;
        this.lastError = err;
      } else {
        this.s.written += lines;
        this.size += buf.length;
      }
      this.s.pending -= lines;
      this.pump();
    });
  }

  private writeAll(buf: Buffer, off: number, done: (err: Error | null) => void): void {
    fsWrite(this.fd, buf, off, buf.length - off, null, (err, n) => {
      if (err) return done(err);
      if (off + n < buf.length) return this.writeAll(buf, off + n, done);
      done(null);
    });
  }

  private rotate(): void {
    const p = this.opts.path;
    try {
      closeSync(this.fd);
      if (this.keep <= 0) {
        unlinkSync(p);
      } else {
        for (let i = this.keep - 1; i >= 1; i--) if (existsSync(`${p}.${i}`)) renameSync(`${p}.${i}`, `${p}.${i + 1}`);
        renameSync(p, `${p}.1`);
      }
    } catch (e) {
      this.s.errors++;
      this.lastError = e as Error;
    }
    this.fd = openSync(p, 'a+', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  flush(): Promise<void> {
    if (!this.inflight && !this.scheduled && this.queue.length === 0 && this.chunks.length === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  async close(): Promise<void> {
    await this.flush();
    if (!this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
  }

  stats(): SinkStats {
    return { ...this.s };
  }
}

/**
 * If the file does not end with a newline (a crash cut a write short), cut it
 * back to the last newline. Returns the resulting size.
 */
export function repairPartialLine(fd: number): number {
  const size = fstatSync(fd).size;
  if (size === 0) return 0;
  const chunk = Buffer.alloc(Math.min(size, 65536));
  let end = size;
  for (;;) {
    const start = Math.max(0, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - start, start);
    if (end === size && chunk[n - 1] === 0x0a) return size; // intact
    const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (nl >= 0) {
      ftruncateSync(fd, start + nl + 1);
      return start + nl + 1;
    }
    if (start === 0) {
      ftruncateSync(fd, 0);
      return 0;
    }
    end = start;
  }
}
