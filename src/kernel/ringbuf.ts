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
  /** handler threw (e.g. a malformed record): counted, skipped, reported to onHandlerError */
  handlerErrors: number;
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
}

export class RingBufferReader {
  readonly stats: RingBufferStats = { records: 0, discarded: 0, bytes: 0, wakeups: 0, timerDrains: 0, handlerErrors: 0 };
  readonly size: number;
  private readonly pageSize: number;
  private consumerPtr: Ptr | null;
  private producerPtr: Ptr | null;
  private readonly consumerPos: BigUint64Array;
  private readonly producerPos: BigUint64Array;
  private readonly data: DataView;
  private readonly bytes: Uint8Array;
  private readonly mask: number;
  private readonly budget: number;
  private readonly onHandlerError: ((err: unknown) => void) | undefined;
  private readonly beforeBatch: (() => void) | undefined;
  // strong reference: the poll handle closes when garbage collected
  private poller: { stop(): void; close(): void; start(o: unknown, cb: (e: unknown) => void): void } | null = null;
  private onError: ((err: unknown) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly intervalMs: number;
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
    this.size = map.info.maxEntries;
    this.mask = this.size - 1;
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
    this.consumerPos = new BigUint64Array(koffi.view(cons, this.pageSize), 0, 1);
    const prodBuf = koffi.view(prod, prodLen);
    this.producerPos = new BigUint64Array(prodBuf, 0, 1);
    this.data = new DataView(prodBuf, this.pageSize, 2 * this.size);
    this.bytes = new Uint8Array(prodBuf, this.pageSize, 2 * this.size);
  }

  /** Start consuming on the event loop. Errors of the poll itself go to onError. */
  start(onError?: (err: unknown) => void): void {
    if (this.poller) return;
    this.onError = onError ?? null;
    this.poller = koffi.node.poll(this.map.fd, { readable: true }, () => {
      this.stats.wakeups++;
      this.batch();
    }) as unknown as typeof this.poller;
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.closed || this.pending() === 0) return;
        this.stats.timerDrains++;
        this.batch();
      }, this.intervalMs);
      // the poll handle keeps the process alive while reading; the timer alone does not
      this.timer.unref();
    }
  }

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
    return Number(this.producerPos[0]! - this.consumerPos[0]!);
  }

  /**
   * Consume up to `max` records now. Returns how many were handed to the
   * handler (discarded ones excluded). Safe to call without start().
   */
  drain(max = Number.MAX_SAFE_INTEGER): number {
    if (this.closed) return 0;
    let cons = Number(this.consumerPos[0]!);
    const prod = Number(this.producerPos[0]!);
    const data = this.data;
    const mask = this.mask;
    let n = 0;
    let bytes = 0;
    while (cons < prod && n < max) {
      const off = cons & mask;
      const len = data.getUint32(off, true);
      if (len & BUSY) break; // reserved, not yet committed
      const sampleLen = len & ~(BUSY | DISCARD) >>> 0;
      const total = (sampleLen + HDR + 7) & ~7;
      if (!(len & DISCARD)) {
        try {
          this.handler(data, this.bytes, off + HDR, sampleLen);
        } catch (err) {
          this.stats.handlerErrors++;
          this.onHandlerError?.(err);
        }
        n++;
        bytes += sampleLen;
      } else {
        this.stats.discarded++;
      }
      cons += total;
    }
    // release the space (x86: a plain aligned store is a release store)
    this.consumerPos[0] = BigInt(cons);
    this.stats.records += n;
    this.stats.bytes += bytes;
    return n;
  }

  stop(): void {
    this.poller?.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
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
