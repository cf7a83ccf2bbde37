/**
 * JSONL audit log: one JSON object per line, appended, rotated by size
 * (FILE → FILE.1 → … → FILE.<keep>). Lines are only ever written whole; a file
 * left with a partial last line by a crash is cut back to its last newline on
 * open. Writes are asynchronous and bounded by `maxPendingBytes`: beyond that,
 * records are dropped and counted.
 *
 * Faults (disk full, I/O errors): a write that fails is cut back to the last
 * whole line it wrote (ftruncate), so no partial record ever sits between whole
 * ones; the lines not written are kept and retried every RETRY_MS, in order,
 * while new records queue behind them up to the same bound (beyond it they are
 * dropped and counted). Writing resumes by itself when the disk has room again.
 * The episode is reported once (onFault: failing, then resumed with the count
 * lost), and counted once in `errors`.
 *
 * One writer per file: a lock file ("FILE.lock", flock, holds the pid) refuses
 * a second agent. The log and its rotations are 0600, directories made 0700.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, existsSync, unlinkSync } from 'node:fs';
import { write as fsWrite } from 'node:fs';
import { acquireLock, type FileLock } from '../kernel/lock.js';
import { ensurePrivateFile } from '../store/files.js';
import type { SinkFaultHandler } from './fault.js';
import type { Sink, SinkRecord, SinkStats } from './sink.js';

/** Retry period of a failed write. */
export const RETRY_MS = 500;

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
  /** told once when writes start failing and once when they resume */
  onFault?: SinkFaultHandler;
  /** take the file's lock (default true) */
  lock?: boolean;
  /** adds fields to each line and lines of its own (the audit chain, src/sinks/audit-chain.ts) */
  hook?: JsonlHook;
}

/** What a module that extends every line (src/sinks/audit-chain.ts) is told and asked. */
export interface JsonlHook {
  /** the file is open (`cut` bytes of a cut last line removed); returns bytes it appended; `poke` asks for a write turn */
  opened(fd: number, size: number, cut: number, poke: () => void): number;
  /** bytes of each line it adds to a record's JSON */
  readonly lineOverhead: number;
  /** the bytes written for records' JSON, in order: each a line, newline-terminated */
  pack(jsons: string[]): Buffer;
  /** whole lines to write after the batch about to be written ('' = none) */
  tail(): string;
  /** a batch reached the file at `fd` at offset `at` (`bytes`: what was written, the sink is done with them) */
  written(fd: number, bytes: Buffer, at: number): void;
  /**
   * Asked before each write (block-sealing hooks, src/sinks/audit-block.ts): a line
   * to write alone first (its seal, at a block boundary), '' for none, null to
   * hold the queue until the hook pokes (its seal is not ready yet). `rotating`:
   * the next write would rotate the file; `held`: a failed write is being retried.
   */
  before?(s: { rotating: boolean; held: boolean }): string | null;
  /** the whole lines `bytes` reached the file before a write failed (the rest is retried) */
  wrotePart?(bytes: Buffer, fd: number, at: number): void;
  /** the sink closed its file (after drained) */
  closed?(): void;
  /** the sink is closing: last lines now (via poke) */
  closing(): void;
  /** resolves when its own work after the last write is done; true: it asked for one more write turn (flush again) */
  drained(): Promise<boolean>;
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
  private closing = false;
  private readonly lock: FileLock | null;
  /** lines a failed write did not write, retried first */
  private held: { buf: Buffer; lines: number } | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** the file may end in a partial line a failed cut left: cut before writing */
  private dirty = false;
  /** the failure episode under way */
  private failing: { since: number; droppedBefore: number } | null = null;
  lastError: Error | null = null;

  constructor(readonly opts: JsonlSinkOptions) {
    this.name = opts.name ?? `jsonl:${opts.path}`;
    this.maxBytes = opts.maxBytes ?? 100 * 1024 * 1024;
    this.keep = opts.keep ?? 5;
    this.maxPending = opts.maxPendingBytes ?? 64 * 1024 * 1024;
    this.kinds = new Set(opts.kinds ?? ['event']);
    ensurePrivateFile(opts.path);
    this.lock = opts.lock === false ? null : acquireLock(opts.path);
    try {
      this.fd = openSync(opts.path, 'a+');
      const whole = fstatSync(this.fd).size;
      this.size = repairPartialLine(this.fd);
      if (opts.hook) this.size += opts.hook.opened(this.fd, this.size, whole - this.size, () => this.poke());
    } catch (e) {
      this.lock?.release();
      throw e;
    }
  }

  write(rec: SinkRecord): boolean {
    if (!this.kinds.has(rec.kind)) return true;
    const n = rec.json.length + 1 + (this.opts.hook?.lineOverhead ?? 0);
    if (this.closed || this.queuedBytes + (this.held?.buf.length ?? 0) + n > this.maxPending) {
      this.s.dropped++;
      return false;
    }
    this.queue.push(rec.json);
    this.queuedBytes += n;
    this.s.pending++;
    // text becomes bytes every 64 KiB: the strings die young (no promotion, no major GC)
    if (this.queuedBytes - this.packedBytes >= 65536) this.pack();
    // one write per turn of the event loop: a batch of records becomes one write
    if (!this.inflight && !this.scheduled && !this.retryTimer) {
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
    const lines = this.queue.length;
    const buf = this.opts.hook ? this.opts.hook.pack(this.queue) : (this.queue.push(''), Buffer.from(this.queue.join('\n')));
    this.chunks.push(buf);
    this.chunkLines.push(lines);
    this.queue = [];
    this.packedBytes = this.queuedBytes;
  }

  private poke(): void {
    if (!this.closed && !this.inflight && !this.scheduled && !this.retryTimer) {
      this.scheduled = true;
      setImmediate(this.kick);
    }
  }

  private readonly kick = (): void => {
    this.scheduled = false;
    if (!this.inflight && !this.retryTimer) this.pump();
  };

  private pump(): void {
    this.pack();
    const hook = this.opts.hook;
    if (hook?.before) {
      let pending = this.held?.buf.length ?? 0;
      for (const c of this.chunks) pending += c.length;
      const pre = hook.before({ rotating: this.maxBytes > 0 && this.size > 0 && this.size + pending > this.maxBytes, held: this.held !== null });
      if (pre === null) {
        // the hook pokes when it is ready; the queue waits (bounded by maxPendingBytes as always)
        this.inflight = false;
        return;
      }
      // a block's seal goes alone, at the end of the file its block is in (never rotated away from it)
      if (pre) return this.writeOwn(Buffer.from(pre));
    }
    const extra = hook?.tail();
    if (extra) {
      this.chunks.push(Buffer.from(extra));
      this.chunkLines.push(1);
      this.s.pending++;
    }
    if (this.chunks.length === 0 && !this.held) {
      this.inflight = false;
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    this.inflight = true;
    // lines held from a failed write go first
    if (this.held) {
      this.chunks.unshift(this.held.buf);
      this.chunkLines.unshift(this.held.lines);
      this.held = null;
    }
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const lines = this.chunkLines.reduce((a, b) => a + b, 0);
    this.chunks = [];
    this.chunkLines = [];
    this.queuedBytes = 0;
    this.packedBytes = 0;
    try {
      if (this.dirty) this.cutTo(this.size);
      if (this.fd < 0) this.reopen();
      if (this.maxBytes > 0 && this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    } catch (e) {
      this.failed(buf, lines, 0, e as Error);
      return;
    }
    const base = this.size;
    this.writeAll(buf, 0, (err, written) => {
      if (err) {
        this.failed(buf, lines, written, err, base);
        return;
      }
      this.s.written += lines;
      this.s.pending -= lines;
      this.size = base + buf.length;
      if (this.failing) {
        const lost = this.s.dropped - this.failing.droppedBefore;
        const ms = Date.now() - this.failing.since;
        this.failing = null;
        this.opts.onFault?.({ sink: this.name, state: 'resumed', lost, ms });
      }
      this.opts.hook?.written(this.fd, buf, base);
      this.pump();
    });
  }

  /** A hook's own line, written alone before the queue, into the current file (no rotation before it). */
  private writeOwn(buf: Buffer): void {
    this.inflight = true;
    this.s.pending++;
    try {
      if (this.dirty) this.cutTo(this.size);
      if (this.fd < 0) this.reopen();
    } catch (e) {
      this.failed(buf, 1, 0, e as Error);
      return;
    }
    const base = this.size;
    this.writeAll(buf, 0, (err, written) => {
      if (err) {
        this.failed(buf, 1, written, err, base);
        return;
      }
      this.s.written++;
      this.s.pending--;
      this.size = base + buf.length;
      this.opts.hook?.written(this.fd, buf, base);
      this.pump();
    });
  }

  /**
   * A write failed after `written` bytes: cut the file back to the last whole
   * line written, keep the rest for a retry (or drop and count it when closing).
   */
  private failed(buf: Buffer, lines: number, written: number, err: Error, base = this.size): void {
    const good = written > 0 ? buf.lastIndexOf(0x0a, written - 1) + 1 : 0;
    let goodLines = 0;
    for (let i = buf.indexOf(0x0a); i >= 0 && i < good; i = buf.indexOf(0x0a, i + 1)) goodLines++;
    this.size = base + good;
    if (written > 0) {
      try {
        this.cutTo(this.size);
      } catch {
        this.dirty = true; // cut again before the next write
      }
    }
    this.s.written += goodLines;
    this.s.pending -= goodLines;
    if (good > 0) this.opts.hook?.wrotePart?.(buf.subarray(0, good), this.fd, base);
    this.lastError = err;
    if (!this.failing) {
      this.failing = { since: Date.now(), droppedBefore: this.s.dropped };
      this.s.errors++;
      this.opts.onFault?.({ sink: this.name, state: 'failing', error: err, lost: 0 });
    }
    const rest = good > 0 ? buf.subarray(good) : buf;
    const restLines = lines - goodLines;
    if (this.closing) {
      this.s.dropped += restLines;
      this.s.pending -= restLines;
      this.pump();
      return;
    }
    this.held = { buf: rest, lines: restLines };
    this.inflight = false;
    this.retryTimer = setTimeout(this.retry, RETRY_MS);
    this.retryTimer.unref();
  }

  private readonly retry = (): void => {
    this.retryTimer = null;
    if (!this.inflight) this.pump();
  };

  /** Cut the file to `size` bytes (a failed write's partial line). */
  private cutTo(size: number): void {
    if (this.fd < 0) return;
    if (fstatSync(this.fd).size > size) ftruncateSync(this.fd, size);
    this.dirty = false;
  }

  private writeAll(buf: Buffer, off: number, done: (err: Error | null, written: number) => void): void {
    fsWrite(this.fd, buf, off, buf.length - off, null, (err, n) => {
      if (err) return done(err, off);
      if (off + n < buf.length) return this.writeAll(buf, off + n, done);
      done(null, buf.length);
    });
  }

  private reopen(): void {
    ensurePrivateFile(this.opts.path);
    this.fd = openSync(this.opts.path, 'a+');
    this.size = repairPartialLine(this.fd);
  }

  private rotate(): void {
    const p = this.opts.path;
    closeSync(this.fd);
    this.fd = -1;
    try {
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
    // a reopen that fails is a failed write: retried like one
    this.reopen();
  }

  flush(): Promise<void> {
    if (!this.inflight && !this.scheduled && !this.held && this.queue.length === 0 && this.chunks.length === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Write what is pending (one last try when writes are failing: what fails is dropped and counted), then close. */
  async close(): Promise<void> {
    this.closing = true;
    this.opts.hook?.closing();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (!this.inflight) this.pump();
    }
    await this.flush();
    while (await this.opts.hook?.drained()) await this.flush();
    if (!this.closed) {
      this.closed = true;
      if (this.fd >= 0) closeSync(this.fd);
      this.lock?.release();
      this.opts.hook?.closed?.();
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
