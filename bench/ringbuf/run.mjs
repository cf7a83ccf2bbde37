#!/usr/bin/env node
/**
 * Ring-buffer throughput: the same kernel flood (bpf/flood.bpf.c: one 72-byte
 * record per getppid() of a generator process) consumed by
 *   - c-libbpf: a C consumer using libbpf's ring_buffer (the baseline), and
 *   - vigil-ts: vigil's TypeScript reader (src/kernel/ringbuf.ts) + record header decode,
 * in the same run, in two modes:
 *   live   consumer runs while the generator floods (rate and kernel drops)
 *   drain  generator fills the ring first, then the consumer empties it (pure consumer speed)
 * Prints both rates, the ratio TS/C, and drops. Needs root and a built tree (npm run build).
 * usage: node bench/ringbuf/run.mjs [--records N] [--drain-records N] [--json]
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfObject, RingBufferReader } from '../../dist/kernel/index.js';
import { decodeHeader } from '../../dist/events/records.js';
import { readKernelStats } from '../../dist/sensors/bpf-sensor.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const build = `${root}bench/.build`;
const obj = `${root}bpf/.output/flood.bpf.o`;
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const LIVE_N = arg('--records', 2_000_000);
const DRAIN_N = arg('--drain-records', 500_000);
const LIVE_RING = 16 * 1024 * 1024;
const DRAIN_RING = 64 * 1024 * 1024; // holds DRAIN_N 80-byte slots

function buildC() {
  mkdirSync(build, { recursive: true });
  execFileSync('gcc', ['-O2', '-o', `${build}/flood-gen`, `${root}bench/ringbuf/flood-gen.c`]);
  execFileSync('gcc', ['-O2', '-o', `${build}/c-consumer`, `${root}bench/ringbuf/c-consumer.c`, '-lbpf']);
}

function runC(n, ring, mode) {
  const out = execFileSync(`${build}/c-consumer`, [obj, `${build}/flood-gen`, String(n), String(ring), mode], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

async function runTs(n, ring, mode) {
  const o = BpfObject.open(obj, { maxEntries: { events: ring } });
  o.load();
  o.program('vigil_flood').attach();
  let received = 0;
  let seqsum = 0n;
  const reader = new RingBufferReader(
    o.map('events'),
    (v, _b, off, len) => {
      decodeHeader(v, off, len);
      seqsum += v.getBigUint64(off + 16, true);
      received++;
    },
    { budget: 65536 },
  );
  const gen = spawn(`${build}/flood-gen`, [String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let genOut = '';
  gen.stdout.on('data', (d) => (genOut += d));
  const key = Buffer.alloc(4);
  const val = Buffer.alloc(4);
  val.writeUInt32LE(gen.pid);
  o.map('flood_target').update(key, val);
  const exited = new Promise((r) => gen.on('exit', r));
  let t0 = process.hrtime.bigint();
  if (mode === 'live') reader.start();
  gen.stdin.write('go\n');
  await exited;
  if (mode === 'drain') t0 = process.hrtime.bigint();
  while (reader.drain() > 0);
  const t1 = process.hrtime.bigint();
  const drops = readKernelStats(o.map('vigil_stats')).rb_full ?? 0;
  reader.close();
  o.close();
  void seqsum;
  return { consumer: 'vigil-ts', mode, received, kernel_drops: drops, seconds: Number(t1 - t0) / 1e9, gen_seconds: Number(genOut.trim()) };
}

const rate = (r) => r.received / r.seconds;
const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`);

buildC();
const results = [];
for (const [mode, n, ring] of [
  ['live', LIVE_N, LIVE_RING],
  ['drain', DRAIN_N, DRAIN_RING],
]) {
  const c = runC(n, ring, mode);
  const ts = await runTs(n, ring, mode);
  results.push({ mode, records: n, c, ts, ratio: rate(ts) / rate(c) });
}
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(results, null, 2));
} else {
  console.log('mode   records   consumer   received   drops   rate/s     ratio ts/c');
  for (const r of results) {
    for (const x of [r.c, r.ts]) {
      console.log(
        `${r.mode.padEnd(6)} ${String(r.records).padEnd(9)} ${x.consumer.padEnd(10)} ${String(x.received).padEnd(10)} ${String(x.kernel_drops).padEnd(7)} ${fmt(rate(x)).padEnd(10)} ${x === r.ts ? `${(r.ratio * 100).toFixed(1)}%` : ''}`,
      );
    }
  }
  console.log('live: both consume while one generator floods (rate bounded by the producer; drops = kernel ring full).');
  console.log('drain: pure consumer speed on a pre-filled ring.');
}
const lost = results.some((r) => r.ts.received + r.ts.kernel_drops !== r.records || r.c.received + r.c.kernel_drops !== r.records);
if (lost) {
  console.error('UNACCOUNTED LOSS: received + kernel_drops != records generated');
  process.exitCode = 1;
}
