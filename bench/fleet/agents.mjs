/**
 * One worker process of bench/fleet/run.mjs: a share of the simulated agents.
 * Each agent is vigil's own fleet side (FleetSink → FleetPublisher → Spool on disk →
 * its own NATS connection), fed recorded events at a fixed rate, as the agent's
 * pipeline feeds the sink (records serialized once, write() never waits).
 *
 * Messages from the parent: {cmd: 'start'} (emit), {cmd: 'stop'} (stop emitting,
 * drain, report). Reports CPU for the emitting window and a baseline: the same
 * generator writing to a sink that does nothing, so the difference is the cost of
 * publishing.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetPublisher, FleetSink, Spool, connectFleet } from '../../dist/fleet/index.js';

const cfg = JSON.parse(process.argv[2]);
const lines = readFileSync(cfg.events, 'utf8').split('\n').filter(Boolean);
const records = lines.map((json) => ({ kind: 'event', value: { category: JSON.parse(json).category }, json }));

/** Emit `rate` events/s per sink, in ticks, until stopped; returns the number emitted. */
function generator(sinks, rate) {
  const start = performance.now();
  const emitted = sinks.map(() => 0);
  const offsets = sinks.map((_, i) => Math.floor((i * records.length) / sinks.length));
  let stop = false;
  const tick = () => {
    if (stop) return;
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (let i = 0; i < sinks.length; i++) {
      const s = sinks[i];
      let k = emitted[i];
      // at most half a second of backlog per tick: a starved generator does not burst forever
      if (due - k > rate / 2) k = due - Math.floor(rate / 2);
      for (; k < due; k++) s.write(records[(offsets[i] + k) % records.length]);
      emitted[i] = k;
    }
    setTimeout(tick, 10);
  };
  tick();
  return { stop: () => ((stop = true), emitted.reduce((a, b) => a + b, 0)) };
}

const cpuMs = (u) => (u.user + u.system) / 1000;

// baseline: the generator alone (a sink that does nothing)
const nullSinks = cfg.agents.map(() => ({ write: () => true }));
let c0 = process.cpuUsage();
const g0 = generator(nullSinks, cfg.rate);
await new Promise((r) => setTimeout(r, cfg.baselineMs));
const baseEvents = g0.stop();
const baseCpu = cpuMs(process.cpuUsage(c0));

const agents = [];
for (const id of cfg.agents) {
  const dir = join(cfg.stateRoot, id);
  mkdirSync(dir, { recursive: true });
  const spool = Spool.open({ dir: join(dir, 'spool'), idPrefix: id, maxBytes: 1024 ** 3 });
  const publisher = new FleetPublisher({ hostId: id, spool, batchMaxRecords: cfg.batch, lingerMs: cfg.lingerMs });
  const sink = new FleetSink({ hostId: id, publisher, onClose: () => spool.close() });
  const nc = await connectFleet({ url: cfg.url, name: `bench ${id}` });
  publisher.attach(nc);
  agents.push({ id, spool, publisher, sink, nc });
}
process.send({ ready: true });

let gen = null;
let cpuStart = null;
process.on('message', async (m) => {
  if (m.cmd === 'start') {
    cpuStart = process.cpuUsage();
    gen = generator(agents.map((a) => a.sink), cfg.rate);
  } else if (m.cmd === 'mark') {
    cpuStart = process.cpuUsage();
    for (const a of agents) a.mark = a.publisher.stats().accepted;
  } else if (m.cmd === 'stop') {
    const emitted = gen.stop();
    const cpu = cpuMs(process.cpuUsage(cpuStart));
    const steady = agents.reduce((n, a) => n + a.publisher.stats().accepted - (a.mark ?? 0), 0);
    const drained = await Promise.all(agents.map((a) => a.publisher.drain(15_000)));
    const st = agents.map((a) => a.publisher.stats());
    process.send({
      report: {
        agents: agents.length,
        emitted,
        steadyAccepted: steady,
        steadyCpuMs: cpu,
        baselineEvents: baseEvents,
        baselineCpuMs: baseCpu,
        accepted: st.reduce((n, s) => n + s.accepted, 0),
        published: st.reduce((n, s) => n + s.published, 0),
        batches: st.reduce((n, s) => n + s.batchesPublished, 0),
        dropped: st.reduce((n, s) => n + s.dropped, 0),
        errors: st.reduce((n, s) => n + s.errors, 0),
        drained: drained.every(Boolean),
        lastError: st.map((s) => s.lastError).find(Boolean) ?? null,
      },
    });
    for (const a of agents) {
      await a.sink.close();
      await a.nc.close();
    }
    process.exit(0);
  }
});
