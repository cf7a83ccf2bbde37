/**
 * The tamper-evident audit log (src/sinks/audit-chain.ts, audit-verify.ts):
 * logs written by the real JSONL sink, then tampered with the way an attacker
 * would, and verified. A child process writing through the sink is killed with
 * SIGKILL mid-stream and the log restarted.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { JsonlSink } from '../../src/sinks/jsonl.js';
import { AuditChain, evolveKey, parseLink, readKeyFile, sealMac, sha, type AuditKey } from '../../src/sinks/audit-chain.js';
import { verifyFiles } from '../../src/sinks/audit-verify.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
  dirs.push(d);
  return d;
}

const rec = (i: number, pad = 0) => {
  const value = { category: 'process_creation', i, CommandLine: `/usr/bin/ls -la /tmp/${i}`, pad: 'x'.repeat(pad) };
  return { kind: 'event' as const, value, json: JSON.stringify(value) };
};

async function writeLog(path: string, n: number, o: { sealEvery?: number; maxBytes?: number; keep?: number; pad?: number; from?: number } = {}) {
  const chain = new AuditChain({ logPath: path, sealEvery: o.sealEvery ?? 10, sealIntervalMs: 0 });
  const sink = new JsonlSink({ path, hook: chain, maxBytes: o.maxBytes ?? 0, keep: o.keep ?? 5 });
  for (let i = 0; i < n; i++) {
    expect(sink.write(rec((o.from ?? 0) + i, o.pad ?? 0))).toBe(true);
    if (i % 7 === 0) {
      await sink.flush();
      await chain.drained(); // the key moves on off the event loop: let it, as a slower feed would
    }
  }
  await sink.close();
  return chain;
}

const lines = (p: string) => readFileSync(p, 'utf8').split('\n').slice(0, -1);
const put = (p: string, ls: string[]) => writeFileSync(p, ls.map((l) => `${l}\n`).join(''));
const verifyKey = (log: string): AuditKey => readKeyFile(`${log}.verify-key`);
/** 1-based line number of the first record line with `"i":n` */
const lineOf = (ls: string[], n: number) => ls.findIndex((l) => l.includes(`"i":${n},`)) + 1;

describe('audit chain: format and sealing', () => {
  it('links every line, seals every N lines, evolves and erases the key; verify with the key says intact', async () => {
    const p = join(tmp(), 'ev.jsonl');
    const chain = await writeLog(p, 45, { sealEvery: 10 });
    const ls = lines(p);
    // a start line, 45 records, a seal after every 10 lines and one at close
    expect(ls[0]).toMatch(/^\{"vigil\.audit":\{"event":"start"/);
    const sealAt = ls.map((l, i) => (l.startsWith('{"vigil.seal":') ? i : -1)).filter((i) => i >= 0);
    // a seal goes after the batch in which the 10th line since the last seal was accepted; one more at close
    expect(sealAt.length).toBeGreaterThanOrEqual(4);
    expect(sealAt.at(-1)).toBe(ls.length - 1);
    sealAt.slice(0, -1).forEach((at, k) => expect(at - (k ? sealAt[k - 1]! : 0)).toBeGreaterThanOrEqual(10));
    expect(ls.length).toBe(1 + 45 + sealAt.length);
    ls.forEach((l, i) => expect(parseLink(l)?.seq).toBe(i + 1));
    // every record keeps its own fields unchanged, the link last
    const first = JSON.parse(ls[1]!) as Record<string, unknown>;
    expect(first).toMatchObject(rec(0).value);
    expect(Object.keys(first).at(-1)).toBe('vigil.chain');
    // the key moved on 5 epochs; the file holds only the current one, 0600; the verification key is epoch 0
    const k = readKeyFile(`${p}.seal-key`);
    const v = verifyKey(p);
    expect(k.epoch).toBe(sealAt.length);
    expect(v.epoch).toBe(0);
    let e = v.key;
    for (let i = 0; i < sealAt.length; i++) e = evolveKey(e);
    expect(k.key.equals(e)).toBe(true);
    expect(statSync(`${p}.seal-key`).mode & 0o777).toBe(0o600);
    expect(statSync(`${p}.verify-key`).mode & 0o777).toBe(0o600);
    expect(existsSync(`${p}.seal-key.tmp`)).toBe(false);
    expect(chain.counts.seals).toBe(sealAt.length);
    const r = verifyFiles([p], v);
    expect(r.problem).toBeNull();
    expect(r).toMatchObject({ ok: true, records: 45, seals: sealAt.length, seals_checked: sealAt.length, unsealed: 0 });
  });

  it('pack (the sink\'s batch path) writes byte for byte what line() writes: non-ASCII, {}, SEQ crossing 9/10 and 99/100, a batch past the first buffer', () => {
    const d = tmp();
    const jsons: string[] = [];
    for (let i = 0; i < 150; i++) {
      if (i % 37 === 5) jsons.push('{}');
      else if (i % 11 === 3) jsons.push(JSON.stringify({ i, s: 'ü€😀\u0001'.repeat(200 + i) }));
      else jsons.push(JSON.stringify({ i, CommandLine: `/usr/bin/ls ${'x'.repeat(i * 3)}` }));
    }
    // the last line alone is far longer than the buffer sized for ASCII: the growth path
    jsons.push(JSON.stringify({ big: '€'.repeat(50_000) }));
    const made = (name: string) => {
      const path = join(d, name);
      const c = new AuditChain({ logPath: path, keyFile: join(d, 'k'), verifyKeyFile: join(d, `${name}.v`), sealEvery: 0, sealIntervalMs: 0 });
      const fd = openSync(path, 'a+');
      c.opened(fd, 0, 0, () => undefined);
      closeSync(fd);
      return c;
    };
    const a = made('a.jsonl');
    const b = made('b.jsonl');
    // same chain id and head for both: b continues from a's state
    (b as unknown as { head: string }).head = (a as unknown as { head: string }).head;
    const packed = Buffer.concat([a.pack(jsons.slice(0, 7)), a.pack(jsons.slice(7, 120)), a.pack(jsons.slice(120))]).toString('utf8');
    const one = jsons.map((j) => `${b.line(j)}\n`).join('');
    expect(packed).toBe(one);
    expect(parseLink(packed.split('\n').at(-2)!)?.seq).toBe(jsons.length + 1);
  });

  it('seals on time when records stop coming (no record needed to trigger it)', async () => {
    const p = join(tmp(), 'ev.jsonl');
    const chain = new AuditChain({ logPath: p, sealEvery: 0, sealIntervalMs: 200 });
    const sink = new JsonlSink({ path: p, hook: chain });
    sink.write(rec(1));
    await sink.flush();
    const t0 = Date.now();
    while (!lines(p).some((l) => l.startsWith('{"vigil.seal":')) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(lines(p).filter((l) => l.startsWith('{"vigil.seal":')).length).toBe(1);
    await sink.close();
    expect(verifyFiles([p], verifyKey(p))).toMatchObject({ ok: true, records: 1, seals: 1, unsealed: 0 });
  });
});

describe('audit verify: tampering', () => {
  async function sealed() {
    const p = join(tmp(), 'ev.jsonl');
    await writeLog(p, 40, { sealEvery: 10 });
    return { p, ls: lines(p), key: verifyKey(p) };
  }

  it('an edited byte: names the line', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 17);
    ls[at - 1] = ls[at - 1]!.replace('/tmp/17', '/tmp/18');
    put(p, ls);
    const r = verifyFiles([p], key);
    expect(r.problem).toMatchObject({ kind: 'changed', file: p, line: at });
  });

  it('a deleted line: names where it is missing', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 22);
    ls.splice(at - 1, 1);
    put(p, ls);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'removed', line: at });
  });

  it('a swapped pair: reordered', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 5);
    [ls[at - 1], ls[at]] = [ls[at]!, ls[at - 1]!];
    put(p, ls);
    const r = verifyFiles([p], key);
    expect(r.problem).toMatchObject({ kind: 'reordered', line: at });
    expect(r.problem!.message).toContain(`${p}:${at + 1}`);
  });

  it('an inserted line: a made-up record, a copy of another line', async () => {
    const { p, ls, key } = await sealed();
    const at = lineOf(ls, 30);
    put(p, [...ls.slice(0, at), '{"category":"process_creation","CommandLine":"innocent"}', ...ls.slice(at)]);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'inserted', line: at + 1 });
    put(p, [...ls.slice(0, at), ls[3]!, ...ls.slice(at)]);
    expect(verifyFiles([p], key).problem).toMatchObject({ kind: 'inserted', line: at + 1 });
    expect(verifyFiles([p], key).problem!.message).toContain(`${p}:4`);
  });

  it('a rewritten chain with seals forged with a later key (root after epoch 3): the first sealed epoch it touched fails', async () => {
    const { p, ls, key } = await sealed();
    // the attacker holds the current sealing key (epoch 3 or later) and rewrites record 3, then every link and seal after it
    const stolen = readKeyFile(`${p}.seal-key`);
    expect(stolen.epoch).toBeGreaterThanOrEqual(3);
    const at = lineOf(ls, 3);
    ls[at - 1] = ls[at - 1]!.replace('/tmp/3', '/tmp/X');
    let prevHash = parseLink(ls[at - 2]!)!.hash;
    for (let i = at - 1; i < ls.length; i++) {
      const l = ls[i]!;
      const link = parseLink(l)!;
      let body = l.slice(0, l.lastIndexOf('"vigil.chain":"'));
      if (body.startsWith('{"vigil.seal":')) {
        const s = JSON.parse(`${body.slice(0, -1)}}`)['vigil.seal'];
        const prev = parseLink(ls[i - 1]!)!;
        // a seal MAC made with the stolen key, whatever epoch it claims
        s.head = prev.hash;
        s.mac = sealMac(stolen.key, s.chain, s.epoch, prev.seq, prev.hash);
        body = `${JSON.stringify({ 'vigil.seal': s }).slice(0, -1)},`;
      }
      const pre = `${body}"vigil.chain":"${link.seq}:${prevHash}:`;
      prevHash = sha(pre);
      ls[i] = `${pre}${prevHash}"}`;
    }
    put(p, ls);
    // without the key the rewritten chain looks whole: only the seals can tell
    expect(verifyFiles([p]).ok).toBe(true);
    const r = verifyFiles([p], key);
    expect(r.problem?.kind).toBe('forged_seal');
    const firstSeal = ls.findIndex((l) => l.startsWith('{"vigil.seal":')) + 1;
    expect(r.problem?.line).toBe(firstSeal);
    // a seal made with the stolen key for its own epoch still verifies: the attacker owns the current epoch
    const forgedNow = sealMac(stolen.key, stolen.chain, stolen.epoch, 1, 'x'.repeat(43));
    let k = key.key;
    for (let i = 0; i < stolen.epoch; i++) k = evolveKey(k);
    expect(sealMac(k, stolen.chain, stolen.epoch, 1, 'x'.repeat(43))).toBe(forgedNow);
  });

  it('sealed lines removed together with their seal: the epoch gap is named', async () => {
    const { p, ls, key } = await sealed();
    const seals = ls.map((l, i) => (l.startsWith('{"vigil.seal":') ? i : -1)).filter((i) => i >= 0);
    // cut from after seal 1 through seal 2, and rewrite the links after it so the chain itself is whole
    const from = seals[0]! + 1;
    const to = seals[1]!;
    const kept = [...ls.slice(0, from), ...ls.slice(to + 1)];
    let prev = parseLink(kept[from - 1]!)!;
    for (let i = from; i < kept.length; i++) {
      const l = kept[i]!;
      let body = l.slice(0, l.lastIndexOf('"vigil.chain":"'));
      if (body.startsWith('{"vigil.seal":')) {
        const s = JSON.parse(`${body.slice(0, -1)}}`)['vigil.seal'];
        s.through = prev.seq;
        s.head = prev.hash;
        body = `${JSON.stringify({ 'vigil.seal': s }).slice(0, -1)},`;
      }
      const seq = prev.seq + 1;
      const pre = `${body}"vigil.chain":"${seq}:${prev.hash}:`;
      prev = { seq, prev: prev.hash, hash: sha(pre) };
      kept[i] = `${pre}${prev.hash}"}`;
    }
    put(p, kept);
    const r = verifyFiles([p]);
    expect(r.problem?.kind).toBe('missing_seal');
    expect(verifyFiles([p], key).problem?.kind).toBe('missing_seal');
  });
});

describe('audit chain: rotation, restart, SIGKILL', () => {
  it('continues across rotation (files given in any order) and restarts', async () => {
    const d = tmp();
    const p = join(d, 'ev.jsonl');
    await writeLog(p, 60, { sealEvery: 25, maxBytes: 4000, keep: 50, pad: 100 });
    await writeLog(p, 30, { sealEvery: 25, maxBytes: 4000, keep: 50, pad: 100, from: 60 });
    const files = Array.from({ length: 50 }, (_, i) => (i ? `${p}.${i}` : p)).filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(3);
    const r = verifyFiles(files, verifyKey(p));
    expect(r.problem).toBeNull();
    expect(r).toMatchObject({ first_seq: 1, records: 90, unsealed: 0 });
    expect(r.notes.filter((n) => n.kind === 'start').length).toBe(2);
    // the oldest files rotated away: checked from where the rest starts
    const tail = verifyFiles(files.slice(0, 3), verifyKey(p));
    expect(tail.problem).toBeNull();
    expect(tail.first_seq).toBeGreaterThan(1);
    // a later key (the sealing key copied off-host at some epoch) checks the seals from its epoch on
    const later = readKeyFile(`${p}.seal-key`);
    const { key: k0 } = verifyKey(p);
    let k = k0;
    for (let i = 0; i < 2; i++) k = evolveKey(k);
    const fromTwo = verifyFiles(files, { ...later, epoch: 2, key: k });
    expect(fromTwo.problem).toBeNull();
    expect(fromTwo.seals_checked).toBe(fromTwo.seals - 2);
    expect(fromTwo.notes.filter((n) => n.kind === 'seal_unchecked').map((n) => n.message)).toEqual(["2 seals from here, of epochs before the key's (2): not checked"]);
    // a rotated file alone: intact, its later seals are in the next file
    expect(verifyFiles([`${p}.2`], verifyKey(p)).ok).toBe(true);
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

  it('a tail cut by a crash: repaired at start, reported as an unsealed tail lost, not as tampering', async () => {
    const p = join(tmp(), 'ev.jsonl');
    await writeLog(p, 12, { sealEvery: 100 });
    const before = lines(p);
    appendFileSync(p, before.at(-2)!.slice(0, 50)); // half a line, as a killed write leaves it
    await writeLog(p, 5, { sealEvery: 100, from: 12 });
    const r = verifyFiles([p], verifyKey(p));
    expect(r.problem).toBeNull();
    expect(r.notes.find((n) => n.kind === 'tail_lost')).toMatchObject({ line: before.length + 1 });
  });

  it('SIGKILL of a process writing through the sink, then a restart: intact', async () => {
    const d = tmp();
    // compiled under node_modules/.cache so the child resolves the project's packages (koffi)
    const out = join(resolve(__dirname, '../../node_modules/.cache'), `vigil-audit-test-${process.pid}`);
    dirs.push(out);
    // the child runs the real sink and chain, compiled from src/
    writeFileSync(
      join(d, 'tsconfig.json'),
      JSON.stringify({ extends: resolve(__dirname, '../../tsconfig.json'), compilerOptions: { rootDir: resolve(__dirname, '../../src'), outDir: out, sourceMap: false, noCheck: true, typeRoots: [resolve(__dirname, '../../node_modules/@types')] }, include: [], files: [resolve(__dirname, '../../src/sinks/audit-chain.ts')] }),
    );
    const tsc = spawnSync(process.execPath, [resolve(__dirname, '../../node_modules/typescript/bin/tsc'), '-p', join(d, 'tsconfig.json')], { encoding: 'utf8' });
    expect(tsc.stderr + tsc.stdout).toBe('');
    writeFileSync(join(out, 'package.json'), '{"type":"module"}');
    const log = join(d, 'ev.jsonl');
    const child = join(d, 'child.mjs');
    writeFileSync(
      child,
      `import { JsonlSink } from '${out}/sinks/jsonl.js';
import { AuditChain } from '${out}/sinks/audit-chain.js';
const chain = new AuditChain({ logPath: ${JSON.stringify(log)}, sealEvery: 500, sealIntervalMs: 0 });
const sink = new JsonlSink({ path: ${JSON.stringify(log)}, hook: chain });
let i = 0;
const pad = 'y'.repeat(300);
function more() {
  for (let k = 0; k < 200; k++) { const v = { category: 'process_creation', i: i++, pad }; sink.write({ kind: 'event', value: v, json: JSON.stringify(v) }); }
  if (i === 2000) process.stdout.write('going\\n');
  setImmediate(more);
}
more();
`,
    );
    const c = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<boolean>((res) => {
      c.stdout.once('data', () => res(true));
      c.once('exit', () => res(false));
    });
    expect(started).toBe(true);
    // killed while it writes, once the log holds a seal of its own and over 1,000 lines (not after a fixed
    // time: on a busy machine the writer may not have got that far)
    const t0 = Date.now();
    while (!(lines(log).length > 1000 && lines(log).some((l) => l.startsWith('{"vigil.seal":'))) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
    c.kill('SIGKILL');
    await new Promise((r) => c.once('exit', r));
    const killed = lines(log);
    expect(killed.length).toBeGreaterThan(1000);
    await writeLog(log, 20, { sealEvery: 100 });
    const r = verifyFiles([log], verifyKey(log));
    expect(r.problem).toBeNull();
    // at least one seal made by the killed writer, one at the clean close after the restart
    expect(r.seals).toBeGreaterThanOrEqual(2);
    const text = readFileSync(log, 'utf8');
    expect(text.indexOf('{"vigil.seal":')).toBeLessThan(text.lastIndexOf('{"vigil.audit":{"event":"start"'));
    expect(r.notes.filter((n) => n.kind === 'start').length).toBe(2);
    expect(r.unsealed).toBe(0);
  }, 120_000);
});

