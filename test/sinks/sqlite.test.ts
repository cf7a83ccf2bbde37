import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteSink } from '../../src/sinks/sqlite.js';
import { EventStore, globToSqlite, jsonPath } from '../../src/store/store.js';

const ev = (i: number, image: string, extra: Record<string, unknown> = {}) => {
  const value = { category: i % 2 ? 'process_creation' : 'process_termination', timestamp: new Date(1_700_000_000_000 + i * 1000).toISOString(), ProcessId: i, Image: image, CommandLine: `${image} arg${i}`, vigil: { comm: 'c' + i }, ...extra };
  return { kind: 'event' as const, value, json: JSON.stringify(value) };
};

describe('SQLite sink and store', () => {
  it('stores events through the worker and queries them by time, category and fields', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'vs-')), 'v.db');
    const s = new SqliteSink({ path: db, batchMs: 10 });
    for (let i = 0; i < 500; i++) s.write(ev(i, i % 5 === 0 ? '/usr/bin/curl' : '/bin/true'));
    s.write({ kind: 'alert', value: { rule_id: 'r1', rule_title: 'T', level: 'high', timestamp: new Date().toISOString(), event: ev(1, '/usr/bin/curl').value }, json: '{"rule_id":"r1","level":"high"}' });
    await s.close();
    expect(s.stats()).toMatchObject({ written: 501, dropped: 0, errors: 0, pending: 0 });

    const st = EventStore.open(db, { readonly: true });
    expect(st.count('event')).toBe(500);
    expect(st.count('alert')).toBe(1);
    expect(st.query({ fields: [{ field: 'Image', op: '~', value: '*/CURL' }], limit: 1000 })).toHaveLength(100);
    expect(st.query({ fields: [{ field: 'ProcessId', op: '=', value: '7' }] })).toHaveLength(1);
    expect(st.query({ fields: [{ field: 'vigil.comm', op: '=', value: 'c7' }] })).toHaveLength(1);
    expect(st.query({ category: 'process_creation', limit: 1000 })).toHaveLength(250);
    const since = 1_700_000_000_000 + 490 * 1000;
    expect(st.query({ since, limit: 1000 })).toHaveLength(10);
    expect(st.query({ kind: 'alert', ruleId: 'r1' })).toHaveLength(1);
    const asc = st.query({ order: 'asc', limit: 2 }).map((r) => JSON.parse(r.json).ProcessId);
    expect(asc).toEqual([0, 1]);
    st.close();
  });

  it('drops and counts beyond maxPending', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'vs-')), 'v.db');
    const s = new SqliteSink({ path: db, maxPending: 100, batchMax: 1000, batchMs: 1000 });
    let ok = 0;
    for (let i = 0; i < 300; i++) if (s.write(ev(i, '/x'))) ok++;
    await s.close();
    expect(ok).toBe(100);
    expect(s.stats()).toMatchObject({ written: 100, dropped: 200 });
  });

  it('a writer thread that ends unasked: what it held and what comes after is dropped and counted, the fault is said once, flush and close return', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'vs-')), 'v.db');
    const faults: string[] = [];
    const s = new SqliteSink({ path: db, batchMs: 10, onFault: (f) => faults.push(`${f.state}: ${f.error?.message}`) });
    await s.ready();
    for (let i = 0; i < 50; i++) s.write(ev(i, '/x'));
    await s.flush();
    expect(s.stats()).toMatchObject({ written: 50, dropped: 0 });
    // the thread ends as a crash would end it (no 'closed' answer will come)
    await (s as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    for (let i = 50; i < 80; i++) s.write(ev(i, '/x'));
    await s.flush();
    await s.close();
    expect(s.stats()).toMatchObject({ written: 50, dropped: 30, pending: 0 });
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatch(/^failing: the store's writer thread ended \(exit code 1\)/);
  });

  it('keeps odd field names and glob specials as data', () => {
    expect(jsonPath('a.b"c')).toBe('$."a"."b\\"c"');
    expect(globToSqlite('x[1]*\\*')).toBe('x[[]1[]]*[*]');
  });
});
