/**
 * The delivery queue every network output shares (syslog, webhook): bounded,
 * batched, retried with exponential backoff and full jitter, and every record
 * that does not arrive is counted by cause.
 *
 * - push() never blocks: a record that does not fit (records or bytes) is
 *   refused and counted `drops.full`.
 * - One batch is in flight at a time, taken from the head of the queue; it
 *   stays there (and counts in the depth) until the transport says it was
 *   delivered. A failed batch is resent as it was — the same records under the
 *   same key, so a receiver can drop a duplicate (Idempotency-Key in the webhook).
 * - The transport rejects with a DeliveryError saying whether a retry can help
 *   (a 4xx answer cannot); any other error is retried. After `maxAttempts`
 *   tries (0 = no limit) or a permanent refusal the batch is dropped and
 *   counted `drops.failed`.
 * - The delay before try n+1 is random in [0, min(maxMs, initialMs·2^(n-1))]
 *   ("full jitter"), at least what the peer asked for (Retry-After), at most maxMs.
 * - close() keeps delivering for `shutdownMs`, then counts what is left as
 *   `drops.shutdown`.
 */
import { randomUUID } from 'node:crypto';
import type { DeliveryStats, Sink, SinkRecord, SinkStats } from './sink.js';

export class DeliveryError extends Error {
  constructor(
    message: string,
    /** false: resending the same batch cannot succeed (e.g. HTTP 400) */
    readonly retryable: boolean,
    /** the peer asked to wait this long (HTTP Retry-After) */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export interface Batch {
  /** the records, formatted by the output */
  items: string[];
  /** stable over the retries of this batch */
  key: string;
  /** 1 for the first try */
  attempt: number;
}

export interface Transport {
  /** deliver a batch; reject when it was not (DeliveryError says whether to retry) */
  send(batch: Batch): Promise<void>;
  close(): Promise<void> | void;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** tries per batch before it is dropped (0 = keep trying) */
  maxAttempts: number;
}

export interface DeliveryOptions {
  /** records held at most (in flight included) */
  maxRecords: number;
  /** bytes held at most */
  maxBytes: number;
  batchMaxRecords: number;
  batchMaxBytes: number;
  /** how long a lone record waits for others to join its batch (0 = next turn of the event loop) */
  lingerMs: number;
  backoff: BackoffOptions;
  /** how long close() keeps delivering */
  shutdownMs: number;
  /** [0,1) source for the jitter (tests) */
  random?: () => number;
  onError?: (err: Error, batch: Batch) => void;
}

/** The delay before the next try after `attempt` failed tries (full jitter). */
export function backoffDelay(b: BackoffOptions, attempt: number, random: () => number = Math.random, retryAfterMs = 0): number {
  const cap = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt - 1, 30));
  return Math.min(b.maxMs, Math.max(retryAfterMs, Math.floor(random() * cap)));
}

export class DeliveryQueue {
  private items: string[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  /** the batch in flight (or waiting for its retry): the first `n` records */
  private cur: Batch | null = null;
  private curBytes = 0;
  private sending = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private closed = false;
  private waiters: Array<() => void> = [];
  private readonly st: DeliveryStats = { queued: 0, sent: 0, retries: 0, queueDepth: 0, queueBytes: 0, drops: { full: 0, failed: 0, shutdown: 0 } };
  errors = 0;
  lastError: Error | null = null;

  constructor(
    private readonly transport: Transport,
    private readonly opts: DeliveryOptions,
  ) {}

  get depth(): number {
    return this.items.length - this.head;
  }

  /** Queue one formatted record; false = refused and counted (full or closed). */
  push(item: string): boolean {
    const n = Buffer.byteLength(item);
    if (this.closed) {
      this.st.drops.shutdown++;
      return false;
    }
    if (this.depth >= this.opts.maxRecords || this.bytes + n > this.opts.maxBytes) {
      this.st.drops.full++;
      return false;
    }
    this.items.push(item);
    this.sizes.push(n);
    this.bytes += n;
    this.st.queued++;
    if (!this.sending && !this.timer && !this.immediate) this.schedule();
    return true;
  }

  /** Idle with records waiting: send at once when a batch is full, else after the linger. */
  private schedule(): void {
    const full = this.depth >= this.opts.batchMaxRecords || this.bytes >= this.opts.batchMaxBytes;
    if (full || this.opts.lingerMs <= 0 || this.closed) {
      this.immediate = setImmediate(this.pump);
    } else {
      this.timer = setTimeout(this.pump, this.opts.lingerMs);
      this.timer.unref();
    }
  }

  private readonly pump = (): void => {
    this.timer = null;
    this.immediate = null;
    if (this.sending) return;
    if (!this.cur) {
      if (this.depth === 0) {
        for (const w of this.waiters.splice(0)) w();
        return;
      }
      // a new batch from the head: at least one record, however large
      let k = this.head;
      let b = 0;
      while (k < this.items.length && k - this.head < this.opts.batchMaxRecords && (k === this.head || b + this.sizes[k]! <= this.opts.batchMaxBytes)) b += this.sizes[k++]!;
      this.cur = { items: this.items.slice(this.head, k), key: randomUUID(), attempt: 1 };
      this.curBytes = b;
    }
    const batch = this.cur;
    this.sending = true;
    let p: Promise<void>;
    try {
      p = this.transport.send(batch);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      () => this.settle(batch, null),
      (e: unknown) => this.settle(batch, e instanceof Error ? e : new Error(String(e))),
    );
  };

  private settle(batch: Batch, err: Error | null): void {
    this.sending = false;
    if (batch !== this.cur) return; // counted at shutdown
    if (!err) {
      this.st.sent += batch.items.length;
      this.take();
      this.pump();
      return;
    }
    this.errors++;
    this.lastError = err;
    this.opts.onError?.(err, batch);
    const retryable = !(err instanceof DeliveryError) || err.retryable;
    const max = this.opts.backoff.maxAttempts;
    if (!retryable || (max > 0 && batch.attempt >= max)) {
      this.st.drops.failed += batch.items.length;
      this.take();
      this.pump();
      return;
    }
    const delay = backoffDelay(this.opts.backoff, batch.attempt, this.opts.random, err instanceof DeliveryError ? err.retryAfterMs : 0);
    batch.attempt++;
    this.st.retries++;
    this.timer = setTimeout(this.pump, delay);
    this.timer.unref();
  }

  /** Remove the current batch from the head. */
  private take(): void {
    const n = this.cur!.items.length;
    this.head += n;
    this.bytes -= this.curBytes;
    this.cur = null;
    this.curBytes = 0;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  /** Resolves when every record accepted so far was delivered or dropped. */
  flush(): Promise<void> {
    if (this.depth === 0 && !this.sending) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Stop accepting; keep delivering for up to `shutdownMs`; count the rest. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.depth > 0 && this.opts.shutdownMs > 0) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([this.flush(), new Promise<void>((r) => (t = setTimeout(r, this.opts.shutdownMs)))]);
      clearTimeout(t);
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    this.st.drops.shutdown += this.depth;
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
    this.cur = null;
    for (const w of this.waiters.splice(0)) w();
    await this.transport.close();
  }

  stats(): DeliveryStats {
    return { ...this.st, queueDepth: this.depth, queueBytes: this.bytes, drops: { ...this.st.drops } };
  }

  /** Total records lost (every cause). */
  dropped(): number {
    const d = this.st.drops;
    return d.full + d.failed + d.shutdown;
  }
}

/**
 * A Sink over a DeliveryQueue: each record is formatted once when written
 * (so its time is when vigil saw it, not when it was delivered) and queued.
 */
export class QueuedSink implements Sink {
  constructor(
    readonly name: string,
    private readonly queue: DeliveryQueue,
    private readonly format: (rec: SinkRecord) => string,
  ) {}

  write(rec: SinkRecord): boolean {
    return this.queue.push(this.format(rec));
  }

  flush(): Promise<void> {
    return this.queue.flush();
  }

  close(): Promise<void> {
    return this.queue.close();
  }

  stats(): SinkStats {
    const d = this.queue.stats();
    return { written: d.sent, dropped: this.queue.dropped(), errors: this.queue.errors, pending: d.queueDepth, delivery: d };
  }
}
