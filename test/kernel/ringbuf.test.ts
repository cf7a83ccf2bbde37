/**
 * The ring reader's walk over records (consumeRing), on a ring laid out as the
 * kernel lays it out (8-byte headers: u32 len | BUSY | DISCARD, u32 pg_off;
 * records rounded to 8) in a SharedArrayBuffer, so that a worker thread can play
 * the producer that commits a record while the reader waits for it. The same
 * walk over a real ring is in binding.kernel.test.ts.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { consumeRing, type RingBufferStats, type RingView } from '../../src/kernel/ringbuf.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const SIZE = 4096;

interface TestRing {
  view: RingView;
  sab: SharedArrayBuffer;
  /** write a record of `payload` bytes (each the byte `fill`) at the producer position; returns its header offset */
  put(payload: number, fill: number, flags?: number): number;
}

function ring(): TestRing {
  const sab = new SharedArrayBuffer(16 + 2 * SIZE);
  const consumerPos = new BigUint64Array(sab, 0, 1);
  const producerPos = new BigUint64Array(sab, 8, 1);
  const data = new DataView(sab, 16, 2 * SIZE);
  const bytes = new Uint8Array(sab, 16, 2 * SIZE);
  const view: RingView = { consumerPos, producerPos, data, bytes, mask: SIZE - 1 };
  return {
    view,
    sab,
    put(payload, fill, flags = 0) {
      const at = Number(producerPos[0]!);
      data.setUint32(at, (payload | flags) >>> 0, true);
      data.setUint32(at + 4, 0, true);
      bytes.fill(fill, at + 8, at + 8 + payload);
      producerPos[0] = BigInt(at + ((payload + 8 + 7) & ~7));
      return at;
    },
  };
}

function stats(): RingBufferStats {
  return { records: 0, discarded: 0, bytes: 0, wakeups: 0, timerDrains: 0, timerTicks: 0, handlerErrors: 0, busyWaits: 0, busyTimeouts: 0 };
}

/** the first byte of each record handed over */
function reader(): { seen: number[]; handler: (v: DataView, b: Uint8Array, off: number, len: number) => void } {
  const seen: number[] = [];
  return { seen, handler: (_v, b, off) => seen.push(b[off]!) };
}

/** Records 1, then 2 still being written (BUSY), then 3 unless `last` is false; a reader and fresh stats. */
function busyRing(last = true) {
  const r = ring();
  r.put(8, 1);
  const busy = r.put(8, 2, BUSY);
  if (last) r.put(8, 3);
  return { r, busy, ...reader(), s: stats() };
}

/** A producer in another thread: after `afterMs`, clears the BUSY bit of the header at `at` (a commit). */
function commitLater(sab: SharedArrayBuffer, at: number, afterMs: number): Promise<void> {
  const code = `
    const { workerData } = require('node:worker_threads');
    const { sab, at, afterMs } = workerData;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, afterMs);
    const hdr = new Int32Array(sab, 16 + at, 1);
    Atomics.and(hdr, 0, 0x7fffffff);
  `;
  const w = new Worker(code, { eval: true, workerData: { sab, at, afterMs } });
  return new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('exit', () => resolve());
  });
}

describe('consumeRing', () => {
  it('hands over committed records in order, skips discarded ones, gives the space back', () => {
    const r = ring();
    r.put(5, 1);
    r.put(16, 2, DISCARD);
    r.put(1, 3);
    const { seen, handler } = reader();
    const s = stats();
    expect(consumeRing(r.view, handler, s, Number.MAX_SAFE_INTEGER, 0)).toBe(2);
    expect(seen).toEqual([1, 3]);
    expect(s).toMatchObject({ records: 2, discarded: 1, bytes: 6 });
    expect(r.view.consumerPos[0]).toBe(r.view.producerPos[0]);
  });

  it('without waitBusyMs, stops at a record still being written and leaves it and what follows for the next drain', () => {
    const { r, busy, seen, handler, s } = busyRing();
    expect(consumeRing(r.view, handler, s, Number.MAX_SAFE_INTEGER, 0)).toBe(1);
    expect(seen).toEqual([1]);
    expect(Number(r.view.consumerPos[0])).toBe(busy);
    expect(s.busyWaits).toBe(0);
    // committed: the next drain reads it and the one after it
    r.view.data.setUint32(busy, 8, true);
    expect(consumeRing(r.view, handler, s, Number.MAX_SAFE_INTEGER, 0)).toBe(2);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('with waitBusyMs, waits for the producer to commit (another thread, 30 ms later) and reads on to the producer position', async () => {
    const { r, busy, seen, handler, s } = busyRing();
    const done = commitLater(r.sab, busy, 30);
    // the worker needs a moment to start: the wait covers it
    const n = consumeRing(r.view, handler, s, Number.MAX_SAFE_INTEGER, 10_000);
    await done;
    expect(n).toBe(3);
    expect(seen).toEqual([1, 2, 3]);
    expect(s).toMatchObject({ busyWaits: 1, busyTimeouts: 0 });
    expect(r.view.consumerPos[0]).toBe(r.view.producerPos[0]);
  });

  it('a wait gives up after waitBusyMs, counted; the record stays for a later drain', () => {
    const { r, busy, seen, handler, s } = busyRing(false);
    const t0 = performance.now();
    expect(consumeRing(r.view, handler, s, Number.MAX_SAFE_INTEGER, 20)).toBe(1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(20);
    expect(s).toMatchObject({ busyWaits: 1, busyTimeouts: 1 });
    expect(Number(r.view.consumerPos[0])).toBe(busy);
  });

  it('a handler that throws: counted and reported, the walk goes on', () => {
    const r = ring();
    r.put(8, 1);
    r.put(8, 2);
    const s = stats();
    const errs: unknown[] = [];
    const n = consumeRing(r.view, (_v, b, off) => {
      if (b[off] === 1) throw new Error('bad record');
    }, s, Number.MAX_SAFE_INTEGER, 0, (e) => errs.push(e));
    expect(n).toBe(2);
    expect(s.handlerErrors).toBe(1);
    expect(errs).toHaveLength(1);
  });

  it('max bounds a batch; the rest stays', () => {
    const r = ring();
    for (let i = 0; i < 5; i++) r.put(8, i);
    const { seen, handler } = reader();
    const s = stats();
    expect(consumeRing(r.view, handler, s, 2, 0)).toBe(2);
    expect(consumeRing(r.view, handler, s, Number.MAX_SAFE_INTEGER, 0)).toBe(3);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });
});
