/**
 * Overload: records arrive about ten times faster than the pipeline handles
 * them. Every loss is counted at its stage — the kernel (ring buffer full),
 * decoding, each sink — and what was counted plus what was delivered adds up to
 * what the kernel produced (its own counters, which also cover at least what the
 * workload did). The agent's memory stays bounded meanwhile.
 *
 * Generic over the sensors of the registry: each sensor with a workload below
 * (static C, no shell) is overloaded on its own, with the exec sensor running too
 * (it keeps the process table). The pipeline is slowed by a detector that blocks
 * the event loop for a fixed time per event (calibrated from the workload's own
 * speed), so "ten times" does not depend on this machine's speed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, type AgentStats } from '../../src/agent/agent.js';
import { SENSORS, sensorNames } from '../../src/sensors/index.js';
import type { SensorStats } from '../../src/sensors/sensor.js';
import { JsonlSink } from '../../src/sinks/jsonl.js';
import { SqliteSink } from '../../src/sinks/sqlite.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VM = process.env.VIGIL_IN_VM === '1';
let dir = '';

interface Workload {
  /** compiled once: bench/… static C */
  source: string;
  args: (bin: string, n: number) => string[];
  /** units of work per run (execs, file rounds) */
  units: number;
  /** records the kernel submits per unit, at least */
  recordsPerUnit: number;
  /** events the agent makes per unit */
  eventsPerUnit: number;
  /** records this sensor's kernel side submitted (its own counters) */
  submitted: (k: Record<string, number>) => number;
  /** records that make no event (exec: forks) */
  silent: (k: Record<string, number>) => number;
}

const WORKLOADS: Record<string, Workload> = {
  exec: {
    source: 'bench/exec-storm/storm.c',
    args: (_bin, n) => [String(n), '/bin/true', 'overload'],
    units: VM ? 300 : 1500,
    recordsPerUnit: 3,
    eventsPerUnit: 2,
    submitted: (k) => (k.exec ?? 0) + (k.fork ?? 0) + (k.exit ?? 0),
    silent: (k) => k.fork ?? 0,
  },
  file: {
    source: 'bench/pipeline/fileops.c',
    args: (_bin, n) => [String(n), mkdtempSync(join(dir, 'files-'))],
    units: VM ? 1000 : 8000,
    // create+write, chmod +x, rename, truncate, unlink
    recordsPerUnit: 5,
    eventsPerUnit: 5,
    submitted: (k) => k.file_events ?? 0,
    silent: () => 0,
  },
};

const bins = new Map<string, string>();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-overload-'));
  for (const [name, w] of Object.entries(WORKLOADS)) {
    const bin = join(dir, name);
    execFileSync('gcc', ['-O2', '-static', '-o', bin, join(ROOT, w.source)]);
    bins.set(name, bin);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runWorkload(name: string, n: number): Promise<number> {
  const w = WORKLOADS[name]!;
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const p = spawn(bins.get(name)!, w.args(bins.get(name)!, n), { stdio: 'ignore' });
    p.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e9) : reject(new Error(`${name} workload exited ${code}`))));
  });
}

/** Peak resident memory since the last reset (the kernel's VmHWM; reset through clear_refs). */
function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}
function peakRss(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

/** Blocks the event loop for `ms` per event: a pipeline that handles 1/ms events per ms. */
function slowDetector(ms: number) {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  let seen = 0;
  return {
    evaluate: () => {
      seen++;
      Atomics.wait(cell, 0, 0, ms);
      return [];
    },
    stats: () => ({ events: seen }),
  };
}

interface Run {
  stats: AgentStats;
  sensor: SensorStats;
  units: number;
  peakGrowth: number;
  arrival: number;
  handled: number;
}

async function overload(name: string, delayMs: number, runDir: string): Promise<Run> {
  const w = WORKLOADS[name]!;
  const sinks = [
    new JsonlSink({ path: join(runDir, 'events.jsonl'), maxPendingBytes: 16 * 1024 }),
    new SqliteSink({ path: join(runDir, 'vigil.db'), maxPending: 200, batchMs: 20 }),
  ];
  const agent = new Agent({
    sinks,
    detector: slowDetector(delayMs),
    sensors: Object.fromEntries(SENSORS.map((p) => [p.name, p.config.parse({ enabled: p.name === name || p.name === 'exec' })])),
    ringBufferBytes: 64 * 1024,
  });
  agent.start();
  await new Promise((r) => setTimeout(r, 200));
  const before = process.memoryUsage().rss;
  resetPeak();
  const t0 = Date.now();
  const secs = await runWorkload(name, w.units);
  // let the agent read what is left in the ring (by its timer), then stop it (drains, flushes the sinks)
  const until = Date.now() + 30_000;
  for (;;) {
    const st = agent.stats().sensors[name]!;
    if (st.records >= w.submitted(st.kernel) || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const elapsed = (Date.now() - t0) / 1000;
  await agent.stop();
  const stats = agent.stats();
  return {
    stats,
    sensor: stats.sensors[name]!,
    units: w.units,
    peakGrowth: peakRss() - before,
    arrival: (w.units * w.eventsPerUnit) / secs,
    handled: stats.events / elapsed,
  };
}

for (const name of sensorNames().filter((n) => WORKLOADS[n])) {
  describe(`overload: ${name} records at ~10x what the pipeline handles (real BPF)`, () => {
    const w = WORKLOADS[name]!;
    let delayMs = 0;

    beforeAll(async () => {
      // the workload's own speed, nothing slowed: the pipeline then takes ten times its time per event
      const secs = await runWorkload(name, Math.ceil(w.units / 5));
      const eventsPerSec = (Math.ceil(w.units / 5) * w.eventsPerUnit) / secs;
      delayMs = 10 / eventsPerSec * 1000;
    });

    it('counts every loss by stage; counted + delivered = produced; memory stays bounded', async () => {
      const runs: Run[] = [];
      for (let i = 0; i < 2; i++) runs.push(await overload(name, delayMs, mkdtempSync(join(dir, `${name}-run-`))));
      for (const r of runs) {
        const s = r.sensor;
        const submitted = w.submitted(s.kernel);
        process.stderr.write(
          `overload ${name}: arrival ${r.arrival.toFixed(0)}/s, handled ${r.handled.toFixed(0)}/s; kernel submitted ${submitted} + ring-full ${s.kernelDrops}, read ${s.records}, ` +
            `events ${r.stats.events}, sinks ${Object.entries(r.stats.sinks).map(([k, x]) => `${k.split(':')[0]} ${x.written}+${x.dropped}`).join(', ')}; peak RSS +${(r.peakGrowth / 2 ** 20).toFixed(0)} MiB\n`,
        );
        // overloaded for real: the kernel dropped, and the sinks refused some
        expect(r.arrival / r.handled).toBeGreaterThan(3);
        expect(s.kernelDrops).toBeGreaterThan(0);
        // the kernel: what it tried to submit (at least the workload's records) = submitted + ring-full
        expect(submitted + s.kernelDrops).toBeGreaterThanOrEqual(r.units * w.recordsPerUnit);
        // delivery: every submitted record was read
        expect(s.records).toBe(submitted);
        // decoding: each record read made an event, made none by design (forks), or was counted as bad
        expect(s.events + w.silent(s.kernel) + s.badRecords).toBe(s.records);
        // the sinks: every event was written or counted as dropped (nothing pending after stop)
        for (const [sink, st] of Object.entries(r.stats.sinks)) {
          expect(st.pending, sink).toBe(0);
          expect(st.written + st.dropped, sink).toBe(r.stats.events);
        }
        expect(r.stats.drops.sinks).toBeGreaterThan(0);
        expect(r.stats.drops.kernel).toBe(Object.values(r.stats.sensors).reduce((a, x) => a + x.kernelDrops, 0));
        // memory: bounded rings, queues and tables
        expect(r.peakGrowth).toBeLessThan(160 * 1024 * 1024);
      }
      // and no growth from one overload to the next
      expect(runs[1]!.peakGrowth).toBeLessThan(runs[0]!.peakGrowth + 48 * 1024 * 1024);
    }, 180_000);
  });
}
