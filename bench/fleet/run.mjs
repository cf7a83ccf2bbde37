#!/usr/bin/env node
/**
 * Fleet load test: a real nats-server (Debian's, JetStream, file store) on loopback,
 * N simulated agents replaying recorded events through vigil's own fleet side
 * (sink → batches → on-disk spool → JetStream publish with acks), one consumer
 * reading the events stream. Not part of CI.
 *
 *   npm run build && node bench/fleet/run.mjs [--agents 100] [--rate 1600] [--seconds 20]
 *       [--workers N] [--batch 1000] [--linger 200] [--events FILE] [--agent-us N] [--json] [--timeline]
 *
 * FLEET_WORKER_ARGS (environment): V8/Node flags for the agent worker processes, e.g.
 * `--trace-gc`: at 1,600 events/s per agent a worker of 50 agents runs a mark-compact
 * every ~0.2-0.4 s (its heap ~32-45 MB), mostly "GC in old space requested", and
 * perf puts V8's concurrent marking and sweeping at about a quarter of its CPU.
 *
 * --agent-us: the agent's own CPU per event without the fleet (bench/pipeline/run.mjs,
 * "µs CPU/event" of the stage the agent runs with); the publishing cost is then also
 * given as a share of the agent's CPU.
 *
 * --workers: the processes the agents are spread over (default: one per core).
 *
 * --rate is events/s per agent (offered load = agents × rate). Events: FILE, or
 * bench/.build/fleet/events.jsonl, recorded by bench/fleet/record.mjs (run as root)
 * when missing.
 *
 * Reports, over the steady window (after a 3 s warm-up):
 *   - events/s consumed end to end (agents → stream → consumer) against events/s offered
 *   - end-to-end latency percentiles per event, from when the agent accepted the first
 *     record of its batch (Vigil-T0) to when the consumer has the batch: an upper bound
 *     for every event of the batch (the batch's linger included)
 *   - publishing CPU: the agent workers' CPU minus a baseline (the same generator with a
 *     sink that does nothing), per event, and as a share of one core for one agent at
 *     its rate; nats-server's and the consumer's CPU
 *   - drops and publish errors (any drop fails the run)
 */
import { fork, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { startNats } from './nats.mjs';
import { DEFAULT_LIMITS, EVENTS_STREAM, H, connectFleet, ensureStreams } from '../../dist/fleet/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const N = Number(opt('--agents', 100));
const RATE = Number(opt('--rate', 1600));
const SECONDS = Number(opt('--seconds', 20));
// one agent process per core by default: on 2 cores, 4 processes (the old default) carried
// 52-135k of the 160k events/s offered with p99 3-15 s, 2 carried all of it with p99 0.7-0.8 s
const WORKERS = Math.min(N, Number(opt('--workers', availableParallelism())));
const BATCH = Number(opt('--batch', 1000));
const LINGER = Number(opt('--linger', 200));
const WARMUP = 3;
const asJson = argv.includes('--json');
const TIMELINE = argv.includes('--timeline');
const AGENT_US = opt('--agent-us', null) === null ? null : Number(opt('--agent-us', 0));
let eventsFile = opt('--events', `${root}bench/.build/fleet/events.jsonl`);
const say = (s) => (asJson ? process.stderr : process.stdout).write(`${s}\n`);

if (!existsSync(eventsFile)) {
  say(`no recorded events at ${eventsFile}: recording them (bench/fleet/record.mjs, needs root) ...`);
  const r = spawnSync(process.execPath, [`${root}bench/fleet/record.mjs`, '--out', eventsFile], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(1);
}
const lines = readFileSync(eventsFile, 'utf8').split('\n').filter(Boolean);
const avgBytes = Math.round(lines.reduce((n, l) => n + l.length + 1, 0) / lines.length);

// --- nats-server on loopback, JetStream with a temp store
const nats = await startNats({ prefix: 'vigil-fleet-bench-' });
const { server, work, url } = nats;
const procCpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, clock ticks of 10 ms
};

const admin = await connectFleet({ url, name: 'bench admin' });
// bounded so a long run cannot fill the disk: the oldest events go first
await ensureStreams(admin, { limits: { ...DEFAULT_LIMITS, eventsMaxBytes: 8 * 1024 ** 3 } });

// --- the consumer: every event batch, latency per event from the batch's T0
const hist = new Float64Array(60_001); // ms buckets up to 60 s
let consumed = 0;
let counting = false;
let steadyConsumed = 0;
let maxLat = 0;
// per second from the start of emitting: events consumed and their worst latency
let runStart = 0;
const perSecond = [];
const js = jetstream(admin);
const consumer = await js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.New });
const messages = await consumer.consume({ max_messages: 256 });
const consumerCpu0 = process.cpuUsage();
(async () => {
  for await (const m of messages) {
    const n = Number(m.headers?.get(H.count) ?? 0);
    const lat = Date.now() - Number(m.headers?.get(H.t0) ?? 0);
    consumed += n;
    if (runStart) {
      const sec = Math.floor((Date.now() - runStart) / 1000);
      const b = (perSecond[sec] ??= { n: 0, max: 0, pending: 0 });
      b.n += n;
      if (lat > b.max) b.max = lat;
      b.pending = m.info.pending;
    }
    if (counting) {
      steadyConsumed += n;
      hist[Math.min(60_000, Math.max(0, lat))] += n;
      if (lat > maxLat) maxLat = lat;
    }
  }
})();

// --- the agents, in worker processes
const per = Math.ceil(N / WORKERS);
const workers = [];
for (let w = 0; w < WORKERS; w++) {
  const ids = Array.from({ length: Math.min(per, N - w * per) }, (_, i) => `agent-${String(w * per + i).padStart(4, '0')}`);
  if (!ids.length) break;
  const cfg = { url, agents: ids, rate: RATE, events: eventsFile, stateRoot: join(work, 'agents'), batch: BATCH, lingerMs: LINGER, baselineMs: 2000 };
  const child = fork(`${root}bench/fleet/agents.mjs`, [JSON.stringify(cfg)], { execArgv: process.env.FLEET_WORKER_ARGS ? process.env.FLEET_WORKER_ARGS.split(' ') : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  workers.push({
    child,
    ready: new Promise((r) => child.on('message', (m) => m.ready && r())),
    report: new Promise((r) => child.on('message', (m) => m.report && r(m.report))),
    exited: new Promise((r) => child.once('exit', r)),
  });
}
await Promise.all(workers.map((w) => w.ready));
say(`${N} agents in ${workers.length} processes, ${RATE} events/s each (${(N * RATE).toLocaleString('en')} events/s offered), ${lines.length.toLocaleString('en')} recorded events of ${avgBytes} bytes on average; batches of at most ${BATCH} events, linger ${LINGER} ms`);

for (const w of workers) w.child.send({ cmd: 'start' });
runStart = Date.now();
await new Promise((r) => setTimeout(r, WARMUP * 1000));
for (const w of workers) w.child.send({ cmd: 'mark' });
counting = true;
const serverCpu0 = procCpuMs(server.pid);
const t0 = performance.now();
const cc0 = process.cpuUsage();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const wall = (performance.now() - t0) / 1000;
counting = false;
const serverCpu = procCpuMs(server.pid) - serverCpu0;
const cc = process.cpuUsage(cc0);
for (const w of workers) w.child.send({ cmd: 'stop' });
const reports = await Promise.all(workers.map((w) => w.report));
// let the consumer catch up with what was published
const published = reports.reduce((n, r) => n + r.published, 0);
const until = Date.now() + 20_000;
while (consumed < published && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
void consumerCpu0;

const pct = (q) => {
  const target = steadyConsumed * q;
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i];
    if (acc >= target) return i;
  }
  return hist.length - 1;
};
const sum = (k) => reports.reduce((n, r) => n + r[k], 0);
const steadyAccepted = sum('steadyAccepted');
const pubCpuMs = reports.reduce((n, r) => n + (r.steadyCpuMs - (r.baselineCpuMs / Math.max(1, r.baselineEvents)) * r.steadyAccepted), 0);
const usPerEvent = (pubCpuMs * 1000) / Math.max(1, steadyAccepted);
const result = {
  agents: N,
  offered_events_per_s: N * RATE,
  event_bytes_avg: avgBytes,
  seconds: Math.round(wall * 10) / 10,
  accepted_events_per_s: Math.round(steadyAccepted / wall),
  consumed_events_per_s: Math.round(steadyConsumed / wall),
  latency_ms: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), max: maxLat },
  publisher_cpu: {
    us_per_event: Math.round(usPerEvent * 100) / 100,
    one_agent_core_share_pct: Math.round(usPerEvent * RATE * 1e-4 * 1000) / 1000,
    all_agents_cores: Math.round((pubCpuMs / 1000 / wall) * 100) / 100,
    ...(AGENT_US ? { share_of_agent_cpu_pct: Math.round((usPerEvent / (AGENT_US + usPerEvent)) * 1000) / 10, agent_us_per_event_without_fleet: AGENT_US } : {}),
    generator_baseline_us_per_event: Math.round((sum('baselineCpuMs') * 1000 / Math.max(1, sum('baselineEvents'))) * 100) / 100,
  },
  nats_server_cores: Math.round((serverCpu / 1000 / wall) * 100) / 100,
  consumer_cores: Math.round(((cc.user + cc.system) / 1e6 / wall) * 100) / 100,
  // CPU per event of each part, and what the parts together would sustain on this
  // machine's cores if nothing else ran (the run itself shares them with whatever does)
  cpu_us_per_event: {
    publishers: Math.round(usPerEvent * 100) / 100,
    nats_server: Math.round(((serverCpu * 1000) / Math.max(1, steadyConsumed)) * 100) / 100,
    consumer: Math.round((((cc.user + cc.system) / Math.max(1, steadyConsumed)) * 100)) / 100,
  },
  cores: cpus().length,
  load_average_1m: Math.round(loadavg()[0] * 100) / 100,
  published: published,
  consumed_total: consumed,
  batches: sum('batches'),
  dropped: sum('dropped'),
  publish_errors: sum('errors'),
  drained: reports.every((r) => r.drained),
  last_error: reports.map((r) => r.lastError).find(Boolean) ?? null,
};

const perEvent = result.cpu_us_per_event.publishers + result.cpu_us_per_event.nats_server + result.cpu_us_per_event.consumer;
result.capacity_estimate_events_per_s = Math.round((result.cores * 1e6) / perEvent);
result.server_side_capacity_estimate_events_per_s = Math.round((result.cores * 1e6) / (result.cpu_us_per_event.nats_server + result.cpu_us_per_event.consumer));

if (asJson) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  say(`end to end: ${result.consumed_events_per_s.toLocaleString('en')} events/s consumed over ${result.seconds} s (accepted by the agents: ${result.accepted_events_per_s.toLocaleString('en')}/s), ${result.batches.toLocaleString('en')} batches`);
  say(`latency (agent accepted → consumer has it, upper bound per event): p50 ${result.latency_ms.p50} ms, p90 ${result.latency_ms.p90} ms, p99 ${result.latency_ms.p99} ms, p99.9 ${result.latency_ms.p999} ms, max ${result.latency_ms.max} ms`);
  say(`publishing CPU: ${result.publisher_cpu.us_per_event} µs/event (generator baseline ${result.publisher_cpu.generator_baseline_us_per_event} µs/event subtracted) = ${result.publisher_cpu.one_agent_core_share_pct} % of a core for one agent at ${RATE} events/s; all agents ${result.publisher_cpu.all_agents_cores} cores`);
  if (AGENT_US) say(`publishing is ${result.publisher_cpu.share_of_agent_cpu_pct} % of the CPU of an agent whose own work costs ${AGENT_US} µs/event`);
  say(`nats-server ${result.nats_server_cores} cores, consumer ${result.consumer_cores} cores; drops ${result.dropped}, publish errors ${result.publish_errors}, published ${result.published.toLocaleString('en')}, consumed ${result.consumed_total.toLocaleString('en')}`);
  say(`CPU per event: publishers ${result.cpu_us_per_event.publishers} µs, nats-server ${result.cpu_us_per_event.nats_server} µs, consumer ${result.cpu_us_per_event.consumer} µs: all on ${result.cores} idle cores ≈ ${result.capacity_estimate_events_per_s.toLocaleString('en')} events/s; server and consumer alone (agents elsewhere) ≈ ${result.server_side_capacity_estimate_events_per_s.toLocaleString('en')} events/s (load average during the run ${result.load_average_1m})`);
  if (result.last_error) say(`last publish error: ${result.last_error}`);
  if (TIMELINE) say(`per second from the start (warm-up ${WARMUP} s; events consumed/worst latency/batches in the stream not yet delivered): ${perSecond.map((b, i) => `${i}s ${Math.round((b?.n ?? 0) / 1000)}k/${b?.max ?? 0}ms/${b?.pending ?? 0}`).join(' ')}`);
  const ok = result.consumed_events_per_s >= 150_000 && result.latency_ms.p99 < 1000;
  say(`target (>= 150,000 events/s, p99 < 1 s): ${ok ? 'met' : 'NOT met'}`);
}

await messages.close?.();
await admin.close();
await Promise.all(workers.map((w) => w.exited)); // their spools are closed before the directory goes
await nats.stop();
process.exitCode = result.dropped || result.publish_errors || !result.drained ? 1 : 0;
