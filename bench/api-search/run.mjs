#!/usr/bin/env node
// bench/api-search: event search through the local API on a store of N events (default 1,000,000).
//
//   npm run build && node bench/api-search/run.mjs [--events 1000000] [--runs 20] [--keep DIR]
//
// Fills a SQLite store through the store's own insert path (EventStore.insertBatch, batches of
// 10,000 in one transaction each), starts the real API server (fastify, the bearer token) on
// loopback and times GET /api/events and /api/alerts with the console's typical filters:
// median and p95 over --runs after one warm-up, end to end over HTTP, each next to the
// baseline of the same run (the newest 100 events, no filter). Target: under 200 ms.
// Not in CI. Rows are stored whole (JSON, no process row: the store's version-1 shape), so
// field matches read every candidate row's JSON: the slow case for field filters.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore, toRow } from '../../dist/store/store.js';
import { ApiServer } from '../../dist/api/index.js';
import { ProcessContext } from '../../dist/process/context.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const N = Number(arg('events', 1_000_000));
const RUNS = Number(arg('runs', 20));
const keep = arg('keep', null);
const dir = keep ?? mkdtempSync(join(tmpdir(), 'vigil-api-bench-'));
const db = join(dir, 'vigil.db');

const IMAGES = ['/usr/bin/bash', '/usr/bin/ls', '/usr/bin/cat', '/usr/bin/grep', '/usr/bin/sed', '/usr/bin/python3', '/usr/bin/git', '/usr/bin/node', '/usr/bin/ssh', '/usr/bin/make'];
const CATS = ['process_creation', 'process_creation', 'process_termination', 'file_event', 'network_connection'];
const t0ms = Date.now() - N * 3; // one event every 3 ms, ending now (~50 minutes for 1M)

function event(i) {
  const cat = CATS[i % CATS.length];
  // rare ones the searches look for: curl 1 in 1,000, base64 -d 1 in 100,000
  const image = i % 1000 === 7 ? '/usr/bin/curl' : i % 100_000 === 11 ? '/usr/bin/base64' : IMAGES[i % IMAGES.length];
  const cmd = image === '/usr/bin/base64' ? 'base64 -d /tmp/payload' : `${image.split('/').pop()} --arg ${i % 977} /home/user/project/file-${i % 5003}.txt`;
  const ts = new Date(t0ms + i * 3).toISOString().replace('Z', '000Z');
  return {
    category: cat, timestamp: ts, ProcessGuid: `{00000000-0000-0000-0000-${String(i).padStart(12, '0')}}`, ProcessId: 1000 + (i % 30000),
    Image: image, CommandLine: cmd, CurrentDirectory: '/home/user/project', User: i % 50 === 0 ? 'root' : 'user', ParentProcessId: 900 + (i % 500),
    ParentImage: '/usr/bin/bash', ParentCommandLine: 'bash', Hostname: 'bench', vigil: { comm: image.split('/').pop() },
  };
}

const fill0 = performance.now();
const store = EventStore.open(db);
const BATCH = 10_000;
let alerts = 0;
for (let i = 0; i < N; i += BATCH) {
  const rows = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) {
    const ev = event(j);
    rows.push(toRow('event', ev, JSON.stringify(ev)));
    if (ev.Image === '/usr/bin/curl' && j % 10_000 === 7) {
      const a = { rule_id: 'bench-curl', rule_title: 'curl seen', level: 'medium', timestamp: ev.timestamp, event: ev };
      rows.push(toRow('alert', a, JSON.stringify(a)));
      alerts++;
    }
  }
  store.insertBatch(rows);
}
const fillMs = performance.now() - fill0;
store.close();
console.log(`store: ${N.toLocaleString('en')} events + ${alerts} alerts inserted in ${(fillMs / 1000).toFixed(1)} s (${Math.round(N / (fillMs / 1000)).toLocaleString('en')} rows/s), ${db}`);

const token = 'B'.repeat(43);
const server = new ApiServer({
  host: '127.0.0.1', port: 0, token, version: 'bench', db,
  stats: () => ({ uptimeMs: 0, events: 0, byCategory: {}, alerts: 0, sensors: {}, processTable: { live: 0, exited: 0, evicted: 0, seeded: 0 }, sinks: {}, drops: { kernel: 0, decode: 0, sinks: 0 } }),
  process: new ProcessContext({ host: 'bench', bootId: 'bench' }), detector: null, enforcement: () => ({ state: 'off' }),
});
const base = await server.listen();

const Q = [
  ['baseline: newest 100 events', '/api/events'],
  ['category=process_creation, newest 100', '/api/events?category=process_creation'],
  ['since=10m (about 200k events in range), newest 100', '/api/events?since=10m'],
  ['category + since=10m', '/api/events?category=network_connection&since=10m'],
  ['Image=/usr/bin/curl (1 in 1,000), newest 100', `/api/events?field=${encodeURIComponent('Image=/usr/bin/curl')}`],
  ['Image~*/curl glob (1 in 1,000), newest 100', `/api/events?field=${encodeURIComponent('Image~*/curl')}`],
  ['CommandLine~*base64 -d* (1 in 100,000: 10 matches)', `/api/events?field=${encodeURIComponent('CommandLine~*base64 -d*')}`],
  ['CommandLine~*base64 -d* + since=10m', `/api/events?since=10m&field=${encodeURIComponent('CommandLine~*base64 -d*')}`],
  ['ProcessId=1234 + category', '/api/events?category=process_creation&field=ProcessId=1234'],
  ['no match at all (Image=/nonexistent): a full scan', `/api/events?field=${encodeURIComponent('Image=/nonexistent')}`],
  ['alerts, newest 100', '/api/alerts'],
  ['alerts of a rule', '/api/alerts?rule=bench-curl'],
  ['500 newest events (limit=500)', '/api/events?limit=500'],
];

const headers = { Authorization: `Bearer ${token}` };
async function once(url) {
  const t = performance.now();
  const r = await fetch(base + url, { headers });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - t, n: body.records.length };
}
const results = [];
for (const [label, url] of Q) {
  await once(url);
  const times = [];
  let n = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = await once(url);
    times.push(r.ms);
    n = r.n;
  }
  times.sort((a, b) => a - b);
  results.push({ label, n, median: times[Math.floor(times.length / 2)], p95: times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)] });
}
const baseMed = results[0].median;
console.log(`\nGET over HTTP with the bearer token, ${RUNS} runs each (after one warm-up); target < 200 ms\n`);
console.log(`${'query'.padEnd(56)} ${'rows'.padStart(5)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(8)} ${'x baseline'.padStart(10)}  <200ms`);
for (const r of results) {
  console.log(`${r.label.padEnd(56)} ${String(r.n).padStart(5)} ${r.median.toFixed(1).padStart(10)} ${r.p95.toFixed(1).padStart(8)} ${(r.median / baseMed).toFixed(1).padStart(10)}  ${r.p95 < 200 ? 'yes' : 'NO'}`);
}
await server.close();
if (!keep) rmSync(dir, { recursive: true, force: true });
