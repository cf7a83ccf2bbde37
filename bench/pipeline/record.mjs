#!/usr/bin/env node
/**
 * Records real ring-buffer records once, for bench/pipeline/run.mjs to replay.
 *
 *   node bench/pipeline/record.mjs [--out DIR] [--execs N]
 *
 * Runs the real agent (every sensor of the registry with its default config, no
 * sinks) with a recorder tap that copies each record, in the order the agent
 * handled them (process records first, as the agent syncs), while a workload runs:
 *   exec  an exec storm (static C: fork + execve of /usr/bin/true with a realistic
 *         argv) and a shell mix (pipelines of ls, grep, cat, wc, sed, sort)
 *   file  create+write, chmod +x, rename, truncate, unlink rounds (static C)
 *   network  TCP connect/accept with a request line each way and a UDP datagram,
 *         over loopback (static C; the sensor's default reports loopback peers)
 *   a sensor without a workload here records what the others cause.
 * Writes DIR/records.bin (frames: u16 source, u16 0, u32 length, record bytes,
 * padded to 8, like the ring) and DIR/meta.json (sources, counts, and the
 * /proc snapshot the process table was seeded with, so lineage replays too).
 * Needs root and a built tree (npm run build).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Agent } from '../../dist/agent/agent.js';
import { SENSORS } from '../../dist/sensors/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const out = opt('--out', `${root}bench/.build/pipeline`);
const execs = Number(opt('--execs', 4000));
mkdirSync(out, { recursive: true });
execFileSync('gcc', ['-O2', '-o', `${out}/storm`, `${root}bench/exec-storm/storm.c`]);
execFileSync('gcc', ['-O2', '-o', `${out}/fileops`, `${root}bench/pipeline/fileops.c`]);
execFileSync('gcc', ['-O2', '-o', `${out}/netops`, `${root}bench/pipeline/netops.c`]);

/** What each sensor's workload runs (a sensor not listed records what the others cause). */
const WORKLOADS = {
  exec: () => {
    run(`${out}/storm`, [String(execs), '/usr/bin/true', '--config', '/etc/app/config.yaml', '--log-level', 'info', '--port', '8080']);
    const mix = [
      'for i in $(seq 150); do',
      '  ls -la /usr/bin | grep -c "^-" > /dev/null',
      '  cat /etc/os-release | sed -n "s/^ID=//p" | sort -u > /dev/null',
      '  echo "job $i done" | wc -c > /dev/null',
      '  /usr/bin/env LANG=C date +%s > /dev/null',
      'done',
    ].join('\n');
    run('/bin/sh', ['-c', mix]);
  },
  file: () => {
    const dir = mkdtempSync('/var/tmp/vigil-fileops-');
    run(`${out}/fileops`, [String(execs), dir]);
    rmSync(dir, { recursive: true, force: true });
  },
  network: () => run(`${out}/netops`, [String(Math.round(execs / 4))]),
};

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}`);
}

const sources = [];
const frames = [];
let bytes = 0;
const agent = new Agent({
  sinks: [],
  recorder: (object, rec) => {
    let i = sources.indexOf(object);
    if (i < 0) i = sources.push(object) - 1;
    frames.push([i, Buffer.from(rec)]);
    bytes += 8 + ((rec.length + 7) & ~7);
  },
});
agent.start();
const seed = [...agent.table.entries()].map((p) => ({ ...p, startNs: String(p.startNs) }));
for (const s of SENSORS) {
  if (agent.sensorNames().includes(s.name)) WORKLOADS[s.name]?.();
}
await new Promise((r) => setTimeout(r, 200));
await agent.stop();
const st = agent.stats();
if (st.drops.kernel || st.drops.decode) {
  console.error(`record: lost records while recording (kernel ${st.drops.kernel}, decode ${st.drops.decode}); run again`);
  process.exit(1);
}

const buf = Buffer.alloc(bytes);
let off = 0;
const bySource = {};
for (const [i, rec] of frames) {
  buf.writeUInt16LE(i, off);
  buf.writeUInt32LE(rec.length, off + 4);
  rec.copy(buf, off + 8);
  off += 8 + ((rec.length + 7) & ~7);
  bySource[sources[i]] = (bySource[sources[i]] ?? 0) + 1;
}
writeFileSync(`${out}/records.bin`, buf);
const meta = {
  created: new Date().toISOString(),
  kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
  sensors: agent.sensorNames(),
  sources,
  records: frames.length,
  bySource,
  events: st.events,
  byCategory: st.byCategory,
  seed,
};
writeFileSync(`${out}/meta.json`, JSON.stringify(meta));
console.log(`recorded ${frames.length} records (${JSON.stringify(bySource)}; ${st.events} events ${JSON.stringify(st.byCategory)}) into ${out}`);
