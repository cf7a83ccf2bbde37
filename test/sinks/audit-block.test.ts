/**
 * The block-sealed audit log (format 2, src/sinks/audit-block.ts) and its
 * verification: logs written by the real JSONL sink (the digest on its worker
 * thread, as `vigil run` does), tampered with, and verified; rotation; a writer
 * killed with SIGKILL and restarted; a format-1 log continued in format 2.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { JsonlSink } from '../../src/sinks/jsonl.js';
import { AuditChain, evolveKey, readKeyFile, type AuditKey } from '../../src/sinks/audit-chain.js';
import { AuditBlockChain, decodeLens, encodeLens, sealHash, sealMac2 } from '../../src/sinks/audit-block.js';
import { verifyFiles } from '../../src/sinks/audit-verify.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-audit2-'));
  dirs.push(d);
  return d;
}

// records of different lengths (pad grows with i mod 13): a swapped pair of them differs in length
const rec = (i: number, pad = (i * 7) % 13) => {
  const value = { category: 'process_creation', i, CommandLine: `/usr/bin/ls -la /tmp/${i}`, pad: 'x'.repeat(pad), u: i % 5 === 0 ? 'ü€' : '' };
  return { kind: 'event' as const, value, json: JSON.stringify(value) };
};

async function writeLog(path: string, n: number, o: { sealEvery?: number; maxBytes?: number; keep?: number; from?: number; hasher?: 'thread' | 'inline'; pad?: number } = {}) {
  const chain = new AuditBlockChain({ logPath: path, sealEvery: o.sealEvery ?? 10, sealIntervalMs: 0, hasher: o.hasher ?? 'thread' });
  const sink = new JsonlSink({ path, hook: chain, maxBytes: o.maxBytes ?? 0, keep: o.keep ?? 5 });
  for (let i = 0; i < n; i++) {
    const r = o.pad === undefined ? rec((o.from ?? 0) + i) : rec((o.from ?? 0) + i, o.pad);
    expect(sink.write(r)).toBe(true);
    if (i % 7 === 0) {
      await sink.flush();
      await chain.drained();
    }
  }
  await sink.close();
  return chain;
}

const lines = (p: string) => readFileSync(p, 'utf8').split('\n').slice(0, -1);
const put = (p: string, ls: string[]) => writeFileSync(p, ls.map((l) => `${l}\n`).join(''));
const verifyKey = (log: string): AuditKey => readKeyFile(`${log}.verify-key`);
const isSeal = (l: string) => l.startsWith('{"vigil.seal":{"v":2,');
const lineOf = (ls: string[], n: number) => ls.findIndex((l) => l.includes(`"i":${n},`)) + 1;
/** 1-based first and last line of the block that holds line `at` (the lines after the seal before it, up to the line before its seal) */
const blockOf = (ls: string[], at: number) => {
  let a = at;
  while (a > 1 && !isSeal(ls[a - 2]!)) a--;
  let b = at; // 1-based: ls[b] is the line after it
  while (!isSeal(ls[b]!)) b++;
  return [a, b];
};

describe('audit block seals (format 2): format and sealing', () => {
  it('leaves records unchanged, seals blocks every N lines with the lines\' lengths; verify with the key says intact', async () => {
    for (const hasher of ['thread', 'inline'] as const) {
      const p = join(tmp(), 'ev.jsonl');
      const chain = await writeLog(p, 45, { sealEvery: 10, hasher });
      const ls = lines(p);
      expect(ls[0]).toMatch(/^\{"vigil\.audit":\{"v":2,"event":"start"/);
      const records = ls.filter((l) => !l.startsWith('{"vigil.'));
      expect(records).toEqual(Array.from({ length: 45 }, (_, i) => rec(i).json));
      const seals = ls.filter(isSeal).map((l) => JSON.parse(l)['vigil.seal']);
      expect(seals.length).toBe(chain.counts.seals);
      expect(seals.length).toBeGreaterThanOrEqual(4);
      expect(isSeal(ls.at(-1)!)).toBe(true);
      seals.forEach((s, k) => expect(s.n).toBe(k + 1));
      // a seal's lens are its block's lines' byte lengths, in order
      const first = ls.findIndex(isSeal);
      expect(decodeLens(seals[0].lens)).toEqual(ls.slice(0, first).map((l) => Buffer.byteLength(l)));
      const r = verifyFiles([p], verifyKey(p));
      expect(r.problem).toBeNull();
      expect(r).toMatchObject({ ok: true, format: 2, records: 45, seals: seals.length, seals_checked: seals.length, unsealed: 0 });
      expect(verifyFiles([p]).ok).toBe(true);
    }
  });

  it('lens round-trip: 0, 127, 128, 16383, 16384, large', () => {
    const xs = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 21, 2 ** 40 + 5];
    expect(decodeLens(encodeLens(xs))).toEqual(xs);
    expect(decodeLens('!!')).toBeNull();
  });
});

describe('audit verify, format 2: tampering', () => {
  async function sealed() {
    const p = join(tmp(), 'ev.jsonl');
    await writeLog(p, 40, { sealEvery: 10 });
    return { p, ls: lines(p), key: verifyKey(p) };
  }

  it('an edited byte, same length: located to its block (the range holds the line); a changed length: the line', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 17);
    const orig = ls[at - 1]!;
    ls[at - 1] = orig.replace('/tmp/17', '/tmp/18');
    put(p, ls);
    const r = verifyFiles([p], key);
    const [a, b] = blockOf(ls, at);
    expect(r.problem).toMatchObject({ kind: 'changed', file: p, line: a, last_line: b });
    expect(a).toBeLessThan(at);
    expect(b).toBeGreaterThan(at);
    ls[at - 1] = orig.replace('/tmp/17', '/tmp/177');
    put(p, ls);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'changed', line: at });
    expect(verifyFiles([p]).problem).toMatchObject({ kind: 'changed', line: at });
  });

  it('a deleted line: names where it is missing', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 22);
    ls.splice(at - 1, 1);
    put(p, ls);
    const r = verifyFiles([p], key);
    expect(r.problem).toMatchObject({ kind: 'removed', line: at });
    expect(r.problem!.message).toContain(`${Buffer.byteLength(rec(22).json)} bytes`);
  });

  it('a swapped pair: reordered, both lines named; a pair of equal length: located to the block', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 5);
    const [x, y] = [ls[at - 1]!, ls[at]!];
    expect(x.length).not.toBe(y.length);
    [ls[at - 1], ls[at]] = [y, x];
    put(p, ls);
    const r = verifyFiles([p], key);
    expect(r.problem).toMatchObject({ kind: 'reordered', line: at, last_line: at + 1 });
    expect(r.problem!.message).toContain(`${p}:${at + 1}`);
    // same length: the lens cannot tell, the digest can
    const q = join(tmp(), 'ev.jsonl');
    await writeLog(q, 40, { sealEvery: 10, pad: 3 });
    const ms = lines(q);
    const bt = lineOf(ms, 12);
    [ms[bt - 1], ms[bt]] = [ms[bt]!, ms[bt - 1]!];
    put(q, ms);
    const [a, b] = blockOf(ms, bt);
    expect(verifyFiles([q], verifyKey(q)).problem).toMatchObject({ kind: 'changed', line: a, last_line: b });
  });

  it('an inserted line: a made-up record, a copy of another line', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 30);
    put(p, [...ls.slice(0, at), '{"category":"process_creation","CommandLine":"innocent"}', ...ls.slice(at)]);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'inserted', line: at + 1 });
    put(p, [...ls.slice(0, at), ls[3]!, ...ls.slice(at)]);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'inserted', line: at + 1 });
    // after the last seal: lines a crash would leave are reported as an unsealed tail, not sealed
    put(p, [...ls, '{"category":"process_creation","CommandLine":"late"}']);
    const r = verifyFiles([p], key);
    expect(r.problem).toBeNull();
    expect(r.unsealed).toBe(1);
    expect(r.notes.find((n) => n.kind === 'unsealed_tail')).toMatchObject({ line: ls.length + 1 });
  });

  it('a seal rewritten with a later key (root after epoch 2): its MAC fails; a seal\'s own field changed; a whole block removed with its seal', async () => {
    const { p, ls, key } = await sealed();
    const stolen = readKeyFile(`${p}.seal-key`);
    expect(stolen.epoch).toBeGreaterThanOrEqual(2);
    const si = ls.findIndex(isSeal);
    const s = JSON.parse(ls[si]!)['vigil.seal'];
    expect(s.epoch).toBe(0);
    // a record of the first block changed, its seal recomputed and MACed with the stolen key
    const at = lineOf(ls, 3);
    const forged = [...ls];
    forged[at - 1] = forged[at - 1]!.replace('/tmp/3', '/tmp/X');
    const { createHash } = await import('node:crypto');
    s.block = createHash('sha256').update(forged.slice(0, si).map((l) => `${l}\n`).join('')).digest('base64url');
    s.hash = sealHash(s);
    s.mac = sealMac2(stolen.key, s.hash);
    forged[si] = JSON.stringify({ 'vigil.seal': s });
    put(p, forged);
    // the next seal names the old hash: the chain of seals breaks there without a key; with it, the MAC fails first
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'forged_seal', line: si + 1 });
    // a seal's time changed: its hash no longer matches its fields
    const t = [...ls];
    t[si] = t[si]!.replace(/"time":"[^"]+"/, '"time":"2020-01-01T00:00:00.000Z"');
    put(p, t);
    expect(verifyFiles([p]).problem).toMatchObject({ kind: 'forged_seal', line: si + 1 });
    // the second block and its seal cut out: seal 3 follows seal 1
    const seals = ls.map((l, i) => (isSeal(l) ? i : -1)).filter((i) => i >= 0);
    put(p, [...ls.slice(0, seals[0]! + 1), ...ls.slice(seals[1]! + 1)]);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'missing_seal' });
    // with a key of epoch 2 the seals of earlier epochs are counted as unchecked
    let k = key.key;
    for (let i = 0; i < 2; i++) k = evolveKey(k);
    put(p, ls);
    const later = verifyFiles([p], { ...key, epoch: 2, key: k });
    expect(later.problem).toBeNull();
    expect(later.seals_checked).toBeLessThan(later.seals);
  });
});

describe('audit block seals: rotation, restart, SIGKILL, format 1 before', () => {
  it('seals at every rotation; files in any order verify; the newest files alone too', async () => {
    const d = tmp();
    const p = join(d, 'ev.jsonl');
    await writeLog(p, 60, { sealEvery: 25, maxBytes: 3000, keep: 50 });
    await writeLog(p, 30, { sealEvery: 25, maxBytes: 3000, keep: 50, from: 60 });
    const files = Array.from({ length: 50 }, (_, i) => (i ? `${p}.${i}` : p)).filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(3);
    // every rotated file ends with a seal: each file starts a block
    for (const f of files.slice(1)) expect(isSeal(lines(f).at(-1)!)).toBe(true);
    const r = verifyFiles([...files].reverse(), verifyKey(p));
    expect(r.problem).toBeNull();
    expect(r).toMatchObject({ first_seq: 1, records: 90, unsealed: 0 });
    expect(r.notes.filter((n) => n.kind === 'start').length).toBe(2);
    const newest = verifyFiles(files.slice(0, 2), verifyKey(p));
    expect(newest.problem).toBeNull();
    expect(newest.first_seq).toBeGreaterThan(1);
    // a line of a middle file deleted is named there
    const mid = files[2]!;
    const ml = lines(mid);
    const at = ml.findIndex((l) => !l.startsWith('{"vigil.')) + 1;
    ml.splice(at - 1, 1);
    put(mid, ml);
    expect(verifyFiles(files, verifyKey(p)).problem).toMatchObject({ kind: 'removed', file: mid, line: at });
  });

  it('a deleted sealing key: the next start begins a new chain; verify stops at its first seal (foreign_chain) after a new_chain note', async () => {
    const p = join(tmp(), 'ev.jsonl');
    await writeLog(p, 12, { sealEvery: 5 });
    const key = verifyKey(p);
    rmSync(`${p}.seal-key`);
    const chain = await writeLog(p, 12, { sealEvery: 5, from: 12 });
    expect(chain.start).toMatchObject({ created: true, replacedKey: true });
    expect(readKeyFile(`${p}.verify-key`).chain).not.toBe(key.chain);
    const r = verifyFiles([p], key);
    expect(r.problem?.kind).toBe('foreign_chain');
    expect(r.notes.find((n) => n.kind === 'new_chain')).toBeDefined();
    expect(verifyFiles([p]).problem?.kind).toBe('foreign_chain');
  });

  it('a tail cut by a crash: repaired at start, noted, not tampering', async () => {
    const p = join(tmp(), 'ev.jsonl');
    await writeLog(p, 12, { sealEvery: 100 });
    const before = lines(p);
    appendFileSync(p, `${before[1]!}\n${before[2]!.slice(0, 30)}`); // a whole unsealed line, then half a line
    const chain = await writeLog(p, 5, { sealEvery: 100, from: 12 });
    expect(chain.start).toMatchObject({ cutBytes: 30, tailLines: 1 });
    const r = verifyFiles([p], verifyKey(p));
    expect(r.problem).toBeNull();
    expect(r.notes.find((n) => n.kind === 'tail_lost')).toMatchObject({ line: before.length + 2 });
    expect(r.notes.find((n) => n.kind === 'unsealed_tail')).toMatchObject({ line: before.length + 1 });
  });

  it('SIGKILL of a process writing through the sink, then a restart: an unsealed tail of N lines, named as such; the tail edited afterwards is not', async () => {
    const d = tmp();
    const out = join(resolve(__dirname, '../../node_modules/.cache'), `vigil-audit2-test-${process.pid}`);
    dirs.push(out);
    writeFileSync(
      join(d, 'tsconfig.json'),
      JSON.stringify({ extends: resolve(__dirname, '../../tsconfig.json'), compilerOptions: { rootDir: resolve(__dirname, '../../src'), outDir: out, sourceMap: false, noCheck: true, typeRoots: [resolve(__dirname, '../../node_modules/@types')] }, include: [], files: [resolve(__dirname, '../../src/sinks/audit-block.ts')] }),
    );
    const tsc = spawnSync(process.execPath, [resolve(__dirname, '../../node_modules/typescript/bin/tsc'), '-p', join(d, 'tsconfig.json')], { encoding: 'utf8' });
    expect(tsc.stderr + tsc.stdout).toBe('');
    writeFileSync(join(out, 'package.json'), '{"type":"module"}');
    const log = join(d, 'ev.jsonl');
    const child = join(d, 'child.mjs');
    // 2100 lines (seals at each 1000), then 50 more flushed: killed with at least 50 unsealed lines
    writeFileSync(
      child,
      `import { JsonlSink } from '${out}/sinks/jsonl.js';
import { AuditBlockChain } from '${out}/sinks/audit-block.js';
const chain = new AuditBlockChain({ logPath: ${JSON.stringify(log)}, sealEvery: 1000, sealIntervalMs: 0 });
const sink = new JsonlSink({ path: ${JSON.stringify(log)}, hook: chain });
const pad = 'y'.repeat(300);
let i = 0;
const put = (n) => { for (let k = 0; k < n; k++) { const v = { category: 'process_creation', i: i++, pad }; sink.write({ kind: 'event', value: v, json: JSON.stringify(v) }); } };
for (let b = 0; b < 21; b++) { put(100); await sink.flush(); }
await chain.drained();
await sink.flush();
put(50);
await sink.flush();
process.stdout.write('going\\n');
setInterval(() => {}, 1000);
`,
    );
    const c = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<boolean>((res) => {
      c.stdout.once('data', () => res(true));
      c.once('exit', () => res(false));
    });
    expect(started).toBe(true);
    c.kill('SIGKILL');
    await new Promise((r) => c.once('exit', r));
    const killed = lines(log);
    const lastSeal = killed.findLastIndex(isSeal);
    expect(lastSeal).toBeGreaterThan(0);
    const tail = killed.length - 1 - lastSeal;
    expect(tail).toBeGreaterThanOrEqual(50);
    const chain = await writeLog(log, 20, { sealEvery: 100 });
    expect(chain.start?.tailLines).toBe(tail);
    const r = verifyFiles([log], verifyKey(log));
    expect(r.problem).toBeNull();
    expect(r.notes.find((n) => n.kind === 'unsealed_tail')).toMatchObject({ line: lastSeal + 2 });
    expect(r.notes.find((n) => n.kind === 'unsealed_tail')!.message).toContain(`unsealed tail of ${tail} lines`);
    expect(r.notes.filter((n) => n.kind === 'start').length).toBe(2);
    expect(r.unsealed).toBe(0);
    // a line of that tail changed after the restart found it: named as a change of the tail, not a crash
    const ls = lines(log);
    ls[lastSeal + 5] = ls[lastSeal + 5]!.replace('"i":', '"I":');
    put(log, ls);
    expect(verifyFiles([log], verifyKey(log)).problem).toMatchObject({ kind: 'changed', line: lastSeal + 2 });
    // a line of it removed
    const rm = lines(log);
    rm.splice(lastSeal + 5, 1);
    put(log, rm);
    expect(verifyFiles([log], verifyKey(log)).problem).toMatchObject({ kind: 'removed' });
  }, 120_000);

  it('a log written in format 1 verifies as before; continued in format 2, both parts are checked, each in its format', async () => {
    const p = join(tmp(), 'ev.jsonl');
    const v1 = new AuditChain({ logPath: p, sealEvery: 10, sealIntervalMs: 0 });
    const s1 = new JsonlSink({ path: p, hook: v1 });
    for (let i = 0; i < 25; i++) s1.write(rec(i));
    await s1.close();
    const old = verifyFiles([p], verifyKey(p));
    expect(old).toMatchObject({ ok: true, format: 1, records: 25 });
    const chain = await writeLog(p, 20, { sealEvery: 10, from: 25 });
    expect(chain.start).toMatchObject({ afterFormat1: true, created: false });
    const r = verifyFiles([p], verifyKey(p));
    expect(r.problem).toBeNull();
    expect(r).toMatchObject({ ok: true, format: 2, records: 45 });
    expect(r.notes.find((n) => n.kind === 'format_1')?.message).toMatch(/25 records, seq 1\.\.\d+, \d+ seals \(\d+ checked with the key\), intact/);
    // a byte of the format-1 part: named by its own link, as format 1 always did
    const ls = lines(p);
    const at = lineOf(ls, 7);
    ls[at - 1] = ls[at - 1]!.replace('/tmp/7', '/tmp/8');
    put(p, ls);
    expect(verifyFiles([p], verifyKey(p)).problem).toMatchObject({ kind: 'changed', line: at });
  });
});
