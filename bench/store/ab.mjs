#!/usr/bin/env node
/**
 * The store's writer, A against B in one process: two builds of src/store (EventStore.insertBatch
 * with its text index) write an exec storm's rows (a process row, its process_creation and its
 * process_termination per exec, in the agent's shape: the process fields in the process row,
 * GUIDs made as vigil makes them) into two stores, in short segments that alternate A and B.
 * Prints each one's CPU per exec (medians of the segments) and B's over A's: the median of the
 * segments' ratios and their quartiles. The host's noise falls on both alike: on the 2-core
 * machine of the README, A against itself gives medians of 0.99-1.01 over 20-30 segments
 * (quartiles about ±10 %), where one run after another moves by ±15 %. Not part of CI.
 *
 *   npm run build && taskset -c 0 node bench/store/ab.mjs --b ../other-checkout [--a DIR] [--segments 30]
 *       [--batch 500] [--sql-a SQL] [--sql-b SQL] [--no-text-index] [--json]
 *
 * --a / --b: a checkout (its dist/store/store.js) or a dist/ directory; A defaults to this tree,
 * B to A (then --sql-b makes the difference, e.g. --sql-b 'PRAGMA wal_autocheckpoint=20000').
 * --sql-a / --sql-b: SQL each store runs after it opens.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const count = (name, def) => {
  const n = Number(opt(name, def));
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`store/ab: ${name} ${opt(name, '')}: a whole number, 1 or more`);
    process.exit(2);
  }
  return n;
};
const SEGMENTS = count('--segments', 30);
const BATCH = count('--batch', 500);
const BATCHES_PER_SEGMENT = 4;
const TEXT_INDEX = !argv.includes('--no-text-index');

/** dist/store/store.js of a checkout or of a dist directory */
function storeModule(dir) {
  for (const p of [join(dir, 'dist/store/store.js'), join(dir, 'store/store.js')]) if (existsSync(p)) return p;
  console.error(`store/ab: ${dir}: no dist/store/store.js there (npm run build in it)`);
  process.exit(2);
}
const aDir = resolve(opt('--a', root));
const bDir = resolve(opt('--b', aDir));
const A = await import(pathToFileURL(storeModule(aDir)).href);
// the same file twice would be one module: B gets its own instance through a query string
const B = await import(`${pathToFileURL(storeModule(bDir)).href}?b`);

const work = mkdtempSync(join(tmpdir(), 'vigil-store-ab-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143));

/** One side: its store and the next ids its rows take. */
function side(mod, name, sql) {
  const st = mod.EventStore.open(join(work, `${name}.db`), { textIndex: TEXT_INDEX });
  if (sql) st.db.exec(sql);
  return { st, id: 1, seq: 0, pid: 5000 };
}
const a = side(A, 'a', opt('--sql-a', null));
const b = side(B, 'b', opt('--sql-b', null));

const guid = (pid, start) => {
  const h = createHash('sha1').update(`bench-host:${pid}:${start}`).digest('hex');
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
};
const DETAIL = '{"argv":["/usr/bin/true","--config","/etc/app/config.yaml","--run=bench000"],"argc":4,"exe_dev":266338304,"exe_ino":"260368"}';
const CREATION = 1 | 2 | 4 | 8 | 16 | 32 | 64 | 128 | 256 | 512 | 1024;
const TERMINATION = 1 | 2 | 4 | 32 | 64 | 128 | 256 | 512;

/** A batch of the storm's rows for one side (each side numbers its own rows). */
function batch(s) {
  const rows = [];
  const procs = [];
  for (let i = 0; i < BATCH; i++) {
    const pid = ++s.pid;
    const id = s.id++;
    const start = 45281537303101 + s.seq * 523;
    procs.push([id, guid(pid, start), pid, 4242, null, '/usr/bin/true', '/usr/bin/true --config /etc/app/config.yaml --run=bench000', '/work', 0, DETAIL]);
    const ts = 1796121352596 + s.seq;
    const stamp = `2026-12-01T10:32:36.${String(s.seq % 1e6).padStart(6, '0')}Z`;
    const vig = (extra) => `"vigil":{"schema":1,"seq":${++s.seq},"boot_ns":"${45281540222193 + s.seq * 517}"${extra}}`;
    rows.push(['event', ts, 'process_creation', id, CREATION, null, null, `{"category":"process_creation","timestamp":"${stamp}","Hostname":"bench","User":"root","LogonId":4294967295,${vig(`,"tid":${pid},"uid":0,"gid":0,"euid":0,"session_id":4294967295,"comm":"true","cgroup_id":"1","start_ns":"${start}"`)}}`]);
    rows.push(['event', ts + 1, 'process_termination', id, TERMINATION, null, null, `{"category":"process_termination","timestamp":"${stamp}","Hostname":"bench","User":"root",${vig(',"exit_status":0,"exit_code":0,"signal":0')}}`]);
  }
  return { rows, procs };
}

/** One segment of a side: its batches made first, then written; CPU µs per exec. */
function segment(s) {
  const bs = Array.from({ length: BATCHES_PER_SEGMENT }, () => batch(s));
  const t = process.cpuUsage();
  for (const x of bs) s.st.insertBatch(x.rows, x.procs);
  const c = process.cpuUsage(t);
  return (c.user + c.system) / (BATCH * BATCHES_PER_SEGMENT);
}

// warm-up (the JIT, the page cache), not measured
for (let i = 0; i < 4; i++) {
  segment(a);
  segment(b);
}
const xa = [];
const xb = [];
for (let i = 0; i < SEGMENTS; i++) {
  // a turn of the event loop between segments (not measured): Ctrl-C or SIGTERM ends the bench here
  await new Promise(setImmediate);
  // the order alternates: neither side always runs right after the other's garbage
  if (i % 2) {
    xa.push(segment(a));
    xb.push(segment(b));
  } else {
    xb.push(segment(b));
    xa.push(segment(a));
  }
}
a.st.close();
b.st.close();
const sorted = (x) => [...x].sort((p, q) => p - q);
const median = (x) => sorted(x)[x.length >> 1];
const ratios = sorted(xa.map((v, i) => xb[i] / v));
const out = {
  a: aDir,
  b: bDir,
  sql_a: opt('--sql-a', null),
  sql_b: opt('--sql-b', null),
  text_index: TEXT_INDEX,
  segments: SEGMENTS,
  execs_per_segment: BATCH * BATCHES_PER_SEGMENT,
  a_us_per_exec: median(xa),
  b_us_per_exec: median(xb),
  ratio: median(ratios),
  ratio_quartiles: [ratios[ratios.length >> 2], ratios[(3 * ratios.length) >> 2]],
};
if (argv.includes('--json')) console.log(JSON.stringify(out, null, 2));
else {
  console.log(`store writer A/B: ${SEGMENTS} alternating segments of ${out.execs_per_segment} execs (a process row and 2 event rows each), text index ${TEXT_INDEX ? 'on' : 'off'}`);
  console.log(`A ${aDir}${out.sql_a ? ` + ${out.sql_a}` : ''}: ${out.a_us_per_exec.toFixed(2)} µs CPU per exec`);
  console.log(`B ${bDir}${out.sql_b ? ` + ${out.sql_b}` : ''}: ${out.b_us_per_exec.toFixed(2)} µs CPU per exec`);
  console.log(`B/A: ${out.ratio.toFixed(3)} (quartiles ${out.ratio_quartiles[0].toFixed(3)}-${out.ratio_quartiles[1].toFixed(3)})`);
}
