#!/usr/bin/env node
// bench/api-search: event search through the local API on a store of N events (default 1,000,000),
// before and after the text index (store schema 5: chunked), and the store's write throughput with and without it.
//
//   npm run build && node bench/api-search/run.mjs [--events 1000000] [--runs 20] [--runs-before 3]
//                     [--write-events 100000] [--write-runs 3] [--keep DIR]
//
// 1. Writes: --write-events rows into a fresh store with the text index and into one without it
//    (its table and trigger dropped: schema 3's indexes), alternating, --write-runs times each, in
//    two shapes: whole rows (each event's JSON, no process row) and process rows (the agent's shape:
//    a process row per two events, the event rows without the process fields). Rows/s, median; and
//    the time to prune the oldest tenth of the rows (store.max_rows), per 1,000 rows.
// 2. Fills a store of N events through EventStore.insertBatch (batches of 10,000 in one transaction
//    each) without the text index: schema 3, as a store written before it.
// 3. Before: starts the real API server (fastify, the bearer token) on loopback and times GET
//    /api/events and /api/alerts with the console's filters (--runs-before runs: slow ones take s).
// 4. Migrates the store to schema 5 (opening it for writing indexes the events already stored; timed).
// 5. After: the same searches, --runs runs each after one warm-up: median and p95 end to end over
//    HTTP, next to the baseline of the same run (the newest 100 events, no filter). Target: < 200 ms.
// Not in CI. The N-event store holds whole rows (no process rows), as the store's version-1 shape;
// the text index holds the same text for both shapes.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore, PMASK, toRow } from '../../dist/store/store.js';
import { ApiServer } from '../../dist/api/index.js';
import { ProcessContext } from '../../dist/process/context.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const N = Number(arg('events', 1_000_000));
const RUNS = Number(arg('runs', 20));
const RUNS_BEFORE = Number(arg('runs-before', 3));
const WN = Number(arg('write-events', 100_000));
const WRUNS = Number(arg('write-runs', 3));
const keep = arg('keep', null);
const dir = keep ?? mkdtempSync(join(tmpdir(), 'vigil-api-bench-'));
const db = join(dir, 'vigil.db');

const IMAGES = ['/usr/bin/bash', '/usr/bin/ls', '/usr/bin/cat', '/usr/bin/grep', '/usr/bin/sed', '/usr/bin/python3', '/usr/bin/git', '/usr/bin/node', '/usr/bin/ssh', '/usr/bin/make'];
const CATS = ['process_creation', 'process_creation', 'process_termination', 'file_event', 'network_connection'];
const t0ms = Date.now() - N * 3; // one event every 3 ms, ending now (~50 minutes for 1M)

/** A ProcessGuid as vigil makes one (ProcessContext.guid: a SHA-1 in GUID form, so its characters are random). */
function guid(key) {
  const h = createHash('sha1').update(`bench:${key}`).digest('hex');
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
}

function event(i) {
  const cat = CATS[i % CATS.length];
  // rare ones the searches look for: curl 1 in 1,000, base64 -d 1 in 100,000
  const image = i % 1000 === 7 ? '/usr/bin/curl' : i % 100_000 === 11 ? '/usr/bin/base64' : IMAGES[i % IMAGES.length];
  const cmd = image === '/usr/bin/base64' ? 'base64 -d /tmp/payload' : `${image.split('/').pop()} --arg ${i % 977} /home/user/project/file-${i % 5003}.txt`;
  const ts = new Date(t0ms + i * 3).toISOString().replace('Z', '000Z');
  return {
    category: cat, timestamp: ts, ProcessGuid: guid(i), ProcessId: 1000 + (i % 30000),
    Image: image, CommandLine: cmd, CurrentDirectory: '/home/user/project', User: i % 50 === 0 ? 'root' : 'user', ParentProcessId: 900 + (i % 500),
    ParentImage: '/usr/bin/bash', ParentCommandLine: 'bash', Hostname: 'bench', vigil: { comm: image.split('/').pop() },
  };
}

/** Batches of whole rows (and an alert per 10,000 events). */
function wholeBatch(from, to) {
  const rows = [];
  let alerts = 0;
  for (let j = from; j < to; j++) {
    const ev = event(j);
    rows.push(toRow('event', ev, JSON.stringify(ev)));
    if (ev.Image === '/usr/bin/curl' && j % 10_000 === 7) {
      const a = { rule_id: 'bench-curl', rule_title: 'curl seen', level: 'medium', timestamp: ev.timestamp, event: ev };
      rows.push(toRow('alert', a, JSON.stringify(a)));
      alerts++;
    }
  }
  return { rows, procs: [], alerts };
}

const MOVED = PMASK.ProcessGuid | PMASK.ProcessId | PMASK.Image | PMASK.CommandLine | PMASK.CurrentDirectory | PMASK.ParentProcessId | PMASK.ParentProcessGuid | PMASK.ParentImage | PMASK.ParentCommandLine;
const PARENTS = 500;

/** The agent's shape: a process row per two events (after PARENTS parent rows), event rows without the process fields. */
function processBatch(from, to) {
  const rows = [];
  const procs = [];
  if (from === 0) for (let k = 0; k < PARENTS; k++) procs.push([k + 1, guid(`parent-${k}`), 900 + k, 1, null, '/usr/bin/bash', 'bash', '/home/user', 1000, null]);
  for (let j = from; j < to; j++) {
    const ev = event(j - (j % 2));
    const id = PARENTS + 1 + (j >> 1);
    if (j % 2 === 0) procs.push([id, ev.ProcessGuid, ev.ProcessId, ev.ParentProcessId, 1 + ((j >> 1) % PARENTS), ev.Image, ev.CommandLine, ev.CurrentDirectory, 1000, null]);
    const own = { category: j % 2 ? 'process_termination' : 'process_creation', timestamp: ev.timestamp, User: ev.User, Hostname: ev.Hostname, vigil: ev.vigil };
    rows.push(['event', t0ms + j * 3, own.category, id, MOVED, null, null, JSON.stringify(own)]);
  }
  return { rows, procs, alerts: 0 };
}

/** A store without the text index: its tables and triggers dropped (schema 3's indexes). */
function withoutTextIndex(st) {
  st.db.exec('DROP TRIGGER records_text_delete; DROP TRIGGER records_text_chunk_delete; DROP TABLE records_text_chunks; DROP TABLE records_text; PRAGMA user_version = 3;');
}

const BATCH = 10_000;
/** Rows/s writing n rows of a shape into a fresh store (with or without the text index). */
function writeRate(shape, n, index) {
  const wdir = mkdtempSync(join(tmpdir(), 'vigil-write-bench-'));
  const st = EventStore.open(join(wdir, 'w.db'));
  if (!index) withoutTextIndex(st);
  const make = shape === 'whole' ? wholeBatch : processBatch;
  let ms = 0;
  for (let i = 0; i < n; i += BATCH) {
    const b = make(i, Math.min(n, i + BATCH));
    const t = performance.now();
    st.insertBatch(b.rows, b.procs);
    ms += performance.now() - t;
  }
  // pruning (store.max_rows): the oldest tenth deleted
  const t = performance.now();
  st.prune(n - Math.floor(n / 10), false);
  const pruneMs = performance.now() - t;
  st.close();
  rmSync(wdir, { recursive: true, force: true });
  return { rate: n / (ms / 1000), prune: (pruneMs / Math.floor(n / 10)) * 1000 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => Math.round(x).toLocaleString('en');
if (WN > 0) {
  console.log(`store writes: ${WN.toLocaleString('en')} event rows into a fresh store, batches of ${BATCH.toLocaleString('en')}, ${WRUNS} runs each (alternating), median rows/s\n`);
  console.log(`${'shape'.padEnd(44)} ${'no text index'.padStart(14)} ${'text index'.padStart(12)} ${'ratio'.padStart(7)}   prune ms per 1,000 rows: without / with`);
  for (const shape of ['whole', 'process']) {
    const without = [];
    const withIdx = [];
    for (let k = 0; k < WRUNS; k++) {
      without.push(writeRate(shape, WN, false));
      withIdx.push(writeRate(shape, WN, true));
    }
    const label = shape === 'whole' ? 'whole rows (JSON only)' : 'process rows (1 per 2 events) + event rows';
    const w = median(without.map((x) => x.rate));
    const x = median(withIdx.map((y) => y.rate));
    console.log(`${label.padEnd(44)} ${fmt(w).padStart(14)} ${fmt(x).padStart(12)} ${(x / w).toFixed(2).padStart(7)}   ${median(without.map((y) => y.prune)).toFixed(1)} / ${median(withIdx.map((y) => y.prune)).toFixed(1)}`);
  }
  console.log('');
}

const fill0 = performance.now();
const store = EventStore.open(db);
withoutTextIndex(store);
let alerts = 0;
for (let i = 0; i < N; i += BATCH) {
  const b = wholeBatch(i, Math.min(N, i + BATCH));
  alerts += b.alerts;
  store.insertBatch(b.rows);
}
const fillMs = performance.now() - fill0;
store.close();
console.log(`store: ${N.toLocaleString('en')} events + ${alerts} alerts inserted (schema 3, no text index) in ${(fillMs / 1000).toFixed(1)} s (${Math.round(N / (fillMs / 1000)).toLocaleString('en')} rows/s), ${db}`);

const token = 'B'.repeat(43);
const headers = { Authorization: `Bearer ${token}` };
const enc = encodeURIComponent;
const mid = guid(Math.floor(N / 2));
// time bounds as RFC 3339 times relative to the newest event (the same rows before and after)
const endMs = t0ms + N * 3;
const ago = (min) => enc(new Date(endMs - min * 60_000).toISOString());
const Q = [
  ['baseline: newest 100 events', '/api/events'],
  ['category=process_creation, newest 100', '/api/events?category=process_creation'],
  ['since=10m (about 200k events in range), newest 100', `/api/events?since=${ago(10)}`],
  ['category + since=10m', `/api/events?category=network_connection&since=${ago(10)}`],
  ['Image=/usr/bin/curl (1 in 1,000), newest 100', `/api/events?field=${enc('Image=/usr/bin/curl')}`],
  ['Image~*/curl glob (1 in 1,000), newest 100', `/api/events?field=${enc('Image~*/curl')}`],
  ['Image~*/cu?l (a ? wildcard)', `/api/events?field=${enc('Image~*/cu?l')}`],
  ['CommandLine~*base64 -d* (1 in 100,000: 10 matches)', `/api/events?field=${enc('CommandLine~*base64 -d*')}`],
  ['CommandLine~*base64 -d* + since=10m', `/api/events?since=${ago(10)}&field=${enc('CommandLine~*base64 -d*')}`],
  ['CommandLine~*file-4999.txt, oldest first (reverse)', `/api/events?reverse=1&field=${enc('CommandLine~*file-4999.txt')}`],
  ['ProcessId=1234 + category', '/api/events?category=process_creation&field=ProcessId=1234'],
  ['ProcessGuid={…} of one event in the middle', `/api/events?field=${enc(`ProcessGuid=${mid}`)}`],
  ['vigil.comm=curl (a nested field)', `/api/events?field=${enc('vigil.comm=curl')}`],
  ['User=root (1 in 50) + Image~*/ls', `/api/events?field=${enc('User=root')}&field=${enc('Image~*/ls')}`],
  ['Image~*/bash (1 in 10) + until=40m (an old range)', `/api/events?until=${ago(40)}&field=${enc('Image~*/bash')}`],
  ['Image~*/curl + since=45m until=30m', `/api/events?since=${ago(45)}&until=${ago(30)}&field=${enc('Image~*/curl')}`],
  ['User~r* (short literal: not indexed; common)', `/api/events?field=${enc('User~r*')}`],
  ['no match at all (Image=/nonexistent)', `/api/events?field=${enc('Image=/nonexistent')}`],
  ['User=user, limit=500 (common)', `/api/events?limit=500&field=${enc('User=user')}`],
  ['alerts, newest 100', '/api/alerts'],
  ['alerts of a rule', '/api/alerts?rule=bench-curl'],
  ['500 newest events (limit=500)', '/api/events?limit=500'],
];

/** Every search of Q through a fresh API server: median and p95 of `runs` runs after one warm-up. */
async function measure(runs) {
  const server = new ApiServer({
    host: '127.0.0.1', port: 0, token, version: 'bench', db,
    stats: () => ({ uptimeMs: 0, events: 0, byCategory: {}, alerts: 0, sensors: {}, processTable: { live: 0, exited: 0, evicted: 0, seeded: 0 }, sinks: {}, drops: { kernel: 0, decode: 0, sinks: 0 } }),
    process: new ProcessContext({ host: 'bench', bootId: 'bench' }), detector: null, enforcement: () => ({ state: 'off' }),
  });
  const base = await server.listen();
  async function once(url) {
    const t = performance.now();
    const r = await fetch(base + url, { headers });
    const body = await r.json();
    if (r.status !== 200) throw new Error(`${url}: ${r.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - t, n: body.records.length, ids: body.records.map((x) => x.id).join(',') };
  }
  const results = [];
  for (const [label, url] of Q) {
    const first = await once(url);
    const times = [];
    for (let i = 0; i < runs; i++) times.push((await once(url)).ms);
    times.sort((a, b) => a - b);
    results.push({ label, n: first.n, ids: first.ids, median: times[Math.floor(times.length / 2)], p95: times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)] });
  }
  await server.close();
  return results;
}

const before = await measure(RUNS_BEFORE);
const mig0 = performance.now();
EventStore.open(db).close();
const migMs = performance.now() - mig0;
console.log(`migration to schema 5 (indexing the ${N.toLocaleString('en')} stored events): ${(migMs / 1000).toFixed(1)} s`);
const after = await measure(RUNS);
const baseMed = after[0].median;
console.log(`\nGET over HTTP with the bearer token, after one warm-up: before (schema 3, ${RUNS_BEFORE} runs) and after (text index, ${RUNS} runs); target < 200 ms\n`);
console.log(`${'query'.padEnd(52)} ${'rows'.padStart(5)} ${'before ms'.padStart(10)} ${'after ms'.padStart(9)} ${'p95 ms'.padStart(8)} ${'x base'.padStart(7)}  <200ms  same rows`);
for (let i = 0; i < after.length; i++) {
  const a = after[i];
  const b = before[i];
  console.log(`${a.label.padEnd(52)} ${String(a.n).padStart(5)} ${b.median.toFixed(1).padStart(10)} ${a.median.toFixed(1).padStart(9)} ${a.p95.toFixed(1).padStart(8)} ${(a.median / baseMed).toFixed(1).padStart(7)}  ${(a.p95 < 200 ? 'yes' : 'NO').padEnd(6)}  ${a.ids === b.ids ? 'yes' : 'NO'}`);
}
if (after.some((a, i) => a.ids !== before[i].ids)) process.exitCode = 1;
if (!keep) rmSync(dir, { recursive: true, force: true });
