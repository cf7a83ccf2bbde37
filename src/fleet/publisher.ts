/**
 * Records → batches → spool → JetStream, in order, acknowledged.
 *
 * add() appends a record's JSON to the open batch of its subject (host and
 * category/level) and returns at once; a batch is sealed when it holds
 * `batchMaxRecords` or `batchMaxBytes`, or `lingerMs` after its first record, and
 * goes to the spool (disk). The sender publishes spooled batches in spool order
 * with up to `window` in flight, each with its Nats-Msg-Id, and acknowledges them
 * in the spool as the server's acks come back. On a failure or a disconnect it
 * rewinds to the first unacknowledged batch and sends again from there after a
 * backoff (or at once on reconnect); the server drops what it already has
 * (duplicate_window), so each batch is stored once and in order.
 *
 * Drops (all counted, never a blocking call): a record that does not fit the
 * in-memory batch buffers, a batch the spool refuses (full), a batch the server
 * refuses for good (larger than its max message size).
 */
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { H, type RecordKind } from './names.js';
import { RECORD_HEADROOM, type Spool, type SpoolRecord } from './spool.js';

export interface PublisherOptions {
  hostId: string;
  spool: Spool;
  batchMaxRecords?: number;
  batchMaxBytes?: number;
  lingerMs?: number;
  /** records waiting in open batches, in bytes, before records are dropped */
  maxBufferedBytes?: number;
  /** batches in flight (published, not yet acknowledged) */
  window?: number;
  publishTimeoutMs?: number;
  /** called when a publish fails with "no responders" (the stream is missing) */
  ensureStreams?: () => Promise<unknown>;
  onError?: (msg: string, err?: unknown) => void;
  onInfo?: (msg: string) => void;
  now?: () => number;
}

export interface PublisherStats {
  /** records accepted by add() */
  accepted: number;
  /** records acknowledged by the server (duplicates included once) */
  published: number;
  batchesPublished: number;
  duplicates: number;
  /** records dropped: buffers full, spool full, refused by the server */
  dropped: number;
  droppedBuffer: number;
  droppedSpool: number;
  droppedRejected: number;
  /** failed publish attempts (each is retried) */
  errors: number;
  /** records in open batches or spooled and not acknowledged (this run) */
  pending: number;
  connected: boolean;
  lastError: string | null;
}

/**
 * An open batch: the records' UTF-8 written one after the other into `buf` from
 * RECORD_HEADROOM on (each followed by a newline), so sealing frames the spool
 * record around them in place: each record's text is copied once, into this buffer.
 */
interface OpenBatch {
  kind: RecordKind;
  buf: Buffer;
  /** end of the written bytes */
  off: number;
  count: number;
  /** characters taken (what maxBufferedBytes counts) */
  chars: number;
  t0: number;
}

/** smallest batch buffer; sizes are powers of two (a batch outgrowing one moves to the next) */
const BATCH_MIN_BYTES = 16 * 1024;
/** buffers of one size kept for reuse */
const POOL_PER_SIZE = 8;

/**
 * Batch buffers for reuse: a batch's buffer comes back when the spool and the server
 * are done with it (acknowledged, and written or skipped), so at a steady rate the
 * same few buffers carry every batch instead of fresh ones the garbage collector
 * has to find. Only buffers this pool handed out are taken back.
 */
class BatchBuffers {
  private readonly free = new Map<number, Buffer[]>();
  private readonly issued = new WeakSet<ArrayBuffer>();

  take(atLeast: number): Buffer {
    let size = BATCH_MIN_BYTES;
    while (size < atLeast) size *= 2;
    const b = this.free.get(size)?.pop();
    if (b) return b;
    const fresh = Buffer.allocUnsafeSlow(size);
    this.issued.add(fresh.buffer as ArrayBuffer);
    return fresh;
  }

  give(ab: ArrayBuffer): void {
    if (!this.issued.has(ab)) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    if (list.length < POOL_PER_SIZE) list.push(Buffer.from(ab));
    else this.issued.delete(ab);
  }
}

export class FleetPublisher {
  private readonly batches = new Map<string, OpenBatch>();
  /** bytes the last batch of each subject held: the next one starts with room for a bit more */
  private readonly lastSize = new Map<string, number>();
  private readonly bufs = new BatchBuffers();
  private buffered = 0;
  private timer: NodeJS.Timeout | null = null;
  private nc: NatsConnection | null = null;
  private inbox = '';
  private sub: Subscription | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  /** published, waiting for the server's ack: token → batch */
  private readonly pending = new Map<string, { rec: SpoolRecord; gen: number; sentAt: number }>();
  private token = 0;
  private connected = false;
  private gen = 0;
  private sendSeq: number;
  private inflight = 0;
  private failing = false;
  private backoffMs = 250;
  private retryTimer: NodeJS.Timeout | null = null;
  private loading = false;
  private ensured = false;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private unackedRecords = 0;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly linger: number;
  private readonly maxBuffered: number;
  private readonly window: number;
  private readonly now: () => number;
  private s = { accepted: 0, published: 0, batchesPublished: 0, duplicates: 0, droppedBuffer: 0, droppedSpool: 0, droppedRejected: 0, errors: 0, lastError: null as string | null };

  constructor(private readonly opts: PublisherOptions) {
    this.maxRecords = opts.batchMaxRecords ?? 1000;
    this.maxBytes = opts.batchMaxBytes ?? 512 * 1024;
    this.linger = opts.lingerMs ?? 200;
    this.maxBuffered = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.window = opts.window ?? 32;
    this.now = opts.now ?? Date.now;
    this.sendSeq = opts.spool.headSeq;
    opts.spool.releaseTo((ab) => this.bufs.give(ab));
  }

  /** Take one record (never blocks); false = dropped, counted. */
  add(kind: RecordKind, subject: string, json: string): boolean {
    const len = json.length + 1;
    if (this.closed || this.buffered + len > this.maxBuffered) {
      this.s.droppedBuffer++;
      return false;
    }
    this.s.accepted++;
    let b = this.batches.get(subject);
    if (!b) {
      const hint = this.lastSize.get(subject) ?? 0;
      b = { kind, buf: this.bufs.take(RECORD_HEADROOM + Math.max(hint + (hint >> 2), len * 3)), off: RECORD_HEADROOM, count: 0, chars: 0, t0: this.now() };
      this.batches.set(subject, b);
    }
    // a UTF-16 unit is at most 3 bytes of UTF-8; the newline is one
    if (b.off + json.length * 3 + 1 > b.buf.length) {
      const grown = this.bufs.take(b.off + json.length * 3 + 1);
      b.buf.copy(grown, RECORD_HEADROOM, RECORD_HEADROOM, b.off);
      this.bufs.give(b.buf.buffer as ArrayBuffer);
      b.buf = grown;
    }
    b.off += b.buf.write(json, b.off);
    b.buf[b.off++] = 10;
    b.count++;
    b.chars += len;
    this.buffered += len;
    if (b.count >= this.maxRecords || b.off - RECORD_HEADROOM >= this.maxBytes) this.seal(subject, b);
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.sealAll();
      }, this.linger);
    }
    return true;
  }

  /** Seal every open batch into the spool now. */
  sealAll(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const [subject, b] of this.batches) this.seal(subject, b);
  }

  private seal(subject: string, b: OpenBatch): void {
    this.batches.delete(subject);
    this.buffered -= b.chars;
    this.lastSize.set(subject, b.off - RECORD_HEADROOM);
    const rec = this.opts.spool.append({ subject, kind: b.kind, count: b.count, t0: b.t0, body: b.buf.subarray(0, b.off), bodyStart: RECORD_HEADROOM });
    if (!rec) {
      this.bufs.give(b.buf.buffer as ArrayBuffer);
      this.s.droppedSpool += b.count;
      return;
    }
    this.unackedRecords += b.count;
    this.kick();
  }

  /** Use this connection (the sender starts when it is connected). */
  attach(nc: NatsConnection): void {
    this.nc = nc;
    this.inbox = createInbox();
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.onReply(err, msg) });
    const timeout = this.opts.publishTimeoutMs ?? 10_000;
    this.sweeper = setInterval(() => this.sweep(timeout), Math.min(1000, timeout));
    this.sweeper.unref();
    this.setConnected(!nc.isClosed());
    void (async () => {
      for await (const st of nc.status()) {
        if (st.type === 'disconnect') this.setConnected(false);
        else if (st.type === 'reconnect') this.setConnected(true);
      }
    })().catch(() => undefined);
    void nc.closed().then(() => this.setConnected(false));
  }

  private setConnected(up: boolean): void {
    if (up === this.connected) return;
    this.connected = up;
    // whatever is in flight now belongs to a connection that is gone: its acks still
    // count, its failures do not; resend from the first unacknowledged batch
    this.gen++;
    this.inflight = 0;
    this.failing = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.sendSeq = this.opts.spool.headSeq;
    // what the server has not taken goes to disk now, not after its delay
    if (!up) this.opts.spool.writeNow();
    if (up) {
      this.opts.onInfo?.(`connected: sending from batch ${this.sendSeq} (${this.opts.spool.stats().backlog} waiting)`);
      this.backoffMs = 250;
      this.kick();
    }
  }

  private kick(): void {
    if (!this.nc || !this.connected || this.failing) return;
    const spool = this.opts.spool;
    while (this.inflight < this.window && this.sendSeq <= spool.lastSeq) {
      const seq = this.sendSeq;
      if (spool.isAcked(seq)) {
        this.sendSeq++;
        continue;
      }
      const r = spool.get(seq);
      if (!r) {
        this.loadThenKick(seq);
        return;
      }
      this.sendSeq++;
      this.publish(r);
    }
    if (this.inflight === 0 && this.sendSeq > spool.lastSeq) for (const w of this.drainWaiters.splice(0)) w();
  }

  private loadThenKick(seq: number): void {
    if (this.loading) return;
    this.loading = true;
    const gen = this.gen;
    this.opts.spool.load(seq).then(
      (r) => {
        this.loading = false;
        if (!r && gen === this.gen && this.sendSeq === seq) {
          // lost on disk (counted by the spool): nothing to send, move on
          this.opts.spool.ack(seq);
          this.sendSeq++;
        }
        this.kick();
      },
      (e) => {
        this.loading = false;
        this.opts.onError?.('spool read failed', e);
      },
    );
  }

  private publish(r: SpoolRecord): void {
    const gen = this.gen;
    const token = `${gen}_${++this.token}`;
    const h = headers();
    h.set('Nats-Msg-Id', r.msgId);
    h.set(H.host, this.opts.hostId);
    h.set(H.seq, String(r.seq));
    h.set(H.count, String(r.count));
    h.set(H.t0, String(r.t0));
    h.set(H.kind, r.kind);
    this.inflight++;
    this.pending.set(token, { rec: r, gen, sentAt: this.now() });
    try {
      this.nc!.publish(r.subject, r.body, { reply: `${this.inbox}.${token}`, headers: h });
    } catch (e) {
      this.pending.delete(token);
      this.inflight--;
      this.onFail(r, e);
    }
  }

  /** The server's answer to a publish: a PubAck, a JetStream error, or "no responders". */
  private onReply(err: Error | null, msg: Msg): void {
    const token = msg?.subject.slice(this.inbox.length + 1);
    const p = token === undefined ? undefined : this.pending.get(token);
    if (!p) return; // swept (timed out) already, or from a connection that is gone
    this.pending.delete(token!);
    if (p.gen === this.gen) this.inflight--;
    let fail: string | null = err ? String(err.message ?? err) : null;
    let duplicate = false;
    if (!fail) {
      if (msg.headers?.code === 503 || msg.data.length === 0) fail = 'no responders (no stream for this subject?)';
      else {
        try {
          const a = JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString('utf8')) as { error?: { description?: string; code?: number }; duplicate?: boolean };
          if (a.error) fail = `${a.error.description ?? 'JetStream error'}${a.error.code ? ` (${a.error.code})` : ''}`;
          else duplicate = a.duplicate === true;
        } catch {
          fail = 'unreadable publish acknowledgement';
        }
      }
    }
    if (fail) {
      if (p.gen === this.gen) this.onFail(p.rec, new Error(fail));
      return;
    }
    this.acked(p.rec, duplicate);
  }

  private acked(r: SpoolRecord, duplicate: boolean): void {
    if (!this.opts.spool.isAcked(r.seq)) {
      this.opts.spool.ack(r.seq);
      this.unackedRecords -= r.count;
      this.s.published += r.count;
      this.s.batchesPublished++;
      if (duplicate) this.s.duplicates++;
    }
    if (this.failing) this.retryWhenSettled();
    else {
      this.backoffMs = 250;
      this.kick();
    }
  }

  /** Publishes without an answer within the timeout fail (and are sent again). */
  private sweep(timeoutMs: number): void {
    const limit = this.now() - timeoutMs;
    for (const [token, p] of this.pending) {
      if (p.sentAt > limit) continue;
      this.pending.delete(token);
      if (p.gen !== this.gen) continue;
      this.inflight--;
      this.onFail(p.rec, new Error('timeout'));
    }
  }

  private onFail(r: SpoolRecord, err: unknown): void {
    const msg = String((err as Error)?.message ?? err);
    this.s.errors++;
    this.s.lastError = msg;
    if (/maximum (payload|message size)|message size exceeds|max_payload/i.test(msg)) {
      // refused for good: retrying would stop the queue behind it forever
      this.opts.onError?.(`batch ${r.seq} (${r.count} records, ${r.body.length} bytes) refused by the server: ${msg}; dropped`);
      this.opts.spool.ack(r.seq);
      this.unackedRecords -= r.count;
      this.s.droppedRejected += r.count;
      this.kick();
      return;
    }
    if (!this.failing) {
      this.failing = true;
      this.opts.onError?.(`publish failed (batch ${r.seq}): ${msg}; retrying from the first unacknowledged batch`);
      if (!this.ensured && this.opts.ensureStreams && /no responders|503|stream not found/i.test(msg)) {
        this.ensured = true;
        this.opts.ensureStreams().catch((e) => this.opts.onError?.('creating the streams failed', e));
      }
    }
    this.retryWhenSettled();
  }

  /** Once everything of the failed round is settled: rewind and retry after a backoff. */
  private retryWhenSettled(): void {
    if (this.inflight > 0 || this.retryTimer) return;
    const gen = this.gen;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (gen !== this.gen) return;
      this.failing = false;
      this.sendSeq = this.opts.spool.headSeq;
      this.kick();
    }, this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
  }

  /**
   * Seal open batches, then wait up to `timeoutMs` for the server to acknowledge
   * everything; true = nothing left unsent.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.sealAll();
    const spool = this.opts.spool;
    if (spool.stats().backlog === 0) return true;
    if (!this.connected) return false;
    let timer: NodeJS.Timeout | null = null;
    await Promise.race([
      new Promise<void>((r) => {
        this.drainWaiters.push(r);
        this.kick();
      }),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
    return spool.stats().backlog === 0;
  }

  close(): void {
    this.sealAll();
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    if (this.sub && this.nc && !this.nc.isClosed()) this.sub.unsubscribe();
    this.sub = null;
    this.nc = null;
    this.pending.clear();
    this.connected = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  stats(): PublisherStats {
    const dropped = this.s.droppedBuffer + this.s.droppedSpool + this.s.droppedRejected;
    return { ...this.s, dropped, pending: Math.max(0, this.unackedRecords) + this.bufferedRecords(), connected: this.connected };
  }

  private bufferedRecords(): number {
    let n = 0;
    for (const b of this.batches.values()) n += b.count;
    return n;
  }
}
