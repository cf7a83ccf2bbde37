import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlSink } from '../../src/sinks/jsonl.js';

const rec = (i: number, pad = 0) => {
  const value = { category: 'process_creation', i, pad: 'x'.repeat(pad) };
  return { kind: 'event' as const, value, json: JSON.stringify(value) };
};

describe('JSONL sink', () => {
  it('appends whole lines', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'vj-')), 'ev.jsonl');
    const s = new JsonlSink({ path: p });
    for (let i = 0; i < 1000; i++) expect(s.write(rec(i))).toBe(true);
    await s.close();
    const lines = readFileSync(p, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(1000);
    expect(JSON.parse(lines[999]!).i).toBe(999);
    expect(s.stats()).toMatchObject({ written: 1000, dropped: 0, pending: 0 });
  });

  it('rotates by size and keeps N files', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'vj-')), 'ev.jsonl');
    const s = new JsonlSink({ path: p, maxBytes: 10_000, keep: 2 });
    for (let i = 0; i < 200; i++) {
      s.write(rec(i, 200));
      await s.flush();
    }
    await s.close();
    expect(existsSync(`${p}.1`)).toBe(true);
    expect(existsSync(`${p}.2`)).toBe(true);
    expect(existsSync(`${p}.3`)).toBe(false);
    for (const f of [p, `${p}.1`, `${p}.2`]) {
      const text = readFileSync(f, 'utf8');
      expect(text.length).toBeLessThanOrEqual(10_000);
      expect(text.endsWith('\n')).toBe(true);
      for (const l of text.trimEnd().split('\n')) JSON.parse(l);
    }
    expect(JSON.parse(readFileSync(p, 'utf8').trimEnd().split('\n').pop()!).i).toBe(199);
  });

  it('repairs a partial last line left by a crash', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'vj-')), 'ev.jsonl');
    writeFileSync(p, '{"a":1}\n{"a":2}\n{"a":');
    const s = new JsonlSink({ path: p });
    s.write(rec(3));
    await s.close();
    expect(readFileSync(p, 'utf8')).toBe(`{"a":1}\n{"a":2}\n${rec(3).json}\n`);
  });

  it('drops and counts when the pending bound is reached (never an unbounded queue)', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'vj-')), 'ev.jsonl');
    const s = new JsonlSink({ path: p, maxPendingBytes: 5_000 });
    let accepted = 0;
    for (let i = 0; i < 1000; i++) if (s.write(rec(i, 100))) accepted++;
    await s.close();
    const st = s.stats();
    expect(st.dropped).toBeGreaterThan(0);
    expect(st.dropped + st.written).toBe(1000);
    expect(readFileSync(p, 'utf8').trimEnd().split('\n')).toHaveLength(accepted);
  });

  it('ignores record kinds it is not for', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'vj-')), 'al.jsonl');
    const s = new JsonlSink({ path: p, kinds: ['alert'] });
    s.write(rec(1));
    s.write({ kind: 'alert', value: { rule_id: 'x' }, json: '{"rule_id":"x"}' });
    await s.close();
    expect(readFileSync(p, 'utf8')).toBe('{"rule_id":"x"}\n');
  });
});
