#!/usr/bin/env node
/**
 * Pipeline throughput on one core: recorded ring-buffer records (record.mjs,
 * made once per machine) replayed through the agent's whole path
 *   decode → process table → event → Sigma (SigmaHQ rules/linux) → JSONL + SQLite
 * as fast as it goes, with stages switched on one by one over the same records
 * in the same process:
 *   read      walk the records and decode their headers (the baseline)
 *   events    + the sensors' decoders, process table, event objects (and the one
 *               JSON serialization the agent does per event)
 *   sigma     + Sigma detection with every SigmaHQ linux rule
 *   jsonl     + the JSONL audit log
 *   full-notext + the SQLite store (worker thread) with store.text_index off
 *   full      + the SQLite store (worker thread) with its text index (the default)
 * Sinks are waited for (their pending work is bounded as in the agent; the feed
 * pauses while a sink is over its bound, so the rate is what the sinks sustain,
 * with 0 drops) and the time runs until everything is flushed and closed.
 * Prints events/s, CPU µs per event, and each stage's rate as a ratio of the baseline.
 *
 *   taskset -c 0 node bench/pipeline/run.mjs [--rounds 5] [--mix exec|file|network|all] [--stages read,events,...] [--record] [--json] [--profile FILE]
 * Opt-in stages jsonl+chain and full+chain: jsonl and full with audit_log.chain on.
 * Run under taskset (bench/run.mjs does): every thread (SQLite worker, libuv) shares that core.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { Session } from 'node:inspector/promises';
import { Agent } from '../../dist/agent/agent.js';
import { decodeHeader } from '../../dist/events/records.js';
import { JsonlSink } from '../../dist/sinks/jsonl.js';
import { AuditChain } from '../../dist/sinks/audit-chain.js';
import { SqliteSink } from '../../dist/sinks/sqlite.js';
import { createDetector } from '../../dist/detection/index.js';
import { SENSORS } from '../../dist/sensors/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = `${root}bench/.build/pipeline`;
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const ROUNDS = Number(opt('--rounds', 5));
const BATCH = 8192; // records per event-loop turn, as the ring reader's budget
const TARGET = 100_000;

if (argv.includes('--record') || !existsSync(`${dir}/meta.json`)) {
  const r = spawnSync(process.execPath, [`${root}bench/pipeline/record.mjs`, '--out', dir], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const meta = JSON.parse(readFileSync(`${dir}/meta.json`, 'utf8'));
const file = readFileSync(`${dir}/records.bin`);
const seed = meta.seed.map((p) => ({ ...p, startNs: BigInt(p.startNs) }));

/** frames of one mix: [source, offset, length] over `file` */
function frames(sources) {
  const out = [];
  for (let off = 0; off < file.length; ) {
    const src = meta.sources[file.readUInt16LE(off)];
    const len = file.readUInt32LE(off + 4);
    if (sources.includes(src)) out.push([src, off + 8, len]);
    off += 8 + ((len + 7) & ~7);
  }
  return out;
}

const MIXES = [
  { name: 'exec', sources: ['exec.bpf.o'], title: 'exec/fork/exit' },
  { name: 'file', sources: ['exec.bpf.o', 'file.bpf.o'], title: 'exec/fork/exit + file' },
  { name: 'network', sources: ['exec.bpf.o', 'net.bpf.o'], title: 'exec/fork/exit + network' },
  { name: 'all', sources: meta.sources, title: 'every recorded sensor' },
].filter((m) => m.sources.every((s) => meta.sources.includes(s)));
const wantMix = opt('--mix', null);
// without --mix: each distinct set of sources once ('all' is left out when it equals another mix)
const sameSources = (a, b) => a.sources.length === b.sources.length && a.sources.every((s) => b.sources.includes(s));
const mixes = MIXES.filter((m, i) => (wantMix ? m.name === wantMix : MIXES.findIndex((x) => sameSources(x, m)) === i));

const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);

const sigma = createDetector({ ruleDirs: [`${root}test/fixtures/sigma/rules/linux`] });
const detector = { evaluate: (ev) => sigma.evaluate(ev), stats: () => sigma.stats() }; // not closed by agent.stop()

const ALL_STAGES = ['read', 'events', 'sigma', 'jsonl', 'full-notext', 'full'];
const STAGES = opt('--stages', null)?.split(',') ?? ALL_STAGES;

/** Only the sensors whose objects the mix replays (the others stay off). */
function sensorConfig(sources) {
  return Object.fromEntries(SENSORS.map((p) => [p.name, { ...p.config.parse(undefined), enabled: p.objects.some((o) => sources.includes(o)) }]));
}

/** CPU seconds of the main thread alone (the rest of the process's: the SQLite worker, libuv's pool), from /proc at clock-tick resolution. */
function mainThreadCpu() {
  const st = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in USER_HZ ticks
}

async function runStage(stage, fr, sources) {
  const tmp = mkdtempSync(join(tmpdir(), 'vigil-pipe-'));
  const sinks = [];
  // jsonl+chain, full+chain (opt-in with --stages): the same with the tamper-evident chain on (docs/audit.md)
  const chain = stage.endsWith('+chain') ? { hook: new AuditChain({ logPath: join(tmp, 'events.jsonl') }) } : {};
  if (['jsonl', 'full', 'full-notext', 'jsonl+chain', 'full+chain'].includes(stage)) sinks.push(new JsonlSink({ path: join(tmp, 'events.jsonl'), maxBytes: 0, ...chain }));
  if (stage === 'full' || stage === 'full+chain') sinks.push(new SqliteSink({ path: join(tmp, 'vigil.db'), maxRows: 0 }));
  if (stage === 'full-notext') sinks.push(new SqliteSink({ path: join(tmp, 'vigil.db'), maxRows: 0, textIndex: false }));
  const handlers = new Map();
  let events = 0;
  let handle;
  let agent = null;
  if (stage === 'read') {
    handle = (_src, off, len) => {
      decodeHeader(view, off, len);
      events++;
    };
  } else {
    agent = new Agent({
      sinks,
      sensors: sensorConfig(sources),
      detector: stage === 'events' ? null : detector,
      replay: { register: (object, h) => handlers.set(object, h) },
      onHandlerError: (e) => {
        throw e;
      },
    });
    agent.start();
    agent.table.seed(seed);
    handle = (src, off, len) => handlers.get(src)(view, bytes, off, len);
  }
  // the SQLite worker's start (a Node isolate, the native module, the store) is not the pipeline's work
  for (const s of sinks) await s.ready?.();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < fr.length; ) {
    const end = Math.min(fr.length, i + BATCH);
    for (; i < end; i++) handle(fr[i][0], fr[i][1], fr[i][2]);
    await tick();
    // a sink over its bound would drop: wait for it, as a real ring would fill
    while (sinks.some((s) => s.stats().pending > 50_000)) await sleep(1);
  }
  if (agent) await agent.stop();
  const t1 = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpu0);
  const mainCpu = mainThreadCpu() - main0;
  const st = agent?.stats();
  if (st) events = st.events;
  const out = { stage, records: fr.length, events, seconds: Number(t1 - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, mainCpuSeconds: mainCpu };
  if (st) {
    out.drops = st.drops;
    out.alerts = st.alerts;
    out.sinks = st.sinks;
    out.bytes = {};
    if (sinks[0]) out.bytes.jsonl = statSync(join(tmp, 'events.jsonl')).size;
    if (sinks[1]) out.bytes.sqlite = statSync(join(tmp, 'vigil.db')).size;
  }
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

let profile = null;
if (opt('--profile', null)) {
  profile = new Session();
  profile.connect();
  await profile.post('Profiler.enable');
}

const results = [];
for (const mix of mixes) {
  const fr = frames(mix.sources);
  const byStage = Object.fromEntries(STAGES.map((s) => [s, []]));
  await runStage('full', fr, mix.sources); // warm-up (JIT), not counted
  if (profile) await profile.post('Profiler.start');
  for (let r = 0; r < ROUNDS; r++) for (const s of STAGES) byStage[s].push(await runStage(s, fr, mix.sources));
  if (profile) {
    const { profile: p } = await profile.post('Profiler.stop');
    writeFileSync(opt('--profile'), JSON.stringify(p));
  }
  // median round of each stage by rate
  const med = (xs) => xs.slice().sort((a, b) => a.events / a.seconds - b.events / b.seconds)[Math.floor(xs.length / 2)];
  results.push({ mix: mix.name, title: mix.title, records: fr.length, stages: STAGES.map((s) => med(byStage[s])) });
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`);

/** A yardstick for this machine at this moment: JSON.stringify of one recorded process_creation event. */
function yardstick() {
  let handler = null;
  let first = null;
  const agent = new Agent({ sinks: [], sensors: sensorConfig(['exec.bpf.o']), replay: { register: (_o, h) => (handler = h) }, onEvent: (e) => (first ??= e.category === 'process_creation' ? e : null) });
  agent.start();
  agent.table.seed(seed);
  for (const [, off, len] of frames(['exec.bpf.o'])) {
    if (first) break;
    handler(view, bytes, off, len);
  }
  const c0 = process.cpuUsage();
  let n = 0;
  for (let i = 0; i < 20000; i++) n += JSON.stringify(first).length;
  const c = process.cpuUsage(c0);
  return { bytes: n / 20000, us: (c.user + c.system) / 20000 };
}
const yard = yardstick();
if (argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
else {
  console.log(`recording: ${meta.records} records on ${meta.kernel} (${JSON.stringify(meta.bySource)}), ${ROUNDS} rounds, medians`);
  console.log(`yardstick: JSON.stringify of one ${yard.bytes.toFixed(0)}-byte process_creation event takes ${yard.us.toFixed(2)} µs of CPU here (load average ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
  for (const r of results) {
    const base = r.stages[0];
    console.log(`\nmix ${r.mix} (${r.title}): ${r.records} records`);
    console.log('stage       events   events/s (wall)  µs CPU/event (main thread)  events/CPU-s  of baseline (CPU)  drops');
    const cpuRate = (s) => s.events / s.cpuSeconds;
    for (const s of r.stages) {
      const drops = s.drops ? `${s.drops.kernel + s.drops.decode + s.drops.sinks}` : '-';
      console.log(
        `${s.stage.padEnd(11)} ${String(s.events).padEnd(8)} ${fmt(s.events / s.seconds).padEnd(16)} ${`${((s.cpuSeconds / s.events) * 1e6).toFixed(2)} (${((s.mainCpuSeconds / s.events) * 1e6).toFixed(2)})`.padEnd(27)} ${fmt(cpuRate(s)).padEnd(13)} ${((cpuRate(s) / cpuRate(base)) * 100).toFixed(2).padStart(8)} %         ${drops}`,
      );
    }
    const full = r.stages.at(-1);
    const rate = full.events / full.seconds;
    const crate = cpuRate(full);
    console.log(
      `full pipeline: ${fmt(rate)} events/s wall, ${fmt(crate)} events per CPU-second (every thread: SQLite worker, libuv) — target ${fmt(TARGET)}/s on one core: ${Math.max(rate, crate) >= TARGET ? 'met' : 'NOT met'}; ` +
        `alerts ${full.alerts}; bytes/event JSONL ${(full.bytes.jsonl / full.events).toFixed(0)}, SQLite ${(full.bytes.sqlite / full.events).toFixed(0)}`,
    );
  }
}
const lost = results.some((r) => r.stages.some((s) => s.drops && s.drops.kernel + s.drops.decode + s.drops.sinks > 0));
if (lost) {
  console.error('DROPS in a replay: the numbers above are not a sustained rate');
  process.exitCode = 1;
}
