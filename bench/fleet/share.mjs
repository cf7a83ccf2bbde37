#!/usr/bin/env node
/**
 * What publishing to the fleet costs an agent, as a share of its CPU: the agent's own
 * pipeline (the recorded ring-buffer records of bench/pipeline replayed through
 * decode → process table → events → Sigma → JSONL + SQLite, as bench/pipeline's
 * `full` stage) run twice over the same records in one process, alternating:
 *   full         the pipeline as it runs without --fleet
 *   full+fleet   the same with the fleet sink (batches → on-disk spool → JetStream
 *                publish with acks) to a real nats-server on loopback (Debian's,
 *                JetStream, file store; its CPU is not the agent's and is not counted)
 *   fleet        the fleet sink alone fed the records the pipeline produced (captured
 *                once), as fast as it takes them: the publishing cost without the
 *                pipeline's noise around it
 * CPU is the whole process's (every thread) per event; the share is
 * (full+fleet − full) / full+fleet, and fleet / (full + fleet) from the direct
 * measure. Medians of --rounds (default 5). Not part of CI.
 *
 *   npm run build && taskset -c 0 node bench/fleet/share.mjs [--rounds 5] [--batch 1000] [--pace 50000] [--dist DIR] [--json]
 *
 * The replay runs as fast as the pipeline goes, so batches fill to --batch (the agent's
 * fleet.batch_max_events); a host sending fewer events than batch × 5 per second and
 * category has smaller batches (linger 200 ms): --batch 100 or 20 shows that cost.
 *
 * --sink-only: only the `fleet` stage (after one pipeline run to capture the records).
 * --pace N: the `fleet` stage feeds the sink while at most N records are unacknowledged
 * (default 50,000: the whole capture at once, ~21 MB, past the spool's 8 MiB of memory,
 * so part of it is written to disk: the cost of a burst). --pace 5000 keeps it in memory,
 * as an agent's steady stream does. Its line also gives each round's GC pauses: a round
 * that meets a major GC (a mark-compact of the process's whole heap, most of which is the
 * bench's own) costs 3-5x the others.
 * --dist: the compiled tree to load the agent from (default dist/; another build to
 * compare two versions of the publisher in the same conditions).
 * Needs bench/.build/pipeline (bench/pipeline/record.mjs, as root, makes it).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { startNats } from './nats.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const ROUNDS = Number(opt('--rounds', 5));
const BATCH = Number(opt('--batch', 1000));
const SINK_ONLY = argv.includes('--sink-only');
const PACE = Number(opt('--pace', 50_000));
if (!Number.isSafeInteger(PACE) || PACE < 1) {
  console.error(`share.mjs: --pace ${opt('--pace', '')}: a whole number of records, 1 or more`);
  process.exit(2);
}
const dist = resolve(opt('--dist', `${root}dist`));
const asJson = argv.includes('--json');
const { Agent } = await import(`${dist}/agent/agent.js`);
const { JsonlSink } = await import(`${dist}/sinks/jsonl.js`);
const { SqliteSink } = await import(`${dist}/sinks/sqlite.js`);
const { createDetector } = await import(`${dist}/detection/index.js`);
const { SENSORS } = await import(`${dist}/sensors/index.js`);
const { FleetPublisher, FleetSink, Spool, connectFleet, ensureStreams } = await import(`${dist}/fleet/index.js`);

const dir = `${root}bench/.build/pipeline`;
if (!existsSync(`${dir}/meta.json`)) {
  console.error(`no recorded records in ${dir}: run bench/pipeline/record.mjs (as root) first`);
  process.exit(1);
}
const meta = JSON.parse(readFileSync(`${dir}/meta.json`, 'utf8'));
const file = readFileSync(`${dir}/records.bin`);
const seed = meta.seed.map((p) => ({ ...p, startNs: BigInt(p.startNs) }));
const fr = [];
for (let off = 0; off < file.length; ) {
  const len = file.readUInt32LE(off + 4);
  fr.push([meta.sources[file.readUInt16LE(off)], off + 8, len]);
  off += 8 + ((len + 7) & ~7);
}
const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
const sigma = createDetector({ ruleDirs: [`${root}test/fixtures/sigma/rules/linux`] });
const detector = { evaluate: (ev) => sigma.evaluate(ev), stats: () => sigma.stats() };
const sensors = Object.fromEntries(SENSORS.map((p) => [p.name, { ...p.config.parse(undefined), enabled: p.objects.some((o) => meta.sources.includes(o)) }]));

// nats-server on every core (this process may be pinned with taskset; the server is another host's work)
const nats = await startNats({ prefix: 'vigil-fleet-share-', allCores: true });
const { url } = nats;
const admin = await connectFleet({ url, name: 'share admin' });
await ensureStreams(admin);

let runNo = 0;
let captured = null; // the records the pipeline gave its sinks, for the 'fleet' stage

function fleetSink(dir) {
  const hostId = `share-${++runNo}`;
  const spool = Spool.open({ dir: join(dir, 'spool'), idPrefix: hostId, maxBytes: 1024 ** 3 });
  const publisher = new FleetPublisher({ hostId, spool, batchMaxRecords: BATCH });
  return connectFleet({ url, name: hostId }).then((nc) => {
    publisher.attach(nc);
    return { publisher, nc, spool, sink: new FleetSink({ hostId, publisher, onClose: () => spool.close() }) };
  });
}

async function runFleetOnly() {
  const tmp = mkdtempSync(join(tmpdir(), 'vigil-share-'));
  const f = await fleetSink(tmp);
  let gcMs = 0;
  const gcs = new PerformanceObserver((l) => { for (const e of l.getEntries()) gcMs += e.duration; });
  gcs.observe({ entryTypes: ['gc'] });
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < captured.length; ) {
    const end = Math.min(captured.length, i + Math.min(8192, PACE));
    for (; i < end; i++) f.sink.write(captured[i]);
    await tick();
    while (f.sink.stats().pending > PACE) await sleep(1);
  }
  await f.sink.close();
  const cpu = process.cpuUsage(cpu0);
  gcs.disconnect();
  const p = f.publisher.stats();
  await f.nc.close();
  rmSync(tmp, { recursive: true, force: true });
  return { stage: 'fleet', events: captured.length, cpuUs: (cpu.user + cpu.system) / captured.length, gcMs, drops: p.dropped, published: p.published, batches: p.batchesPublished };
}

async function run(stage) {
  if (stage === 'fleet') return runFleetOnly();
  const tmp = mkdtempSync(join(tmpdir(), 'vigil-share-'));
  const sinks = [new JsonlSink({ path: join(tmp, 'events.jsonl'), maxBytes: 0 }), new SqliteSink({ path: join(tmp, 'vigil.db'), maxRows: 0 })];
  let fleet = null;
  if (stage === 'full+fleet') {
    fleet = await fleetSink(tmp);
    sinks.push(fleet.sink);
  }
  if (!captured) {
    captured = [];
    sinks.push({ name: 'capture', write: (r) => (captured.push(r), true), flush: async () => {}, close: async () => {}, stats: () => ({ written: 0, dropped: 0, errors: 0, pending: 0 }) });
  }
  const handlers = new Map();
  const agent = new Agent({ sinks, sensors, detector, replay: { register: (o, h) => handlers.set(o, h) }, onHandlerError: (e) => { throw e; } });
  agent.start();
  agent.table.seed(seed);
  for (const s of sinks) await s.ready?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < fr.length; ) {
    const end = Math.min(fr.length, i + 8192);
    for (; i < end; i++) handlers.get(fr[i][0])(view, bytes, fr[i][1], fr[i][2]);
    await tick();
    while (sinks.some((s) => s.stats().pending > 50_000)) await sleep(1);
  }
  await agent.stop(); // the fleet sink waits for the server's acks of everything
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const st = agent.stats();
  const out = { stage, events: st.events, alerts: st.alerts, seconds, cpuUs: (cpu.user + cpu.system) / st.events, drops: st.drops.kernel + st.drops.decode + st.drops.sinks };
  if (fleet) {
    const p = fleet.publisher.stats();
    out.published = p.published;
    out.fleetDropped = p.dropped;
    out.batches = p.batchesPublished;
    await fleet.nc.close();
  }
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

await run('full+fleet'); // warm-up (JIT), not counted
const by = { full: [], 'full+fleet': [], fleet: [] };
const la0 = loadavg()[0];
for (let r = 0; r < ROUNDS; r++) for (const s of Object.keys(by)) if (!SINK_ONLY || s === 'fleet' || r === 0) by[s].push(await run(s));
const med = (xs) => xs.slice().sort((a, b) => a.cpuUs - b.cpuUs)[Math.floor(xs.length / 2)];
const full = med(by.full);
const fleet = med(by['full+fleet']);
const only = med(by.fleet);
const result = {
  dist,
  rounds: ROUNDS,
  events: full.events,
  load_average_1m: [Math.round(la0 * 100) / 100, Math.round(loadavg()[0] * 100) / 100],
  full_us_per_event: Math.round(full.cpuUs * 100) / 100,
  fleet_us_per_event: Math.round(fleet.cpuUs * 100) / 100,
  publishing_us_per_event: Math.round((fleet.cpuUs - full.cpuUs) * 100) / 100,
  publishing_share_pct: Math.round(((fleet.cpuUs - full.cpuUs) / fleet.cpuUs) * 1000) / 10,
  fleet_sink_alone_us_per_event: Math.round(only.cpuUs * 100) / 100,
  fleet_sink_alone_share_pct: Math.round((only.cpuUs / (full.cpuUs + only.cpuUs)) * 1000) / 10,
  all_rounds_us: Object.fromEntries(Object.entries(by).map(([k, v]) => [k, v.map((x) => Math.round(x.cpuUs * 100) / 100)])),
  fleet_rounds_gc_pause_ms: by.fleet.map((x) => Math.round(x.gcMs * 10) / 10),
  fleet_batches: fleet.batches,
  published: fleet.published,
  drops: full.drops + fleet.drops + (fleet.fleetDropped ?? 0) + only.drops,
};
if (asJson) console.log(JSON.stringify(result));
else {
  console.log(`${result.events} events (bench/.build/pipeline, ${meta.kernel}), batches of up to ${BATCH}, ${ROUNDS} alternating rounds, medians; load average ${result.load_average_1m.join(' → ')}; ${dist}`);
  console.log(`agent without the fleet: ${result.full_us_per_event} µs CPU/event   rounds ${result.all_rounds_us.full.join(' ')}`);
  console.log(`agent with the fleet:    ${result.fleet_us_per_event} µs CPU/event   rounds ${result.all_rounds_us['full+fleet'].join(' ')}  (${fleet.published} published in ${fleet.batches} batches)`);
  console.log(`fleet sink alone:        ${result.fleet_sink_alone_us_per_event} µs CPU/event   rounds ${result.all_rounds_us.fleet.join(' ')}  (${only.published} published in ${only.batches} batches; GC pauses per round ${result.fleet_rounds_gc_pause_ms.join(' ')} ms)`);
  console.log(`publishing, with − without: ${result.publishing_us_per_event} µs/event = ${result.publishing_share_pct} % of the agent's CPU; the sink alone: ${result.fleet_sink_alone_share_pct} % (target < 5 %); drops ${result.drops}`);
}
await admin.close();
await nats.stop();
process.exitCode = result.drops || fleet.published !== fleet.events + fleet.alerts || only.published !== captured.length ? 1 : 0;
