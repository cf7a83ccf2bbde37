/**
 * The agent's on-disk outbox, without a server: order across restarts, the
 * bound (drops counted, a gap-free prefix kept), torn and corrupt records,
 * segments removed once acknowledged, message ids never reused.
 */
import { describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RECORD_HEADROOM, RESERVE, Spool, decodeRecords, encodeRecord, encodeRecordInPlace, type SpoolRecord } from '../../src/fleet/spool.js';

const dir = () => join(mkdtempSync(join(tmpdir(), 'vigil-spool-')), 'spool');
const batch = (i: number, size = 100) => ({ subject: `vigil.events.h1.process_creation`, kind: 'event' as const, count: 1, t0: 1000 + i, body: Buffer.from(`{"i":${i},"pad":"${'x'.repeat(size)}"}\n`) });
const idx = (r: SpoolRecord | null | undefined) => (r ? JSON.parse(r.body.toString()).i : null);

/** the batches in the segment files of `d`, in file order */
const onDisk = (d: string) => readdirSync(d).filter((n) => n.endsWith('.seg')).sort().flatMap((n) => decodeRecords(readFileSync(join(d, n))).records.map(idx));

async function replay(sp: Spool): Promise<number[]> {
  const got: number[] = [];
  for (let s = sp.headSeq; s <= sp.lastSeq; s++) {
    if (sp.isAcked(s)) continue;
    const r = sp.get(s) ?? (await sp.load(s));
    if (r) got.push(idx(r));
  }
  return got;
}

describe('spool', () => {
  it('keeps batches in order across a restart and resumes after the last acknowledged one', async () => {
    const d = dir();
    const a = Spool.open({ dir: d, idPrefix: 'h1', maxBytes: 1 << 20, segmentBytes: 4096, memBytes: 2048 });
    for (let i = 0; i < 100; i++) expect(a.append(batch(i))).not.toBeNull();
    for (let s = 1; s <= 30; s++) a.ack(s);
    await a.close();
    expect(readdirSync(d).filter((n) => n.endsWith('.seg')).length).toBeGreaterThan(1);

    const b = Spool.open({ dir: d, idPrefix: 'h1', maxBytes: 1 << 20, segmentBytes: 4096, memBytes: 2048 });
    expect(b.epoch).toBe(a.epoch);
    expect(b.headSeq).toBe(31);
    expect(b.stats().backlog).toBe(70);
    expect(await replay(b)).toEqual(Array.from({ length: 70 }, (_, i) => i + 30));
    // new batches continue after every seq the last run may have handed out; ids are never reused
    const r = b.append(batch(100))!;
    expect(r.seq).toBe(RESERVE + 1);
    expect(r.msgId).toBe(`h1.${a.epoch}.${RESERVE + 1}`);
    // the batches of the last run still go first, then the new one
    expect(await replay(b)).toEqual([...Array.from({ length: 70 }, (_, i) => i + 30), 100]);
    await b.close();
  });

  it('serves a live sender from memory, and from disk what memory let go', async () => {
    const sp = Spool.open({ dir: dir(), idPrefix: 'h', maxBytes: 1 << 20, segmentBytes: 8192, memBytes: 1024 });
    for (let i = 0; i < 50; i++) sp.append(batch(i));
    await sp.flush();
    expect(sp.get(50)).toBeDefined(); // newest: memory
    expect(sp.get(1)).toBeUndefined(); // evicted after it was written
    expect(idx(await sp.load(1))).toBe(0);
    expect(await replay(sp)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await sp.close();
  });

  it('drops beyond the bound, counts what it dropped, and keeps a gap-free prefix', async () => {
    const sp = Spool.open({ dir: dir(), idPrefix: 'h', maxBytes: 20_000, segmentBytes: 4096 });
    let kept = 0;
    for (let i = 0; i < 400; i++) if (sp.append(batch(i))) kept++;
    const st = sp.stats();
    expect(kept).toBeGreaterThan(50);
    expect(kept).toBeLessThan(400);
    expect(st.droppedBatches).toBe(400 - kept);
    expect(st.droppedRecords).toBe(400 - kept);
    expect(st.bytes).toBeLessThanOrEqual(20_000);
    expect(await replay(sp)).toEqual(Array.from({ length: kept }, (_, i) => i));
    // acknowledging frees whole segments: room again
    for (let s = 1; s <= kept; s++) sp.ack(s);
    await sp.flush();
    expect(sp.stats().bytes).toBeLessThan(4096 + 200);
    expect(sp.append(batch(1000))).not.toBeNull();
    await sp.close();
  });

  it('cuts a torn last record on open; a corrupt record is skipped with the rest of its segment (counted)', async () => {
    const d = dir();
    const a = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20, segmentBytes: 1024 });
    for (let i = 0; i < 30; i++) a.append(batch(i));
    await a.close();
    const segs = readdirSync(d).filter((n) => n.endsWith('.seg')).sort();
    expect(segs.length).toBeGreaterThanOrEqual(3);
    // a crash in the middle of a write: half a record at the end of the last segment
    const last = join(d, segs[segs.length - 1]!);
    const size = statSync(last).size;
    const extra = encodeRecord({ ...batch(30), seq: 31, msgId: 'x' }).buf;
    appendFileSync(last, extra.subarray(0, extra.length >> 1));
    // a flipped byte in the body of the second record of the second segment
    const mid = join(d, segs[1]!);
    const buf = readFileSync(mid);
    const recs = decodeRecords(buf).records;
    const victim = idx(recs[1]);
    buf[buf.indexOf(Buffer.from(`{"i":${victim},`)) + 10] ^= 0xff;
    writeFileSync(mid, buf);

    const b = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20, segmentBytes: 1024 });
    expect(statSync(last).size).toBe(size);
    expect(b.stats().backlog).toBe(30);
    const lost = recs.slice(1).map(idx);
    expect(await replay(b)).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => !lost.includes(i)));
    expect(b.stats().corrupt).toBe(lost.length);
    await b.close();
  });

  it('a record framed in place around its body has the bytes of a copied one, and reads back from disk', async () => {
    const body = Buffer.from('{"a":"\u00e9\u6f22\u{1f600}"}\n{"b":2}\n');
    const meta = { subject: 'vigil.events.h1.file_event', kind: 'event' as const, count: 2, t0: 7, seq: 9, msgId: 'h1.e.9' };
    const roomy = Buffer.alloc(RECORD_HEADROOM + body.length, 0xaa);
    body.copy(roomy, RECORD_HEADROOM);
    const inPlace = encodeRecordInPlace(meta, roomy, RECORD_HEADROOM, roomy.length);
    const copied = encodeRecord({ ...meta, body });
    expect(inPlace.buf.equals(copied.buf)).toBe(true);
    expect(inPlace.body.buffer).toBe(roomy.buffer); // not copied
    // no room for the header in front: a copy, the same bytes
    const tight = Buffer.concat([Buffer.alloc(4), body]);
    expect(encodeRecordInPlace(meta, tight, 4, tight.length).buf.equals(copied.buf)).toBe(true);

    const d = dir();
    const a = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20, memBytes: 0 });
    expect(a.append({ subject: meta.subject, kind: 'event', count: 2, t0: 7, body: roomy, bodyStart: RECORD_HEADROOM })).not.toBeNull();
    await a.close();
    const b = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20 });
    const r = await b.load(1);
    expect(r?.body.toString()).toBe(body.toString());
    expect(r?.count).toBe(2);
    await b.close();
  });

  it('a batch acknowledged within its write delay never reaches the disk; one that is not, does', async () => {
    const d = dir();
    const sp = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20, writeDelayMs: 200 });
    const released: ArrayBuffer[] = [];
    sp.releaseTo((ab) => released.push(ab));
    const quick = sp.append(batch(0))!;
    const slow = sp.append(batch(1))!;
    sp.ack(quick.seq);
    // its bytes are free at once
    expect(released.length).toBe(1);
    expect(released[0]).toBe(quick.body.buffer);
    await new Promise((r) => setTimeout(r, 400));
    expect(onDisk(d)).toEqual([1]);
    expect(sp.stats().bytes).toBe(statSync(join(d, readdirSync(d).find((n) => n.endsWith('.seg'))!)).size);
    sp.ack(slow.seq);
    expect(released.length).toBe(2);
    expect(released[1]).toBe(slow.body.buffer);
    // acknowledged before its delay: nothing is left to write, and no timer is left to wake the agent for it
    const third = sp.append(batch(2))!;
    expect((sp as unknown as { delayTimer: unknown }).delayTimer).not.toBeNull();
    sp.ack(third.seq);
    expect((sp as unknown as { delayTimer: unknown }).delayTimer).toBeNull();
    await sp.close();
  });

  it('a crash after batches were acknowledged but before anything reached the disk: the next run never reuses their seqs', async () => {
    const d = dir();
    const a = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(a.append(batch(i))!.msgId);
    for (let s = 1; s <= 10; s++) a.ack(s);
    expect(readdirSync(d).filter((n) => n.endsWith('.seg'))).toEqual([]);
    // the crash: `a` is never closed, meta.json still says nothing was acknowledged
    const b = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20 });
    expect(b.stats().backlog).toBe(0);
    const r = b.append(batch(10))!;
    expect(ids).not.toContain(r.msgId);
    expect(r.seq).toBeGreaterThan(10);
    expect(await replay(b)).toEqual([10]);
    await b.close();
    const c = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20 });
    expect(await replay(c)).toEqual([10]);
    expect(c.append(batch(11))!.seq).toBeGreaterThan(r.seq);
    await c.close();
  });

  it('after a crash, batches acknowledged before their write are holes in a segment, not losses', async () => {
    const d = dir();
    const a = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20, writeDelayMs: 50 });
    for (let i = 0; i < 6; i++) a.append(batch(i));
    for (const s of [1, 3, 5]) a.ack(s); // out of order: the write skips them anyway
    await new Promise((r) => setTimeout(r, 200));
    expect(onDisk(d)).toEqual([1, 3, 5]);
    // the crash: never closed, no ack cursor on disk
    const b = Spool.open({ dir: d, idPrefix: 'h', maxBytes: 1 << 20 });
    expect(await replay(b)).toEqual([1, 3, 5]);
    expect(b.stats().corrupt).toBe(0);
    await b.close();
  });

  it('a wiped state directory starts a new epoch (message ids cannot collide with old ones)', async () => {
    const a = Spool.open({ dir: dir(), idPrefix: 'h', maxBytes: 1 << 20 });
    const b = Spool.open({ dir: dir(), idPrefix: 'h', maxBytes: 1 << 20 });
    expect(a.append(batch(0))!.msgId).not.toBe(b.append(batch(0))!.msgId);
    await a.close();
    await b.close();
  });
});
