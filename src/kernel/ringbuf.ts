/**
 * BPF ring buffer consumer in JavaScript, on the Node event loop.
 *
 * The ring is mmap'd into the process (consumer page read-write, producer page
 * and data pages read-only, data mapped twice so a record never wraps) and read
 * with plain loads, the same protocol as libbpf's ringbuf.c and cilium/ebpf's
 * ringbuf reader. libuv polls the map fd (level-triggered epoll); each wake-up
 * drains at most `budget` records so the event loop keeps turning, and the fd
 * stays readable while records remain. No per-record FFI call, no thread hop.
 *
 * Wake-ups: with `intervalMs`, the reader also drains on a timer, so the BPF
 * side can submit records without waking it (BPF_RB_NO_WAKEUP, vigil_wakeup
 * in bpf/include/vigil_bpf.h) and wake it only when the unread data passes a
 * threshold: under load the event loop wakes once per batch, not per record,
 * and a quiet ring is still read within `intervalMs`.
 *
 * Record header (8 bytes): u32 len | BUSY(1<<31) | DISCARD(1<<30), u32 pg_off.
 */
import { koffi, libc, type Ptr } from './ffi.js';
import { BpfError } from './errors.js';
import type { BpfMap } from './map.js';
import { MapType } from './map.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HDR = 8;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;

/**
 * Called for each record with a view over the ring's data area: the record's
 * bytes are view[offset, offset+length). Copy what you keep: the space is given
 * back to the kernel when the batch ends.
 */
export type RecordHandler = (view: DataView, bytes: Uint8Array, offset: number, length: number) => void;

export interface RingBufferStats {
  records: number;
  discarded: number;
  bytes: number;
  wakeups: number;
  /** timer ticks that found records (see intervalMs) */
  timerDrains: number;
  /** timer ticks, with records or not */
  timerTicks: number;
  /** handler threw (e.g. a malformed record): counted, skipped, reported to onHandlerError */
  handlerErrors: number;
  /** drains that met a record still being written and waited for it (see waitBusyMs) */
  busyWaits: number;
  /** of those, waits that gave up after waitBusyMs (the record is read by a later drain) */
  busyTimeouts: number;
}

export interface RingBufferOptions {
  /** records handled per wake-up before yielding to the event loop */
  budget?: number;
  /** told about each error a handler throws; the record is skipped and counted either way */
  onHandlerError?: (err: unknown) => void;
  /** called on each wake-up before the batch is handled (e.g. drain another ring first) */
  beforeBatch?: () => void;
  /** also drain every this many ms (0 = only when woken): the latency bound when the BPF side does not wake per record */
  intervalMs?: number;
  /**
   * The BPF side forces a wake-up for the first record after intervalMs / 2
   * without records (vigil_wakeup's quiet_ns): the timer then stops after a
   * period in which no record was read or written, and starts again at the next
   * wake-up, so an idle ring costs nothing. Without it the timer runs always.
   */
  quietStop?: boolean;
  /**
   * A record reserved before the drain began but still being written (BUSY) ends
   * a drain at once by default; with this, the drain waits up to this many ms for
   * it. For a ring other readers sync with (the process sensor's): such a reader
   * has seen a later record in its own ring, so every record reserved before it in
   * this ring must be read, even one whose producer was preempted mid-write (a
   * vCPU the host descheduled). The kernel commits or discards every reserved
   * record before its program returns, so the wait is bounded by one program's run.
   */
  waitBusyMs?: number;
}

/** The ring's memory as the reader sees it (mmap'd pages; a test builds one over a SharedArrayBuffer). */
export interface RingView {
  /** the data area, mapped twice: a record never wraps */
  data: DataView;
  bytes: Uint8Array;
  consumerPos: BigUint64Array;
  producerPos: BigUint64Array;
  /** data size - 1 (a power of two) */
  mask: number;
}

/**
 * Hand the committed records between the consumer and the producer position to
 * `handler`, up to `max`, then give their space back. Stops at a record still
 * being written (BUSY), or waits up to `waitBusyMs` for it.
 */
export function consumeRing(
  ring: RingView,
  handler: RecordHandler,
  stats: RingBufferStats,
  max: number,
  waitBusyMs: number,
  onHandlerError?: (err: unknown) => void,
): number {
  let cons = Number(ring.consumerPos[0]!);
  const prod = Number(ring.producerPos[0]!);
  const { data, bytes, mask } = ring;
  let n = 0;
  let size = 0;
  while (cons < prod && n < max) {
    const off = cons & mask;
    let len = data.getUint32(off, true);
    if (len & BUSY) {
      // reserved, not yet committed
      if (waitBusyMs <= 0) break;
      stats.busyWaits++;
      const deadline = performance.now() + waitBusyMs;
      while ((len = data.getUint32(off, true)) & BUSY && performance.now() < deadline);
      if (len & BUSY) {
        stats.busyTimeouts++;
        break;
      }
    }
    const sampleLen = len & ~(BUSY | DISCARD) >>> 0;
    const total = (sampleLen + HDR + 7) & ~7;
    if (!(len & DISCARD)) {
      try {
        handler(data, bytes, off + HDR, sampleLen);
      } catch (err) {
        stats.handlerErrors++;
        onHandlerError?.(err);
      }
      n++;
      size += sampleLen;
    } else {
      stats.discarded++;
    }
    cons += total;
  }
  // release the space (x86: a plain aligned store is a release store)
  ring.consumerPos[0] = BigInt(cons);
  stats.records += n;
  stats.bytes += size;
  return n;
}

export class RingBufferReader {
  readonly stats: RingBufferStats = { records: 0, discarded: 0, bytes: 0, wakeups: 0, timerDrains: 0, timerTicks: 0, handlerErrors: 0, busyWaits: 0, busyTimeouts: 0 };
  readonly size: number;
  private readonly pageSize: number;
  private consumerPtr: Ptr | null;
  private producerPtr: Ptr | null;
  private readonly view: RingView;
  private readonly waitBusyMs: number;
  private readonly budget: number;
  private readonly onHandlerError: ((err: unknown) => void) | undefined;
  private readonly beforeBatch: (() => void) | undefined;
  // strong reference: the poll handle closes when garbage collected
  private poller: { stop(): void; close(): void; start(o: unknown, cb: (e: unknown) => void): void } | null = null;
  private onError: ((err: unknown) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly intervalMs: number;
  private readonly quietStop: boolean;
  /** records consumed (read or discarded) when the timer was last set */
  private consumedAtArm = 0;
  private closed = false;

  constructor(
    readonly map: BpfMap,
    private readonly handler: RecordHandler,
    opts: RingBufferOptions = {},
  ) {
    if (map.info.type !== MapType.RINGBUF) {
      throw new BpfError({ op: `ring buffer on map ${map.name}`, errno: 22, hint: `map type ${map.info.type} is not BPF_MAP_TYPE_RINGBUF` });
    }
    this.budget = opts.budget ?? 65536;
    this.onHandlerError = opts.onHandlerError;
    this.beforeBatch = opts.beforeBatch;
    this.intervalMs = opts.intervalMs ?? 0;
    this.quietStop = opts.quietStop ?? false;
    this.waitBusyMs = opts.waitBusyMs ?? 0;
    this.size = map.info.maxEntries;
    this.pageSize = libc().getpagesize() as number;
    const mmap = libc().mmap;
    const cons = mmap(null, this.pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0);
    if (isMapFailed(cons)) throw new BpfError({ op: `mmap consumer page of ${map.name}`, errno: koffi.errno() });
    const prodLen = this.pageSize + 2 * this.size;
    const prod = mmap(null, prodLen, PROT_READ, MAP_SHARED, map.fd, this.pageSize);
    if (isMapFailed(prod)) {
      libc().munmap(cons, this.pageSize);
      throw new BpfError({ op: `mmap data pages of ${map.name}`, errno: koffi.errno() });
    }
    this.consumerPtr = cons;
    this.producerPtr = prod;
    const prodBuf = koffi.view(prod, prodLen);
    this.view = {
      consumerPos: new BigUint64Array(koffi.view(cons, this.pageSize), 0, 1),
      producerPos: new BigUint64Array(prodBuf, 0, 1),
      data: new DataView(prodBuf, this.pageSize, 2 * this.size),
      bytes: new Uint8Array(prodBuf, this.pageSize, 2 * this.size),
      mask: this.size - 1,
    };
  }

  /** Start consuming on the event loop. Errors of the poll itself go to onError. */
  start(onError?: (err: unknown) => void): void {
    if (this.poller) return;
    this.onError = onError ?? null;
    this.poller = koffi.node.poll(this.map.fd, { readable: true }, () => {
      this.stats.wakeups++;
      this.batch();
      this.arm();
    }) as unknown as typeof this.poller;
    if (this.intervalMs > 0) this.arm();
  }

  /**
   * Run the timer once more, `intervalMs` from now, unless it is set. With
   * quietStop it stops (tick) after a period in which no record was consumed, by
   * anyone (another ring's sync drains this one too), and none waits: every record
   * then came before the period began, so the next one finds intervalMs without
   * records (more than quiet_ns, half of it) and wakes the reader, which starts
   * the timer again (poll callback).
   */
  private arm(): void {
    if (this.timer || this.closed || this.intervalMs <= 0) return;
    this.consumedAtArm = this.stats.records + this.stats.discarded;
    // the poll handle keeps the process alive while reading; the timer alone does not
    this.timer = setTimeout(this.tick, this.intervalMs).unref();
  }

  private readonly tick = (): void => {
    this.timer = null;
    if (this.closed) return;
    this.stats.timerTicks++;
    if (this.pending() > 0) {
      this.stats.timerDrains++;
      this.batch();
    } else if (this.quietStop && this.stats.records + this.stats.discarded === this.consumedAtArm) {
      return; // quiet: the BPF side wakes the reader for the next record
    }
    this.arm();
  };

  private batch(): void {
    try {
      this.beforeBatch?.();
      this.drain(this.budget);
    } catch (err) {
      this.onError?.(err);
    }
  }

  /** Bytes the producer has written that we have not consumed yet. */
  pending(): number {
    return Number(this.view.producerPos[0]! - this.view.consumerPos[0]!);
  }

  /**
   * Consume up to `max` records now. Returns how many were handed to the
   * handler (discarded ones excluded). Safe to call without start().
   */
  drain(max = Number.MAX_SAFE_INTEGER): number {
    if (this.closed) return 0;
    return consumeRing(this.view, this.handler, this.stats, max, this.waitBusyMs, this.onHandlerError);
  }

  stop(): void {
    this.poller?.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.poller) {
      this.poller.close();
      this.poller = null;
    }
    if (this.consumerPtr) libc().munmap(this.consumerPtr, this.pageSize);
    if (this.producerPtr) libc().munmap(this.producerPtr, this.pageSize + 2 * this.size);
    this.consumerPtr = null;
    this.producerPtr = null;
  }
}

function isMapFailed(p: unknown): boolean {
  // MAP_FAILED is (void *)-1
  return p === null || koffi.address(p) === 0xffffffffffffffffn;
}
