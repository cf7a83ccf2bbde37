/**
 * Fault suite: a disk that fills up (a real tmpfs of a few pages, mounted
 * here; root). The JSONL log must never hold a partial record between whole
 * ones, must report the episode once (not per record or per retry), count what
 * it drops, and resume by itself when space returns, in order. The SQLite store
 * on a full disk: failed batches counted and reported once, inserts resume.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JsonlSink, RETRY_MS } from '../../src/sinks/jsonl.js';
import { SqliteSink } from '../../src/sinks/sqlite.js';
import type { SinkFault } from '../../src/sinks/fault.js';
import { AuditBlockChain } from '../../src/sinks/audit-block.js';
import { readKeyFile } from '../../src/sinks/audit-chain.js';
import { verifyFiles } from '../../src/sinks/audit-verify.js';

const mnt = mkdtempSync(join(tmpdir(), 'vigil-full-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'vigil-full', mnt]);
});
afterAll(() => {
  execFileSync('umount', ['-l', mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

/** a record of about 1 KiB that says its index */
const rec = (i: number) => {
  const value = { category: 'process_creation', i, pad: 'x'.repeat(1000) };
  return { kind: 'event' as const, value, json: JSON.stringify(value) };
};

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}

/** The log's lines: every one whole JSON, none partial, the file ends with a newline. */
function lines(path: string): number[] {
  const text = readFileSync(path, 'utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
}

describe('disk full', () => {
  it('JSONL: no partial record between whole ones, the episode reported once, losses counted, resumes by itself in order', async () => {
    const path = join(mnt, 'events.jsonl');
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(200 * 1024));
    const faults: SinkFault[] = [];
    const sink = new JsonlSink({ path, maxPendingBytes: 40 * 1024, onFault: (f) => faults.push(f) });
    let next = 0;
    const accepted: number[] = [];
    const refused: number[] = [];
    const put = (n: number) => {
      for (let k = 0; k < n; k++, next++) (sink.write(rec(next)) ? accepted : refused).push(next);
    };

    // fits: 30 KiB
    put(30);
    await sink.flush();
    expect(lines(path)).toEqual(accepted);

    // the disk fills in the middle of a write: whole lines only, the rest held for a retry
    put(30);
    await waitFor(() => faults.length > 0, 5_000);
    expect(faults[0]).toMatchObject({ state: 'failing', sink: sink.name });
    expect((faults[0]!.error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    const during = lines(path);
    expect(during).toEqual(accepted.slice(0, during.length));
    expect(during.length).toBeLessThan(accepted.length);

    // several retries fail: still one report; more records queue until the bound, then are refused and counted
    for (let k = 0; k < 4; k++) {
      put(10);
      await sleep(RETRY_MS / 2);
    }
    await sleep(RETRY_MS * 2);
    expect(faults).toHaveLength(1);
    expect(refused.length).toBeGreaterThan(0);
    expect(sink.stats()).toMatchObject({ dropped: refused.length, errors: 1 });
    // the file is whole at every moment
    const still = lines(path);
    expect(still).toEqual(accepted.slice(0, still.length));

    // space returns: writing resumes by itself, in order, nothing accepted is lost
    unlinkSync(filler);
    await waitFor(() => faults.length === 2, 5_000);
    await sink.flush();
    expect(faults[1]).toMatchObject({ state: 'resumed', lost: refused.length });
    put(5);
    await sink.close();
    expect(lines(path)).toEqual(accepted);
    const st = sink.stats();
    expect(st).toMatchObject({ written: accepted.length, dropped: refused.length, errors: 1, pending: 0 });
    expect(st.written + st.dropped).toBe(next);
    expect(faults).toHaveLength(2);
    unlinkSync(path);
  });

  it('JSONL: records still held at shutdown on a full disk are dropped and counted, the file stays whole', async () => {
    const path = join(mnt, 'events2.jsonl');
    const filler = join(mnt, 'filler2');
    writeFileSync(filler, Buffer.alloc(228 * 1024));
    const faults: SinkFault[] = [];
    const sink = new JsonlSink({ path, onFault: (f) => faults.push(f) });
    for (let i = 0; i < 100; i++) sink.write(rec(i));
    await waitFor(() => faults.length > 0, 5_000);
    await sink.close();
    const got = lines(path);
    expect(got).toEqual([...Array(got.length).keys()]);
    const st = sink.stats();
    expect(st.written).toBe(got.length);
    expect(st.written + st.dropped).toBe(100);
    expect(st.pending).toBe(0);
    unlinkSync(filler);
    unlinkSync(path);
  });

  it('JSONL with block seals (audit chain, format 2): a disk full mid-stream, then space again: every accepted record written once, the log verifies intact with the key', async () => {
    for (const hasher of ['inline', 'thread'] as const) {
      const path = join(mnt, `sealed-${hasher}.jsonl`);
      const keys = mkdtempSync(join(tmpdir(), 'vigil-full-keys-'));
      const filler = join(mnt, 'filler4');
      writeFileSync(filler, Buffer.alloc(200 * 1024));
      const faults: SinkFault[] = [];
      const chain = new AuditBlockChain({ logPath: path, keyFile: join(keys, 'seal-key'), verifyKeyFile: join(keys, 'verify-key'), sealEvery: 7, sealIntervalMs: 0, hasher });
      const sink = new JsonlSink({ path, maxPendingBytes: 200 * 1024, onFault: (f) => faults.push(f), hook: chain });
      const accepted: number[] = [];
      let next = 0;
      const put = (n: number) => {
        for (let k = 0; k < n; k++, next++) if (sink.write(rec(next))) accepted.push(next);
      };
      for (let k = 0; k < 8 && faults.length === 0; k++) {
        put(9);
        await sleep(20);
      }
      await waitFor(() => faults.length > 0, 5_000);
      put(10);
      await sleep(RETRY_MS * 2);
      unlinkSync(filler);
      await waitFor(() => faults.length === 2, 5_000);
      put(10);
      await sink.close();
      const recs = readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{"category"')).map((l) => (JSON.parse(l) as { i: number }).i);
      expect(recs).toEqual(accepted);
      expect(chain.counts.seals).toBeGreaterThan(2);
      const r = verifyFiles([path], readKeyFile(join(keys, 'verify-key')));
      expect(r.problem).toBeNull();
      expect(r).toMatchObject({ ok: true, format: 2, records: accepted.length, unsealed: 0, seals_checked: r.seals });
      unlinkSync(path);
      rmSync(keys, { recursive: true, force: true });
    }
  });

  it('SQLite: failed inserts on a full disk are counted and reported once; inserts resume when space returns', async () => {
    const path = join(mnt, 'store', 'vigil.db');
    const faults: SinkFault[] = [];
    const sink = new SqliteSink({ path, batchMs: 5, batchMax: 20, onFault: (f) => faults.push(f) });
    await sink.ready();
    const filler = join(mnt, 'filler3');
    // leave a few pages
    let free = 0;
    try {
      writeFileSync(filler, Buffer.alloc(256 * 1024));
    } catch {
      /* filled */
    }
    free = 0;
    let total = 0;
    const big = (i: number) => {
      const value = { category: 'file_event', timestamp: new Date().toISOString(), i, pad: 'y'.repeat(3000) };
      return { kind: 'event' as const, value, json: JSON.stringify(value) };
    };
    for (let round = 0; round < 40 && faults.length === 0; round++) {
      for (let k = 0; k < 20; k++, total++) sink.write(big(total));
      await sink.flush();
    }
    expect(faults[0]).toMatchObject({ state: 'failing' });
    expect(faults[0]!.error!.message).toMatch(/full|disk/i);
    for (let k = 0; k < 40; k++, total++) sink.write(big(total));
    await sink.flush();
    expect(faults).toHaveLength(1);
    const mid = sink.stats();
    expect(mid.errors).toBeGreaterThan(0);
    expect(mid.dropped).toBeGreaterThan(0);

    unlinkSync(filler);
    for (let k = 0; k < 5; k++, total++) sink.write(big(total));
    await sink.flush();
    expect(faults[1]).toMatchObject({ state: 'resumed' });
    await sink.close();
    const st = sink.stats();
    expect(st.written + st.dropped).toBe(total);
    expect(faults[1]!.lost).toBe(st.dropped);
    // what the store holds is what was counted written, each record whole
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT json FROM records').all() as Array<{ json: string }>;
    db.close();
    expect(rows).toHaveLength(st.written);
    for (const r of rows) expect((JSON.parse(r.json) as { pad: string }).pad).toHaveLength(3000);
    void free;
  });
});
