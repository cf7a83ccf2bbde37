/**
 * The agent's outbox: a bounded, append-only queue of batch messages on disk,
 * replayed in order. Every batch enters it before it is published and leaves when
 * the server has acknowledged it (and everything before it). A batch goes to the
 * disk only if it is still unacknowledged `writeDelayMs` after it entered (default
 * 500 ms; 0 = at once): while the server keeps up, batches are acknowledged within
 * milliseconds and never touch the disk; while it is away or slow, everything it
 * has not taken is on disk half a second later.
 *
 * Layout (one directory):
 *   meta.json               {"epoch": "...", "acked": N}   all batches <= N acknowledged
 *   reserved                R: seqs up to R may have been handed out (and published)
 *   <first seq, 16 digits>.seg   records, appended; a new segment every segmentBytes
 * Record:
 *   u32le len  (bytes after this field)
 *   u32le crc32 of the bytes after this field
 *   u16le header length, header JSON {seq, s (subject), id (Nats-Msg-Id), k (kind), n (records), t0}
 *   body (the NDJSON batch)
 *
 * Bounds: `maxBytes` on disk (a batch that would pass it is dropped and counted:
 * newest first, so what is kept is a gap-free prefix); `maxUnwrittenBytes` waiting
 * for the disk (same); `memBytes` of recent batches kept in memory so a live
 * sender never reads the disk back.
 * A crash can leave a cut record at the end of the last segment: it is cut off on
 * open. A record whose checksum fails is skipped on replay and counted. Writes are
 * asynchronous (write() of the sink never waits for the disk); they are not
 * fsync'ed: a power loss can take the last seconds; a crash of the agent can take
 * the batches younger than `writeDelayMs` that the server had not acknowledged.
 * Batch seqs are per spool and never reused, across restarts too: a batch acknowledged
 * before it reached the disk leaves no trace there, so `reserved` reserves seqs ahead
 * (written, synchronously, before a seq beyond it is handed out) and a restart
 * continues after the reservation. Nats-Msg-Id is host.epoch.seq, so a new spool (wiped
 * state) cannot collide with ids still in the server's de-duplication window either.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, ftruncateSync, unlinkSync, writeFileSync, writev } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { RecordKind } from './names.js';

export interface SpoolRecord {
  seq: number;
  subject: string;
  msgId: string;
  kind: RecordKind;
  /** events or alerts in the batch */
  count: number;
  /** epoch ms the first record was accepted */
  t0: number;
  body: Buffer;
}

export interface SpoolOptions {
  dir: string;
  /** prefix of every Nats-Msg-Id (the host id) */
  idPrefix: string;
  maxBytes: number;
  segmentBytes?: number;
  /** recent batches kept in memory for the sender */
  memBytes?: number;
  /** batches accepted but not yet written (a slow or stalled disk) before batches are dropped */
  maxUnwrittenBytes?: number;
  /**
   * a batch is written to disk only if still unacknowledged this long after append
   * (default 500; 0 = every batch at once); also written at once past `memBytes`
   * of batches waiting, and on flush()/close()
   */
  writeDelayMs?: number;
  now?: () => number;
  onError?: (e: Error) => void;
}

export interface SpoolStats {
  /** bytes on disk (and queued for it) */
  bytes: number;
  /** batches not yet acknowledged */
  backlog: number;
  appended: number;
  acked: number;
  /** batches refused because the spool was full, and the records in them */
  droppedBatches: number;
  droppedRecords: number;
  /** batches lost to a failed checksum or a failed write */
  corrupt: number;
  writeErrors: number;
}

interface Segment {
  first: number;
  last: number;
  path: string;
  bytes: number;
  sealed: boolean;
  fd: number | null;
  queued: number;
}

const HDR = 10;
/** seqs reserved at a time (one small synchronous write per this many batches) */
export const RESERVE = 4096;

/** Fill in a framed record's checksum (done when it goes to disk, not before). */
export function checksumRecord(buf: Buffer): void {
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4);
}

/** The record's bytes; `body` may be the batch's text, written in place (one copy). */
export function encodeRecord(r: Omit<SpoolRecord, 'body'> & { body: Buffer | string }, checksum = true): { buf: Buffer; body: Buffer } {
  const hdr = Buffer.from(JSON.stringify({ seq: r.seq, s: r.subject, id: r.msgId, k: r.kind, n: r.count, t0: r.t0 }));
  const bodyLen = typeof r.body === 'string' ? Buffer.byteLength(r.body) : r.body.length;
  const buf = Buffer.allocUnsafe(HDR + hdr.length + bodyLen);
  buf.writeUInt32LE(buf.length - 4, 0);
  buf.writeUInt16LE(hdr.length, 8);
  hdr.copy(buf, HDR);
  if (typeof r.body === 'string') buf.write(r.body, HDR + hdr.length, 'utf8');
  else r.body.copy(buf, HDR + hdr.length);
  if (checksum) checksumRecord(buf);
  return { buf, body: buf.subarray(HDR + hdr.length) };
}

/**
 * Room a batch body keeps free in front of it (FleetPublisher builds batches so) for
 * the record's length, checksum and header: the record is then framed around the
 * body where it lies, without copying the body.
 */
export const RECORD_HEADROOM = 512;

/**
 * The record framed in place: `buf[start, end)` is the body, `buf[0, start)` is free.
 * Falls back to a copy (encodeRecord) when the header does not fit in front.
 */
export function encodeRecordInPlace(r: Omit<SpoolRecord, 'body'>, buf: Buffer, start: number, end: number, checksum = true): { buf: Buffer; body: Buffer } {
  const hdr = JSON.stringify({ seq: r.seq, s: r.subject, id: r.msgId, k: r.kind, n: r.count, t0: r.t0 });
  const hl = Buffer.byteLength(hdr);
  const at = start - hl - HDR;
  if (at < 0) return encodeRecord({ ...r, body: buf.subarray(start, end) }, checksum);
  buf.writeUInt32LE(end - at - 4, at);
  buf.writeUInt16LE(hl, at + 8);
  buf.write(hdr, at + HDR, 'utf8');
  const rec = buf.subarray(at, end);
  if (checksum) checksumRecord(rec);
  return { buf: rec, body: buf.subarray(start, end) };
}

/** Parse records from a segment's bytes; stops at the first cut or corrupt record. */
export function decodeRecords(buf: Buffer): { records: SpoolRecord[]; end: number; corrupt: boolean } {
  const records: SpoolRecord[] = [];
  let off = 0;
  while (off + HDR <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < HDR - 4) return { records, end: off, corrupt: true };
    if (off + 4 + len > buf.length) return { records, end: off, corrupt: false }; // cut short by a crash
    const payload = buf.subarray(off + 8, off + 4 + len);
    if (crc32(payload) !== buf.readUInt32LE(off + 4)) return { records, end: off, corrupt: true };
    const hl = buf.readUInt16LE(off + 8);
    let h: { seq: number; s: string; id: string; k: RecordKind; n: number; t0: number };
    try {
      h = JSON.parse(buf.toString('utf8', off + HDR, off + HDR + hl));
    } catch {
      return { records, end: off, corrupt: true };
    }
    records.push({ seq: h.seq, subject: h.s, msgId: h.id, kind: h.k, count: h.n, t0: h.t0, body: buf.subarray(off + HDR + hl, off + 4 + len) });
    off += 4 + len;
  }
  return { records, end: off, corrupt: false };
}

/** `path` holds `text` now, whole (written beside it, then renamed over it), owner-only. */
function replaceFileSync(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

const segName = (first: number) => `${String(first).padStart(16, '0')}.seg`;

export class Spool {
  readonly epoch: string;
  private readonly segs: Segment[] = [];
  private readonly mem = new Map<number, SpoolRecord>();
  /** batches whose write failed: in memory only, never evicted */
  private readonly pinned = new Set<number>();
  private memUsed = 0;
  private readonly memMax: number;
  private readonly segMax: number;
  private acked = 0;
  private readonly ackedAbove = new Set<number>();
  private _last = 0;
  private bytes = 0;
  private unwritten = 0;
  /** every batch up to this one is written (or failed, counted) or was skipped */
  private writtenSeq = 0;
  private queue: Array<{ seg: Segment; buf: Buffer; seq: number; due: number }> = [];
  private writing = false;
  /** flush() waiting: write what is queued now, whatever its delay */
  private forceWrite = false;
  private delayTimer: NodeJS.Timeout | null = null;
  private readonly delay: number;
  private readonly now: () => number;
  /** seqs up to this one may have been handed out (written to the `reserved` file first) */
  private reserved = 0;
  /** seqs (lo..hi) used by a run before a restart and not on disk: nothing to send */
  private gap: { lo: number; hi: number } | null = null;
  private release: ((buf: ArrayBuffer) => void) | null = null;
  private waiters: Array<() => void> = [];
  /**
   * the segment read last: its records; `upTo` = writtenSeq when it was read (what is
   * on disk up to there is final); `cutAfter` = the last good record's seq if a corrupt
   * record cut the rest off
   */
  private cache: { seg: Segment; recs: Map<number, SpoolRecord>; upTo: number; cutAfter: number | null } | null = null;
  private metaTimer: NodeJS.Timeout | null = null;
  private metaWriting: Promise<void> | null = null;
  private closed = false;
  private s: SpoolStats = { bytes: 0, backlog: 0, appended: 0, acked: 0, droppedBatches: 0, droppedRecords: 0, corrupt: 0, writeErrors: 0 };

  private constructor(private readonly opts: SpoolOptions, epoch: string) {
    this.epoch = epoch;
    this.segMax = opts.segmentBytes ?? Math.max(64 * 1024, Math.min(8 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
    this.memMax = opts.memBytes ?? 8 * 1024 * 1024;
    this.delay = opts.writeDelayMs ?? 500;
    this.now = opts.now ?? Date.now;
  }

  /** Open (or create) the spool in `dir`: a synchronous scan of the last segment only. */
  static open(opts: SpoolOptions): Spool {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    let meta: { epoch?: unknown; acked?: unknown } = {};
    const metaPath = join(opts.dir, 'meta.json');
    if (existsSync(metaPath)) {
      try {
        meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      } catch (e) {
        opts.onError?.(new Error(`spool ${metaPath} unreadable (${(e as Error).message}): starting a new epoch`));
      }
    }
    const epoch = typeof meta.epoch === 'string' && /^[a-z0-9]{1,32}$/.test(meta.epoch) ? meta.epoch : `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const sp = new Spool(opts, epoch);
    sp.acked = typeof meta.acked === 'number' && Number.isSafeInteger(meta.acked) && meta.acked >= 0 ? meta.acked : 0;
    const names = readdirSync(opts.dir).filter((n) => /^\d{16}\.seg$/.test(n)).sort();
    for (let i = 0; i < names.length; i++) {
      const path = join(opts.dir, names[i]!);
      const first = Number(names[i]!.slice(0, 16));
      const next = i + 1 < names.length ? Number(names[i + 1]!.slice(0, 16)) : null;
      let bytes = statSync(path).size;
      let last: number;
      if (next !== null) {
        last = next - 1;
      } else {
        // the last segment: find its last record, cut a torn tail
        const buf = readFileSync(path);
        const d = decodeRecords(buf);
        if (d.end < buf.length) {
          const fd = openSync(path, 'r+');
          ftruncateSync(fd, d.end);
          closeSync(fd);
          bytes = d.end;
          if (d.corrupt) sp.s.corrupt++;
        }
        last = d.records.length ? d.records[d.records.length - 1]!.seq : first - 1;
      }
      sp.segs.push({ first, last, path, bytes, sealed: true, fd: null, queued: 0 });
      sp.bytes += bytes;
    }
    const onDisk = Math.max(sp.acked, sp.segs.length ? sp.segs[sp.segs.length - 1]!.last : 0);
    let reserved = onDisk;
    const resPath = join(opts.dir, 'reserved');
    if (existsSync(resPath)) {
      const r = Number(readFileSync(resPath, 'utf8').trim());
      if (Number.isSafeInteger(r) && r > onDisk) reserved = r;
      else if (!Number.isSafeInteger(r)) opts.onError?.(new Error(`spool ${resPath} unreadable: continuing after the last batch on disk (${onDisk})`));
    }
    // seqs after the last batch on disk, up to the reservation, may have been published
    // by the last run (acknowledged before they reached the disk): never reused, and
    // nothing of them to send
    if (reserved > onDisk) {
      if (sp.acked >= onDisk) sp.acked = reserved;
      else sp.gap = { lo: onDisk + 1, hi: reserved };
    }
    sp._last = reserved;
    sp.reserved = reserved;
    sp.writtenSeq = sp._last;
    sp.deleteAcked();
    if (!existsSync(metaPath) || sp.acked === reserved) sp.saveMetaSync();
    return sp;
  }

  /**
   * `fn` gets the buffer under a record's body once neither the spool nor the sender
   * needs it (acknowledged, and written or skipped): its owner may reuse it.
   */
  releaseTo(fn: (buf: ArrayBuffer) => void): void {
    this.release = fn;
  }

  /** seq of the last batch appended */
  get lastSeq(): number {
    return this._last;
  }

  /** first batch not yet acknowledged */
  get headSeq(): number {
    return this.acked + 1;
  }

  isAcked(seq: number): boolean {
    return seq <= this.acked || this.ackedAbove.has(seq) || (this.gap !== null && seq >= this.gap.lo && seq <= this.gap.hi);
  }

  /**
   * Add a batch; null = refused (spool full, counted). With `bodyStart`, the body is
   * `body.subarray(bodyStart)` and the bytes before it are free for the record's
   * header (RECORD_HEADROOM): the record is framed in place, the body not copied.
   */
  append(p: Omit<SpoolRecord, 'seq' | 'msgId' | 'body'> & { body: Buffer | string; bodyStart?: number }): SpoolRecord | null {
    if (this.closed) return null;
    const seq = this._last + 1;
    const msgId = `${this.opts.idPrefix}.${this.epoch}.${seq}`;
    const meta = { subject: p.subject, kind: p.kind, count: p.count, t0: p.t0, seq, msgId };
    const { buf, body } = p.bodyStart !== undefined && typeof p.body !== 'string' ? encodeRecordInPlace(meta, p.body, p.bodyStart, p.body.length, false) : encodeRecord({ ...meta, body: p.body }, false);
    const rec: SpoolRecord = { subject: p.subject, kind: p.kind, count: p.count, t0: p.t0, seq, msgId, body };
    if (this.bytes + buf.length > this.opts.maxBytes || this.unwritten + buf.length > (this.opts.maxUnwrittenBytes ?? 64 * 1024 * 1024)) {
      this.s.droppedBatches++;
      this.s.droppedRecords += p.count;
      return null;
    }
    if (seq > this.reserved && !this.reserve(seq + RESERVE - 1)) {
      this.s.droppedBatches++;
      this.s.droppedRecords += p.count;
      return null;
    }
    this._last = seq;
    let seg = this.segs[this.segs.length - 1];
    if (!seg || seg.sealed || (seg.bytes > 0 && seg.bytes + buf.length > this.segMax)) {
      if (seg && !seg.sealed) {
        seg.sealed = true;
        if (seg.queued === 0 && seg.fd !== null) {
          closeSync(seg.fd);
          seg.fd = null;
        }
      }
      seg = { first: seq, last: seq - 1, path: join(this.opts.dir, segName(seq)), bytes: 0, sealed: false, fd: null, queued: 0 };
      this.segs.push(seg);
    }
    seg.last = seq;
    seg.bytes += buf.length;
    seg.queued++;
    this.bytes += buf.length;
    this.unwritten += buf.length;
    this.s.appended++;
    this.mem.set(seq, rec);
    this.memUsed += rec.body.length;
    this.queue.push({ seg, buf, seq, due: this.delay > 0 ? this.now() + this.delay : 0 });
    this.pump();
    this.evict();
    return rec;
  }

  /** A batch from memory (or the segment loaded last); undefined = call load(seq). */
  get(seq: number): SpoolRecord | undefined {
    return this.mem.get(seq) ?? this.cache?.recs.get(seq);
  }

  /** Read the segment holding `seq` from disk; null = that batch is lost (corrupt), skip it. */
  async load(seq: number): Promise<SpoolRecord | null> {
    const hit = this.get(seq);
    if (hit) return hit;
    const seg = this.segs.find((s) => s.first <= seq && seq <= s.last);
    if (!seg) return null;
    if (this.cache?.seg !== seg || seq > this.cache.upTo) {
      const upTo = this.writtenSeq;
      let buf: Buffer;
      let unreadable = false;
      try {
        buf = await readFile(seg.path);
      } catch (e) {
        this.opts.onError?.(new Error(`spool ${seg.path}: ${(e as Error).message}`));
        buf = Buffer.alloc(0);
        unreadable = true;
      }
      const d = decodeRecords(buf);
      if (d.corrupt && !unreadable) this.opts.onError?.(new Error(`spool ${seg.path}: corrupt record at byte ${d.end}: the batches after it in this segment are skipped`));
      this.cache = { seg, recs: new Map(d.records.map((r) => [r.seq, r])), upTo, cutAfter: d.corrupt || unreadable ? (d.records.length ? d.records[d.records.length - 1]!.seq : seg.first - 1) : null };
    }
    const r = this.get(seq);
    if (r) return r;
    // not in the segment: lost if a corrupt record cut it off; otherwise never written
    // (the server acknowledged it before its write delay was up): nothing to send
    if (this.cache!.cutAfter !== null && seq > this.cache!.cutAfter) this.s.corrupt++;
    return null;
  }

  /** The server has this batch. */
  ack(seq: number): void {
    if (this.isAcked(seq)) return;
    const r = this.mem.get(seq);
    if (r) {
      this.mem.delete(seq);
      this.memUsed -= r.body.length;
    }
    this.pinned.delete(seq);
    this.s.acked++;
    const written = seq <= this.writtenSeq;
    if (seq === this.acked + 1) {
      this.acked = seq;
      for (;;) {
        if (this.ackedAbove.delete(this.acked + 1)) this.acked++;
        else if (this.gap && this.acked + 1 === this.gap.lo) {
          this.acked = this.gap.hi;
          this.gap = null;
        } else break;
      }
      this.deleteAcked();
      this.scheduleMeta();
    } else {
      this.ackedAbove.add(seq);
    }
    // on disk already: its bytes are free; still waiting for its write: it will not be written
    if (written) {
      if (r) this.release?.(r.body.buffer as ArrayBuffer);
    } else if (!this.writing) this.skipAcked();
  }

  stats(): SpoolStats {
    const gap = this.gap ? this.gap.hi - this.gap.lo + 1 : 0;
    return { ...this.s, bytes: this.bytes, backlog: this._last - this.acked - this.ackedAbove.size - gap };
  }

  /** Everything appended so far and not acknowledged is on disk (or failed, counted) and meta.json is saved. */
  async flush(): Promise<void> {
    if (this.writing || this.queue.length) {
      const done = new Promise<void>((r) => this.waiters.push(r));
      this.writeNow();
      await done;
    }
    await this.saveMeta();
  }

  /** Write what waits for its delay now (the server went away). */
  writeNow(): void {
    if (!this.queue.length) return;
    this.forceWrite = true;
    this.pump();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.stopDelayTimer();
    if (this.metaTimer) clearTimeout(this.metaTimer);
    this.metaTimer = null;
    await this.metaWriting;
    this.saveMetaSync();
    for (const s of this.segs) {
      if (s.fd !== null) closeSync(s.fd);
      s.fd = null;
    }
    this.cache = null;
  }

  private evict(): void {
    for (const [seq, r] of this.mem) {
      if (this.memUsed <= this.memMax || seq > this.writtenSeq) break;
      if (this.pinned.has(seq)) continue;
      this.mem.delete(seq);
      this.memUsed -= r.body.length;
    }
  }

  /** Batches acknowledged before their write leave the head of the queue unwritten. */
  private skipAcked(): void {
    while (this.queue.length && this.skippable(this.queue[0]!.seq)) this.skip(this.queue.shift()!);
    // nothing left to wait for: the delay's timer would wake the agent for nothing
    if (!this.queue.length) this.stopDelayTimer();
  }

  private stopDelayTimer(): void {
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = null;
  }

  /** acknowledged before its write (with a write delay of 0 every batch is written) */
  private skippable(seq: number): boolean {
    return this.delay > 0 && this.isAcked(seq);
  }

  private skip(it: { seg: Segment; buf: Buffer; seq: number }): void {
    const seg = it.seg;
    seg.queued--;
    seg.bytes -= it.buf.length;
    this.bytes -= it.buf.length;
    this.unwritten -= it.buf.length;
    // only called while no write is under way: everything before the head is done
    this.writtenSeq = it.seq;
    this.release?.(it.buf.buffer as ArrayBuffer);
    if (seg.sealed && seg.queued === 0 && seg.fd !== null) {
      closeSync(seg.fd);
      seg.fd = null;
    }
  }

  private pump(): void {
    if (this.writing) return;
    const now = this.now();
    // a batch waits for its delay unless flush()/writeNow() asked, or too much waits in memory
    const waits = (it: { due: number }) => !this.forceWrite && it.due > now && this.unwritten <= this.memMax;
    // the batches due now, from the head of the queue, of one segment; those acknowledged meanwhile are skipped
    const items: typeof this.queue = [];
    let size = 0;
    /** the segment of the batches taken */
    let taken: Segment | null = null;
    while (this.queue.length && items.length < 256 && size < 4 * 1024 * 1024) {
      const it = this.queue[0]!;
      if (this.skippable(it.seq)) {
        this.skip(this.queue.shift()!);
        continue;
      }
      if (waits(it) || (taken !== null && it.seg !== taken)) break;
      taken = it.seg;
      this.queue.shift();
      items.push(it);
      size += it.buf.length;
    }
    if (taken === null) {
      const head = this.queue[0];
      if (head) {
        if (!this.delayTimer) {
          this.delayTimer = setTimeout(() => {
            this.delayTimer = null;
            this.pump();
          }, head.due - now);
          this.delayTimer.unref();
        }
        return;
      }
      this.stopDelayTimer();
      this.forceWrite = false;
      this.deleteAcked();
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    const seg = taken;
    this.writing = true;
    const done = (err: Error | null) => {
      seg.queued -= items.length;
      this.unwritten -= size;
      this.writtenSeq = items[items.length - 1]!.seq;
      if (err) {
        this.s.writeErrors++;
        this.opts.onError?.(new Error(`spool write ${seg.path}: ${err.message} (the batches stay in memory until sent)`));
        // keep them in memory whatever the memory bound says: they exist nowhere else
        for (const it of items) if (this.mem.has(it.seq)) this.pinned.add(it.seq);
      }
      // acknowledged while being written: nobody needs their bytes any more
      for (const it of items) if (this.isAcked(it.seq)) this.release?.(it.buf.buffer as ArrayBuffer);
      if (seg.sealed && seg.queued === 0 && seg.fd !== null) {
        closeSync(seg.fd);
        seg.fd = null;
      }
      this.writing = false;
      this.deleteAcked();
      this.evict();
      this.pump();
    };
    try {
      if (seg.fd === null) seg.fd = openSync(seg.path, 'a', 0o600);
    } catch (e) {
      done(e as Error);
      return;
    }
    // the checksum is computed here: most batches are acknowledged before they would be written
    const bufs = items.map((i) => {
      checksumRecord(i.buf);
      return i.buf;
    });
    const writeAll = (list: Buffer[]) => {
      writev(seg.fd!, list, (err, written) => {
        if (err) return done(err);
        let left = written;
        const rest: Buffer[] = [];
        for (const b of list) {
          if (left >= b.length) left -= b.length;
          else {
            rest.push(b.subarray(left));
            left = 0;
          }
        }
        if (rest.length) writeAll(rest);
        else done(null);
      });
    };
    writeAll(bufs);
  }

  private deleteAcked(): void {
    while (this.segs.length) {
      const s = this.segs[0]!;
      if (!(s.last <= this.acked && s.sealed && s.queued === 0)) break;
      if (s.fd !== null) closeSync(s.fd);
      try {
        unlinkSync(s.path);
      } catch {
        /* already gone */
      }
      if (this.cache?.seg === s) this.cache = null;
      this.bytes -= s.bytes;
      this.segs.shift();
    }
    // an idle, fully acknowledged current segment is sealed so its bytes can go
    const cur = this.segs[this.segs.length - 1];
    if (cur && !cur.sealed && cur.last <= this.acked && cur.queued === 0 && cur.bytes >= this.segMax / 2) {
      cur.sealed = true;
      this.deleteAcked();
    }
  }

  /** Reserve seqs up to `upTo` on disk (synchronously); false = could not. */
  private reserve(upTo: number): boolean {
    const path = join(this.opts.dir, 'reserved');
    try {
      replaceFileSync(path, `${upTo}\n`);
      this.reserved = upTo;
      return true;
    } catch (e) {
      this.s.writeErrors++;
      this.opts.onError?.(new Error(`spool ${path}: ${(e as Error).message} (batches are dropped until seqs can be reserved)`));
      return false;
    }
  }

  private scheduleMeta(): void {
    if (this.metaTimer || this.closed) return;
    // the cursor only says which batches on disk to skip after a restart: with none on
    // disk it has nothing to say (seqs continue after the reservation anyway)
    if (!this.segs.some((s) => s.bytes > 0)) return;
    // the ack cursor on disk may lag by a second: after a crash those batches are sent
    // again and the server's duplicate window drops them
    this.metaTimer = setTimeout(() => {
      this.metaTimer = null;
      void this.saveMeta();
    }, 1000);
    this.metaTimer.unref();
  }

  private async saveMeta(): Promise<void> {
    if (this.metaWriting) await this.metaWriting;
    const path = join(this.opts.dir, 'meta.json');
    const tmp = `${path}.tmp`;
    this.metaWriting = writeFile(tmp, JSON.stringify({ epoch: this.epoch, acked: this.acked }), { mode: 0o600 })
      .then(() => rename(tmp, path))
      .catch((e) => this.opts.onError?.(new Error(`spool meta: ${(e as Error).message}`)))
      .finally(() => {
        this.metaWriting = null;
      });
    await this.metaWriting;
  }

  private saveMetaSync(): void {
    const path = join(this.opts.dir, 'meta.json');
    try {
      replaceFileSync(path, JSON.stringify({ epoch: this.epoch, acked: this.acked }));
    } catch (e) {
      this.opts.onError?.(new Error(`spool meta: ${(e as Error).message}`));
    }
  }
}
