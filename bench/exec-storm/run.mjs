#!/usr/bin/env node
/**
 * Exec storm: what recording every exec costs, vigil next to auditd.
 *
 *   node bench/exec-storm/run.mjs [--execs 3000] [--rounds 5] [--target dynamic|static] [--all-sensors] [--fleet]
 *       [--warmup 30000] [--side-config YAML] [--pair-config YAML] [--pair-root DIR] [--no-null-pair] [--only M,M] [--json]
 *
 * One storm (bench/exec-storm/storm.c: static C, fork + execve + wait in a loop;
 * the exec'd program is /usr/bin/true with a four-word argv, or with --target
 * static a static do-nothing binary) is run in interleaved rounds (the order
 * rotates each round) under each monitor, started fresh for its round:
 *   none         no monitor (the baseline)
 *   vigil        `vigil run --sensors exec` writing the JSONL log and the SQLite store,
 *                with every SigmaHQ linux rule (test/fixtures/sigma/rules/linux) loaded;
 *                the kernel wakes it once per MiB of records, and it reads every 50 ms
 *   vigil-wake1  the same, with the kernel's default wake-ups (ring_buffer_wakeup.bytes: 0:
 *                woken for each record that finds it caught up): the reader before batching
 *   vigil-fleet  (with --fleet) `vigil` as above, also publishing every event and alert to a
 *                fleet: Debian's nats-server (JetStream, file store, in a temporary
 *                directory, on loopback; its CPU is another host's and is not counted) through
 *                the agent's batches, on-disk spool and acknowledged publishes. The line
 *                `fleet publishing` gives (vigil-fleet − vigil) / vigil-fleet: what publishing
 *                costs the agent as a share of its CPU (issue 13: under 5 %)
 *   fleet-pair   (with --fleet) `vigil` and `vigil-fleet` side by side, both recording the
 *                same storm: the share from two agents' CPU over the same execs in the same
 *                seconds (the least noisy of the three figures; each agent's CPU per exec is
 *                higher than alone, as they share the cores)
 *   pair         (with --pair-config YAML and/or --pair-root DIR) A/B of a change, side by
 *                side as fleet-pair: A is `vigil` of this tree, B the same with YAML added to
 *                its config (e.g. 'store: { text_index: false }') and/or the agent of another
 *                built checkout DIR (e.g. `git worktree add ../b HEAD~1`, then
 *                ./scripts/setup.sh there). Prints B's CPU per exec over A's: the median of the
 *                rounds' ratios and their quartiles, and their mean with its 95 % confidence
 *                interval. One agent's CPU per 1,000 execs moves by ±20 % from one round to
 *                the next: a change of a few per cent needs this, not two medians
 *   null-pair    the A/A control of the two above, run with either of them (--no-null-pair:
 *                not): two identical agents of this tree side by side. What it prints is the
 *                noise of every pair figure: on this 2-core machine (2026-12-02, 16 rounds of
 *                10,000 execs) B's share ranged from -10.4 % to +6.4 % per round, its mean
 *                -0.7 % (95 % CI -2.7 % to 1.4 %). The fleet-pair and pair lines also print
 *                their mean minus the control's, with the 95 % interval of that difference
 *                (Welch)
 *   auditd       Debian's auditd (`auditd -n -l` with the stock auditd.conf, log in a
 *                temporary directory) and `auditctl -a always,exit -F arch=b64 -S execve`
 *   vigil-auditd `vigil` and `auditd` as above side by side, both recording the same storm:
 *                vigil's CPU over auditd's (and over auditd's + kauditd's) per round, the
 *                median and quartiles (the issue's measure without the noise of separate
 *                runs; each one's CPU per exec is higher than alone, sharing the cores);
 *                --side-config YAML adds YAML to its agent's config
 * Each monitor first records --warmup execs (default 30,000, in storms of --execs) that are
 * not measured (a long-running agent runs optimized code: V8 is still compiling after one
 * storm of 10,000), then the measured storm.
 * Printed per monitor (medians over rounds):
 *   - the storm's time and its slowdown against `none` in the same run;
 *   - the monitor's CPU per 1,000 execs: utime+stime of its own process (/proc/PID/stat:
 *     every thread of vigil, i.e. its SQLite worker and libuv threads; auditd's
 *     process), from the storm's start until the monitor has gone idle after it.
 *     kauditd (the kernel thread that hands audit records to auditd) is shown apart.
 *     Work done in the storm's own context (BPF programs, audit's syscall-exit hook)
 *     is not in it: it is the next figure;
 *   - in storm: the CPU a monitor spends in the execs' own context per 1,000 execs: vigil's
 *     BPF programs (the kernel's BPF statistics), audit's syscall-exit work (short storms
 *     with audit enabled and disabled, back to back): IN_CONTEXT_PAIRS below;
 *   - the whole cost per 1,000 execs of vigil and of auditd: the monitor's process,
 *     kauditd, and its work in the execs' context;
 *   - bytes per exec: the storm's own execs (a marker argument tells them apart) in vigil's
 *     JSONL (their process_creation and process_termination lines) and in auditd's log (every
 *     record of their audit events); and everything each wrote divided by the execs it
 *     recorded (process_creation events; EXECVE records), the only measure for the SQLite
 *     store (it keeps processes apart from events).
 * Needs root, a built tree (npm run build), and the `auditd` package (apt-get install
 * auditd; no auditd may be running). Not part of the tests: bench/run.mjs runs it.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNats } from '../fleet/nats.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const EXECS = Number(opt('--execs', 3000));
const ROUNDS = Number(opt('--rounds', 5));
// execs each monitor records before its measured storm (in storms of --execs at most): V8 is still
// compiling the agent's code after one storm of 10,000 (--trace-opt: ~50 functions optimized during
// the next one, 6-18 during the ones after; perf: the compiler threads 15 % of the agent's samples
// after 3,000 execs, 2.6 % after 30,000)
const WARMUP = Number(opt('--warmup', 30000));
if (!Number.isSafeInteger(WARMUP) || WARMUP < 0) {
  console.error(`exec-storm: --warmup ${opt('--warmup', '')}: a whole number of execs, 0 or more`);
  process.exit(2);
}
const TARGET = opt('--target', 'dynamic');
const SENSORS = argv.includes('--all-sensors') ? null : 'exec';
const FLEET = argv.includes('--fleet');
// --pair-config YAML / --pair-root DIR: the `pair` monitor, B = this tree's agent with YAML added to its config, or DIR's (a built checkout)
const PAIR_CONFIG = opt('--pair-config', null);
// --side-config YAML: added to the config of vigil-auditd's agent (e.g. 'store: { text_index: false }')
const SIDE_CONFIG = opt('--side-config', null);
const PAIR_ROOT = opt('--pair-root', null);
// --only vigil-fleet,auditd: a subset (none and vigil always run: the figures are against them)
const MONITORS = ['none', 'vigil', 'vigil-wake1', 'vigil-noindex', ...(FLEET ? ['vigil-fleet', 'fleet-pair'] : []), ...(PAIR_CONFIG !== null || PAIR_ROOT ? ['pair'] : []), 'null-pair', 'auditd', 'vigil-auditd'];
const ONLY = opt('--only', null)?.split(',') ?? null;
if (ONLY?.some((n) => !MONITORS.includes(n))) {
  console.error(`exec-storm: --only ${ONLY.filter((n) => !MONITORS.includes(n)).join(',')}: no such monitor (${MONITORS.join(', ')}${FLEET ? '' : '; vigil-fleet and fleet-pair need --fleet'})`);
  process.exit(2);
}
const selected = (name) => !ONLY || ONLY.includes(name);
// null-pair (the A/A control) runs with any pair measure unless --no-null-pair: a pair's figure means
// nothing without the spread of two identical agents under the same storms
const NULL_PAIR = ONLY?.includes('null-pair') || (!argv.includes('--no-null-pair') && ((FLEET && selected('fleet-pair')) || ((PAIR_CONFIG !== null || PAIR_ROOT) && selected('pair'))));
const runs = (name) => (name === 'null-pair' ? NULL_PAIR : selected(name) || name === 'none' || name === 'vigil');
const build = `${root}bench/.build/exec-storm`;
mkdirSync(build, { recursive: true });
execFileSync('gcc', ['-O2', '-static', '-o', `${build}/storm`, `${root}bench/exec-storm/storm.c`]);
execFileSync('gcc', ['-O2', '-static', '-o', `${build}/true-static`, `${root}bench/exec-guard/true.c`]);
// a marker argument (same length every round) tells the storm's execs from whatever else runs meanwhile
const MARK = `--run=${Math.random().toString(36).slice(2, 10).padEnd(8, '0')}`;
const STORM_ARGV = TARGET === 'static' ? [`${build}/true-static`, MARK] : ['/usr/bin/true', '--config', '/etc/app/config.yaml', MARK];
const RULES = `${root}test/fixtures/sigma/rules/linux`;
const VIGIL = `${root}bin/vigil`;
/** the pair monitor's B: its vigil, its config added, and how the output names it */
let PAIR = null;
if (PAIR_CONFIG !== null || PAIR_ROOT) {
  const bVigil = PAIR_ROOT ? join(PAIR_ROOT, 'bin/vigil') : VIGIL;
  if (!existsSync(bVigil) || (PAIR_ROOT && !existsSync(join(PAIR_ROOT, 'dist/cli/main.js')))) {
    console.error(`exec-storm: --pair-root ${PAIR_ROOT}: no built vigil there (bin/vigil and dist/: run ./scripts/setup.sh or npm ci && npm run build in it)`);
    process.exit(2);
  }
  const config = PAIR_CONFIG === null ? '' : `${PAIR_CONFIG}\n`;
  PAIR = { vigil: bVigil, config, describe: [PAIR_ROOT ? `the tree at ${PAIR_ROOT}` : 'this tree', PAIR_CONFIG !== null ? `with ${JSON.stringify(PAIR_CONFIG)} in its config` : ''].filter(Boolean).join(' ') };
}

const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
/** utime+stime of a process (all its threads), in seconds */
function cpuOf(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticks;
}
function pidOf(comm) {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === comm) return Number(d);
    } catch {
      /* gone */
    }
  }
  return null;
}
/** Wait until a process has used no CPU for `quietMs` (it has finished the storm's records). */
async function idle(pid, quietMs = 300, maxMs = 30_000) {
  const end = Date.now() + maxMs;
  let last = cpuOf(pid);
  let since = Date.now();
  while (Date.now() < end) {
    await sleep(50);
    const c = cpuOf(pid);
    if (c !== last) {
      last = c;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}
/** One storm (EXECS, or n, execs): its wall time and the CPU of the storm and its children (user + system), in seconds. */
function storm(n = EXECS) {
  const r = spawnSync(`${build}/storm`, [String(n), ...STORM_ARGV], { encoding: 'utf8', env: { ...process.env, STORM_CPU: '1' } });
  if (r.status !== 0) throw new Error(`storm failed: ${r.stderr}`);
  const [ns, cpuNs] = r.stdout.trim().split('\n').map(Number);
  return { secs: ns / 1e9, stormCpu: cpuNs / 1e9 };
}
/** The warm-up before a measured storm: WARMUP execs recorded, not measured. */
function warmUp() {
  for (let left = WARMUP; left > 0; left -= EXECS) storm(Math.min(EXECS, left));
}
const size = (p) => (existsSync(p) ? statSync(p).size : 0);

/**
 * What a round leaves running or on disk (agents, auditd and its audit rule, their
 * directories), undone however the bench ends: an error, Ctrl-C (exit 130), SIGTERM (143).
 */
const leftovers = new Set();
process.on('exit', () => {
  for (const undo of leftovers) undo();
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143));

/**
 * The CPU a monitor spends in the storm's own context, measured apart (the storm's CPU
 * from one round to the next varies by more than either monitor's share of it):
 *   vigil: its BPF programs' run time, from the kernel's BPF statistics
 *     (kernel.bpf_stats_enabled, on while the bench runs; bpftool reads them);
 *   auditd: the storm's CPU in IN_CONTEXT_PAIRS pairs of short storms, one with audit
 *     enabled and one with it disabled (auditctl -e 1 / -e 0: the rule stays, auditd
 *     stays), back to back, per round; the median of every round's pairs and its quartiles
 *     (the flag is set back to what it was however the bench ends)
 *     (the storm's CPU moves by ±20 % from one short storm to the next on this kind of
 *     machine, so one pair says little and the quartiles are wide).
 */
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
/** The first and third quartiles of xs. */
const quartiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[Math.floor(s.length / 4)], s[Math.floor((3 * s.length) / 4)]];
};
/** Student's t, two-sided 95 %, by degrees of freedom (1-30; 1.96 beyond) */
const T95 = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
const t95 = (df) => (df >= 1 && df <= 30 ? T95[Math.floor(df)] : df > 30 ? 1.96 : NaN);
/** The mean of xs with its 95 % confidence interval (Student's t): { mean, lo, hi, sd, n }. */
function meanCi(xs) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : NaN;
  const h = t95(n - 1) * (sd / Math.sqrt(n));
  return { mean, lo: mean - h, hi: mean + h, sd, n };
}
/** The difference of two means (a − b) with its 95 % interval (Welch; degrees of freedom by Welch-Satterthwaite). */
function diffCi(a, b) {
  const va = a.sd ** 2 / a.n;
  const vb = b.sd ** 2 / b.n;
  const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1));
  const d = a.mean - b.mean;
  const h = t95(df) * Math.sqrt(va + vb);
  return { mean: d, lo: d - h, hi: d + h };
}

/** A vigil monitor with one agent alone (wake-ups, drops and bytes of its own); not vigil-auditd. */
const agentAlone = (name) => name.startsWith('vigil') && name !== 'vigil-auditd';
const IN_CONTEXT_PAIRS = 20;
const IN_CONTEXT_EXECS = 1000;
const bpfStats = (() => {
  if (spawnSync('bpftool', ['version']).status !== 0) return null;
  const path = '/proc/sys/kernel/bpf_stats_enabled';
  const before = readFileSync(path, 'utf8').trim();
  writeFileSync(path, '1');
  leftovers.add(() => writeFileSync(path, before));
  return {
    /** run time (ns) of every loaded program named vigil_* (one agent at a time) */
    vigilNs() {
      const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }));
      return progs.filter((x) => String(x.name ?? '').startsWith('vigil')).reduce((a, x) => a + (x.run_time_ns ?? 0), 0);
    },
  };
})();

/** Start `vigil run` (its files in a new temporary directory); resolves once it records. */
async function startVigil(name, wakeBytes, extraConfig, vigil = VIGIL) {
  const dir = mkdtempSync(join(tmpdir(), `vigil-storm-${name}-`));
  const cfg = join(dir, 'vigil.yaml');
  writeFileSync(cfg, `ring_buffer_wakeup: { bytes: ${wakeBytes}, max_latency: 50ms }\n${typeof extraConfig === 'function' ? extraConfig(dir) : extraConfig}`);
  const args = [vigil, 'run', '-c', cfg, '--events-out', join(dir, 'events.jsonl'), '--db', join(dir, 'vigil.db'), '--rules', RULES, '--no-enforce', '--stats-interval', '0'];
  if (SENSORS) args.push('--sensors', SENSORS);
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const undo = () => {
    p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  leftovers.add(undo);
  const agent = { p, dir, err: '', undo };
  p.stderr.on('data', (d) => (agent.err += d));
  const t0 = Date.now();
  while (!agent.err.includes('vigil running')) {
    if (p.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`vigil did not start: ${agent.err}`);
    await sleep(50);
  }
  return agent;
}

/** Stop an agent and read what it wrote and counted; its directory goes. */
async function finishVigil(agent, secs, cpu) {
  const { p, dir } = agent;
  // agent.undo stays a leftover until the directory is gone: a signal while the agent stops still removes it
  p.kill('SIGTERM');
  await new Promise((r) => (p.exitCode !== null ? r() : p.on('exit', r)));
  const stormJsonl = stormBytesJsonl(join(dir, 'events.jsonl'));
  const final = agent.err.split('\n').find((l) => l.includes('"final: '));
  const stats = final ? JSON.parse(final).stats : null;
  const creations = stats?.byCategory?.process_creation ?? 0;
  const fleetSink = stats?.sinks ? Object.entries(stats.sinks).find(([k]) => k === 'fleet')?.[1] : undefined;
  const out = {
    secs,
    cpu,
    recorded: creations,
    drops: stats ? stats.drops.kernel + stats.drops.decode + stats.drops.sinks : NaN,
    wakeups: stats ? Object.values(stats.sensors).reduce((a, s) => a + s.ringWakeups, 0) : NaN,
    timerDrains: stats ? Object.values(stats.sensors).reduce((a, s) => a + (s.timerDrains ?? 0), 0) : NaN,
    events: stats?.events ?? 0,
    published: fleetSink?.written,
    alerts: stats?.alerts ?? 0,
    bytes: { jsonl: size(join(dir, 'events.jsonl')), sqlite: size(join(dir, 'vigil.db')) + size(join(dir, 'vigil.db-wal')) },
    storm: { jsonl: stormJsonl.bytes / stormJsonl.execs },
  };
  if (fleetSink && out.published !== out.events + out.alerts) {
    // the fleet sink's count is what the server acknowledged: anything short of every record is a loss here
    out.drops = (out.drops || 0) + Math.abs(out.events + out.alerts - (out.published ?? 0));
  }
  rmSync(dir, { recursive: true, force: true });
  leftovers.delete(agent.undo);
  return out;
}

/** A monitor: run() starts it fresh, records one storm unmeasured, measures the next, and stops it. */
function vigilMonitor(name, wakeBytes, extraConfig = '') {
  return {
    name,
    async run() {
      const agent = await startVigil(name, wakeBytes, extraConfig);
      warmUp(); // not measured: a long-running agent's code is optimized
      await idle(agent.p.pid, 500);
      const c0 = cpuOf(agent.p.pid);
      const b0 = bpfStats?.vigilNs();
      const { secs, stormCpu } = storm();
      const bpf = bpfStats ? (bpfStats.vigilNs() - b0) / 1e9 : undefined;
      await idle(agent.p.pid);
      return { ...(await finishVigil(agent, secs, cpuOf(agent.p.pid) - c0)), stormCpu, inContext: bpf };
    },
  };
}

/**
 * Two agents at the same time, under the same storm (both record every exec): A is `vigil`
 * of this tree as the `vigil` monitor runs it, B the same with `bConfig` added and, with
 * `bVigil`, another tree's. Their CPUs are of the same execs in the same seconds, so their
 * ratio is not blurred by how one round differs from the next (two agents on two cores
 * with the storm: each one's CPU per exec is higher than alone; the ratio is what counts).
 * fleet-pair (with --fleet): B publishes to the fleet. pair (with --pair-config or
 * --pair-root): any change, a config or a build, against this tree.
 */
function pairMonitor(name, bConfig, bVigil = VIGIL) {
  return {
    name,
    async run() {
      const a = await startVigil(`${name}-a`, '1MiB', '');
      const b = await startVigil(`${name}-b`, '1MiB', bConfig, bVigil);
      warmUp();
      await Promise.all([idle(a.p.pid, 500), idle(b.p.pid, 500)]);
      const a0 = cpuOf(a.p.pid);
      const b0 = cpuOf(b.p.pid);
      const { secs } = storm();
      await Promise.all([idle(a.p.pid), idle(b.p.pid)]);
      const ca = cpuOf(a.p.pid) - a0;
      const cb = cpuOf(b.p.pid) - b0;
      const [oa, ob] = [await finishVigil(a, secs, ca), await finishVigil(b, secs, cb)];
      return { secs, cpu: cb, cpuWithout: ca, share: (cb - ca) / cb, ratio: cb / ca, drops: oa.drops + ob.drops, recorded: Math.min(oa.recorded, ob.recorded), bytes: {}, storm: {} };
    },
  };
}

/** JSONL bytes per storm exec: its process_creation lines (marker in CommandLine) and the process_termination of the same ProcessGuid. */
function stormBytesJsonl(path) {
  const lines = readFileSync(path, 'utf8').split('\n');
  const guids = new Set();
  let bytes = 0;
  let execs = 0;
  for (const l of lines) {
    if (!l.includes(MARK)) continue;
    const e = JSON.parse(l);
    if (e.category !== 'process_creation' || !e.CommandLine.includes(MARK) || e.Image === `${build}/storm`) continue;
    guids.add(e.ProcessGuid);
    bytes += l.length + 1;
    execs++;
  }
  for (const l of lines) {
    if (!l.startsWith('{"category":"process_termination"')) continue;
    const g = /"ProcessGuid":"([^"]+)"/.exec(l)?.[1];
    if (g && guids.has(g)) bytes += l.length + 1;
  }
  return { bytes, execs };
}

/** audit.log bytes per storm exec: every record of the events whose EXECVE has the marker. */
function stormBytesAudit(text) {
  const bySerial = new Map();
  const storm = new Set();
  for (const l of text.split('\n')) {
    const id = /msg=audit\(([^)]+)\)/.exec(l)?.[1];
    if (!id) continue;
    bySerial.set(id, (bySerial.get(id) ?? 0) + l.length + 1);
    if (l.startsWith('type=EXECVE ') && l.includes(MARK)) storm.add(id);
  }
  let bytes = 0;
  for (const id of storm) bytes += bySerial.get(id);
  return bytes / storm.size;
}

/** A number of `auditctl -s`: `lost` (records the kernel's audit lost), `enabled` (0 or 1), ... */
function auditStatus(name) {
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(execFileSync('auditctl', ['-s'], { encoding: 'utf8' }));
  return m ? Number(m[1]) : NaN;
}

/**
 * Debian's auditd as the bench runs it (stock auditd.conf, its log in a temporary directory, no
 * rotation) with the execve rule in force. stop() takes the rule out, sets audit's enabled flag
 * back, stops auditd and removes the directory.
 */
async function startAuditd() {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-storm-auditd-'));
  const log = join(dir, 'audit.log');
  const conf = readFileSync('/etc/audit/auditd.conf', 'utf8')
    .replace(/^log_file\s*=.*$/m, `log_file = ${log}`)
    .replace(/^max_log_file_action\s*=.*$/m, 'max_log_file_action = IGNORE');
  writeFileSync(join(dir, 'auditd.conf'), conf, { mode: 0o600 });
  const p = spawn('/usr/sbin/auditd', ['-n', '-l', '-c', dir], { stdio: 'ignore' });
  const rule = ['always,exit', '-F', 'arch=b64', '-S', 'execve', '-k', 'vigilbench'];
  // audit's enabled flag as it was (the in-context pairs turn it off and on)
  const enabled = String(auditStatus('enabled') === 0 ? 0 : 1);
  const halt = () => {
    spawnSync('auditctl', ['-e', enabled], { stdio: 'ignore' });
    spawnSync('auditctl', ['-d', ...rule], { stdio: 'ignore' });
    p.kill('SIGTERM'); // auditd ignores SIGINT
  };
  const undo = () => {
    halt();
    rmSync(dir, { recursive: true, force: true });
  };
  leftovers.add(undo);
  const stop = async () => {
    // undo stays a leftover until the directory is gone: a signal while auditd stops still removes it
    halt();
    await new Promise((r) => (p.exitCode !== null ? r() : p.on('exit', r)));
    rmSync(dir, { recursive: true, force: true });
    leftovers.delete(undo);
  };
  const t0 = Date.now();
  while (!execFileSync('auditctl', ['-s'], { encoding: 'utf8' }).includes(`pid ${p.pid}`)) {
    if (p.exitCode !== null || Date.now() - t0 > 10_000) {
      await stop();
      throw new Error('auditd did not start');
    }
    await sleep(50);
  }
  execFileSync('auditctl', ['-a', ...rule]);
  return { p, log, stop };
}

const auditMonitor = {
  name: 'auditd',
  async run() {
    const { p, log, stop } = await startAuditd();
    let out;
    try {
      warmUp(); // as for vigil
      await idle(p.pid, 500);
      const kpid = pidOf('kauditd');
      const lost0 = auditStatus('lost');
      const b0 = size(log);
      const c0 = cpuOf(p.pid);
      const k0 = kpid ? cpuOf(kpid) : 0;
      const { secs, stormCpu } = storm();
      await idle(p.pid);
      const cpu = cpuOf(p.pid) - c0;
      const kcpu = kpid ? cpuOf(kpid) - k0 : NaN;
      const text = readFileSync(log).subarray(b0).toString('latin1');
      // audit's work in the execs' context: short storms with audit enabled and disabled, back to back
      // (ms per 1,000 execs; the flag is set back by stop())
      const inContextPairs = [];
      for (let k = 0; k < IN_CONTEXT_PAIRS; k++) {
        // a turn of the event loop between pairs: Ctrl-C or SIGTERM ends the bench here, not 40 storms later
        await new Promise(setImmediate);
        const got = {};
        for (const on of k % 2 ? ['1', '0'] : ['0', '1']) {
          execFileSync('auditctl', ['-e', on], { stdio: 'ignore' });
          got[on] = storm(IN_CONTEXT_EXECS).stormCpu;
        }
        inContextPairs.push(((got['1'] - got['0']) / IN_CONTEXT_EXECS) * 1e6);
      }
      out = { secs, stormCpu, inContextPairs, cpu, kcpu, recorded: (text.match(/^type=EXECVE /gm) ?? []).length, bytes: { log: text.length }, storm: { log: stormBytesAudit(text) }, lost: auditStatus('lost') - lost0 };
    } finally {
      await stop();
    }
    return out;
  },
};

/**
 * vigil and auditd side by side, both recording the same storm (the issue's measure, vigil's
 * CPU against auditd's, without the round-to-round noise of separate runs): per round vigil's
 * CPU over auditd's process and over auditd's process + kauditd. Each one's CPU per exec is
 * higher than alone (they share the two cores with the storm); the ratio is what counts.
 */
const sideBySideMonitor = {
  name: 'vigil-auditd',
  async run() {
    const a = await startAuditd();
    let v;
    try {
      v = await startVigil('vigil-auditd', '1MiB', SIDE_CONFIG === null ? '' : `${SIDE_CONFIG}\n`);
    } catch (e) {
      await a.stop();
      throw e;
    }
    let out;
    try {
      warmUp();
      await Promise.all([idle(a.p.pid, 500), idle(v.p.pid, 500)]);
      const kpid = pidOf('kauditd');
      const lost0 = auditStatus('lost');
      const [a0, v0, k0] = [cpuOf(a.p.pid), cpuOf(v.p.pid), kpid ? cpuOf(kpid) : 0];
      const { secs } = storm();
      await Promise.all([idle(a.p.pid), idle(v.p.pid)]);
      const [ca, cv, ck] = [cpuOf(a.p.pid) - a0, cpuOf(v.p.pid) - v0, kpid ? cpuOf(kpid) - k0 : NaN];
      const lost = auditStatus('lost') - lost0;
      const ov = await finishVigil(v, secs, cv);
      out = { secs, cpu: cv, cpuAuditd: ca, kcpu: ck, ratio: cv / ca, ratioK: cv / (ca + ck), drops: ov.drops, lost, recorded: ov.recorded, bytes: {}, storm: {} };
    } finally {
      await a.stop();
    }
    return out;
  },
};

const noneMonitor = { name: 'none', run: async () => storm() };
const auditd = runs('auditd') || runs('vigil-auditd');
if (auditd && pidOf('auditd')) {
  console.error('exec-storm: an auditd is already running; stop it first (this bench starts its own)');
  process.exit(2);
}
if (auditd && !existsSync('/usr/sbin/auditd')) {
  console.error('exec-storm: needs the auditd package (apt-get install auditd)');
  process.exit(2);
}

let nats = null;
if (FLEET) {
  if (spawnSync('nats-server', ['--version']).status !== 0) {
    console.error('exec-storm: --fleet needs the nats-server package (apt-get install nats-server)');
    process.exit(2);
  }
  nats = await startNats({ prefix: 'vigil-storm-nats-' });
  execFileSync(process.execPath, [VIGIL, 'fleet', 'init', '--server', nats.url], { stdio: 'ignore' });
}
let fleetRun = 0;
const fleetConfig = (dir) => `fleet: { url: "${nats.url}", host_id: storm-${++fleetRun}, state_dir: "${join(dir, 'fleet')}" }\n`;
const allMonitors = [
  noneMonitor,
  vigilMonitor('vigil', '1MiB'),
  vigilMonitor('vigil-wake1', 0),
  vigilMonitor('vigil-noindex', '1MiB', 'store: { text_index: false }\n'),
  ...(FLEET ? [vigilMonitor('vigil-fleet', '1MiB', fleetConfig), pairMonitor('fleet-pair', fleetConfig)] : []),
  ...(PAIR ? [pairMonitor('pair', PAIR.config, PAIR.vigil)] : []),
  pairMonitor('null-pair', ''),
  auditMonitor,
  sideBySideMonitor,
];
const monitors = allMonitors.filter((m) => runs(m.name));

storm(); // warm the page cache and the binaries
const results = Object.fromEntries(monitors.map((m) => [m.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = monitors.map((_, i) => monitors[(i + r) % monitors.length]);
  for (const m of order) {
    let x;
    try {
      x = await m.run();
    } catch (e) {
      // one line (a monitor that did not start: an agent refusing its config, auditd missing a rule);
      // the exit handler stops what runs and removes the directories
      console.error(`exec-storm: round ${r + 1}, ${m.name}: ${e instanceof Error ? e.message.trim() : String(e)}`);
      process.exit(1);
    }
    results[m.name].push(x);
    process.stderr.write(`round ${r + 1}/${ROUNDS} ${m.name.padEnd(11)} ${(x.secs * 1000).toFixed(0)} ms${x.cpu !== undefined ? ` cpu ${(x.cpu * 1000).toFixed(0)} ms` : ''}${x.stormCpu !== undefined ? ` storm cpu ${(x.stormCpu * 1000).toFixed(0)} ms` : ''}\n`);
  }
}

const base = median(results.none.map((x) => x.secs));
const rows = monitors.map((m) => {
  const xs = results[m.name];
  const secs = median(xs.map((x) => x.secs));
  const row = { monitor: m.name, storm_ms: secs * 1000, slowdown: secs / base - 1 };
  if (xs[0].stormCpu !== undefined) row.storm_cpu_ms_per_1000 = median(xs.map((x) => (x.stormCpu / EXECS) * 1e6));
  // what the monitor costs in the context of the execs (IN_CONTEXT_PAIRS): vigil's BPF run time
  // per round; audit's pairs of every round pooled (each pair is noisy: a median and its quartiles)
  if (xs[0].inContextPairs) {
    const pooled = xs.flatMap((x) => x.inContextPairs);
    row.in_storm_ms_per_1000 = median(pooled);
    row.in_storm_quartiles = quartiles(pooled);
    row.in_storm_pairs = pooled.length;
  } else if (xs[0].inContext !== undefined) {
    row.in_storm_ms_per_1000 = median(xs.map((x) => (x.inContext / EXECS) * 1e6));
  }
  if (m.name !== 'none') {
    row.cpu_ms_per_1000 = median(xs.map((x) => (x.cpu / EXECS) * 1e6));
    row.recorded_per_round = median(xs.map((x) => x.recorded));
    for (const k of Object.keys(xs[0].bytes)) row[`bytes_per_exec_${k}`] = median(xs.map((x) => x.bytes[k] / x.recorded));
    for (const k of Object.keys(xs[0].storm ?? {})) row[`storm_bytes_per_exec_${k}`] = median(xs.map((x) => x.storm[k]));
  }
  if (m.name === 'auditd') {
    row.kauditd_cpu_ms_per_1000 = median(xs.map((x) => (x.kcpu / EXECS) * 1e6));
    row.lost = Math.max(...xs.map((x) => x.lost));
  }
  if (m.name === 'fleet-pair') {
    row.fleet_share_rounds = xs.map((x) => x.share);
    row.fleet_share = median(row.fleet_share_rounds);
    row.cpu_without_ms_per_1000 = median(xs.map((x) => (x.cpuWithout / EXECS) * 1e6));
  }
  // every pair monitor: both agents' drops, the most of any round
  if (m.name === 'fleet-pair' || m.name === 'pair' || m.name === 'null-pair') row.drops = Math.max(...xs.map((x) => x.drops));
  if (m.name === 'fleet-pair' || m.name === 'null-pair') row.share_mean = meanCi(xs.map((x) => x.share));
  if (m.name === 'pair' || m.name === 'null-pair') row.ratio_mean = meanCi(xs.map((x) => x.ratio));
  if (m.name === 'null-pair') row.share_rounds = xs.map((x) => x.share);
  if (m.name === 'pair') {
    row.pair_ratio_rounds = xs.map((x) => x.ratio);
    row.pair_ratio = median(row.pair_ratio_rounds);
    row.pair_ratio_quartiles = quartiles(row.pair_ratio_rounds);
    row.cpu_a_ms_per_1000 = median(xs.map((x) => (x.cpuWithout / EXECS) * 1e6));
  }
  if (m.name === 'vigil-auditd') {
    const q = (k) => {
      const rounds = xs.map((x) => x[k]);
      return { rounds, median: median(rounds), quartiles: quartiles(rounds) };
    };
    row.side_by_side = { vigil_over_auditd: q('ratio'), vigil_over_auditd_kauditd: q('ratioK') };
    row.auditd_cpu_ms_per_1000 = median(xs.map((x) => (x.cpuAuditd / EXECS) * 1e6));
    row.kauditd_cpu_ms_per_1000 = median(xs.map((x) => (x.kcpu / EXECS) * 1e6));
    row.drops = Math.max(...xs.map((x) => x.drops));
    row.lost = Math.max(...xs.map((x) => x.lost));
  }
  if (m.name === 'vigil-fleet') {
    // each round runs vigil and vigil-fleet one after the other: the pair's difference is less noisy than the medians'
    const own = results.vigil;
    row.fleet_share_rounds = xs.map((x, i) => (x.cpu - own[i].cpu) / x.cpu);
    row.fleet_share_paired = median(row.fleet_share_rounds);
    row.fleet_share = 1 - median(own.map((x) => x.cpu)) / median(xs.map((x) => x.cpu));
  }
  if (agentAlone(m.name)) {
    row.drops = Math.max(...xs.map((x) => x.drops));
    row.wakeups_per_1000 = median(xs.map((x) => (x.wakeups / EXECS) * 1000));
    row.timer_drains_per_1000 = median(xs.map((x) => (x.timerDrains / EXECS) * 1000));
  }
  if (row.in_storm_ms_per_1000 !== undefined) row.whole_ms_per_1000 = row.cpu_ms_per_1000 + (row.kauditd_cpu_ms_per_1000 || 0) + row.in_storm_ms_per_1000;
  return row;
});

if (argv.includes('--json')) console.log(JSON.stringify({ execs: EXECS, rounds: ROUNDS, target: STORM_ARGV.join(' '), rows }, null, 2));
else {
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log(`exec storm: ${EXECS} × fork+execve(${STORM_ARGV.join(' ')}), ${ROUNDS} interleaved rounds, medians; vigil --sensors ${SENSORS ?? 'all'}`);
  console.log('monitor      storm ms  slowdown  CPU ms/1000 execs  in storm  bytes/exec (storm execs (all))    wakeups/1000  lost');
  for (const r of rows) {
    const bytes = r.monitor === 'none' || r.monitor.endsWith('pair') || r.monitor === 'vigil-auditd' ? '' : r.monitor === 'auditd' ? `log ${f(r.storm_bytes_per_exec_log)} (${f(r.bytes_per_exec_log)})` : `JSONL ${f(r.storm_bytes_per_exec_jsonl)} (${f(r.bytes_per_exec_jsonl)}), SQLite ${f(r.bytes_per_exec_sqlite)}`;
    const cpu = r.monitor === 'none' ? '' : `${f(r.cpu_ms_per_1000, 1)}${r.monitor === 'auditd' ? ` (+kauditd ${f(r.kauditd_cpu_ms_per_1000, 1)})` : ''}`;
    const wk = agentAlone(r.monitor) ? `${f(r.wakeups_per_1000, 1)}+${f(r.timer_drains_per_1000, 1)}` : '';
    const lost = r.monitor === 'none' ? '' : r.monitor === 'vigil-auditd' ? `${r.drops}+${r.lost}` : String(r.monitor === 'auditd' ? r.lost : r.drops);
    console.log(`${r.monitor.padEnd(12)} ${f(r.storm_ms).padStart(8)}  ${r.monitor === 'none' ? '      -' : `${(r.slowdown * 100).toFixed(1).padStart(6)}%`}  ${cpu.padEnd(17)}  ${(r.monitor === 'none' ? '' : f(r.in_storm_ms_per_1000, 1)).padStart(8)}  ${bytes.padEnd(31)}  ${wk.padEnd(12)}  ${lost}`);
  }
  const v = rows.find((r) => r.monitor === 'vigil');
  const a = rows.find((r) => r.monitor === 'auditd');
  if (a) {
    console.log(`vigil / auditd CPU per exec: ${((v.cpu_ms_per_1000 / a.cpu_ms_per_1000) * 100).toFixed(0)} % (auditd's process only), ${((v.cpu_ms_per_1000 / (a.cpu_ms_per_1000 + a.kauditd_cpu_ms_per_1000)) * 100).toFixed(0)} % (with kauditd)`);
    if (v.whole_ms_per_1000 === undefined) console.log("whole cost: needs bpftool for vigil's part in the execs' context (apt-get install bpftool)");
    else console.log(
      `whole cost per 1000 execs (the monitor's process + kauditd + its work in the execs' own context): ` +
        `vigil ${f(v.whole_ms_per_1000, 1)}, auditd ${f(a.whole_ms_per_1000, 1)} ms: ${((v.whole_ms_per_1000 / a.whole_ms_per_1000) * 100).toFixed(0)} % ` +
        `(audit's in-context part: the median of ${a.in_storm_pairs} enabled/disabled pairs, quartiles ${f(a.in_storm_quartiles[0], 1)} to ${f(a.in_storm_quartiles[1], 1)})`,
    );
  }
  const sb = rows.find((r) => r.monitor === 'vigil-auditd');
  if (sb) {
    const { vigil_over_auditd: o, vigil_over_auditd_kauditd: ok } = sb.side_by_side;
    const pc = (x) => `${(x * 100).toFixed(0)} %`;
    console.log(
      `vigil-auditd${SIDE_CONFIG === null ? '' : ` (vigil with ${JSON.stringify(SIDE_CONFIG)})`}, side by side under the same storms (both recording every exec): vigil's CPU over auditd's ${pc(o.median)} (quartiles ${pc(o.quartiles[0])}-${pc(o.quartiles[1])}; rounds ${o.rounds.map(pc).join(' ')}), ` +
        `over auditd + kauditd ${pc(ok.median)} (${pc(ok.quartiles[0])}-${pc(ok.quartiles[1])}); vigil ${f(sb.cpu_ms_per_1000, 1)}, auditd ${f(sb.auditd_cpu_ms_per_1000, 1)} + kauditd ${f(sb.kauditd_cpu_ms_per_1000, 1)} ms per 1000 execs`,
    );
  }
  const vf = rows.find((r) => r.monitor === 'vigil-fleet');
  if (vf) {
    console.log(
      `fleet publishing, share of the agent's CPU (target < 5 %): ${(vf.fleet_share * 100).toFixed(1)} % of medians (vigil-fleet ${f(vf.cpu_ms_per_1000, 1)}, vigil ${f(v.cpu_ms_per_1000, 1)} ms per 1000 execs); ` +
        `${(vf.fleet_share_paired * 100).toFixed(1)} % the median of each round's pair (${vf.fleet_share_rounds.map((x) => (x * 100).toFixed(1)).join(' ')})`,
    );
  }
  const fp = rows.find((r) => r.monitor === 'fleet-pair');
  if (fp) {
    console.log(
      `fleet publishing, side by side (both agents under the same storm): ${(fp.fleet_share * 100).toFixed(1)} % of the agent's CPU, median of ${fp.fleet_share_rounds.length} rounds ` +
        `(${fp.fleet_share_rounds.map((x) => (x * 100).toFixed(1)).join(' ')}); with --fleet ${f(fp.cpu_ms_per_1000, 1)}, without ${f(fp.cpu_without_ms_per_1000, 1)} ms per 1000 execs (target < 5 %)`,
    );
  }
  const np = rows.find((r) => r.monitor === 'null-pair');
  // one round has no interval: '-' (f's way) rather than NaN
  const pc1 = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '-');
  const ci = (c, fmt) => `${fmt(c.mean)} (95 % CI ${fmt(c.lo)} to ${fmt(c.hi)})`;
  if (fp) {
    console.log(`  the mean of its rounds: ${ci(fp.share_mean, pc1)}`);
    if (np) {
      const d = diffCi(fp.share_mean, np.share_mean);
      console.log(`  minus the A/A control's (null-pair): ${ci(d, pc1)}; publishing is under 5 % with 95 % confidence only when this interval's top is below 5 %`);
    }
  }
  if (np) {
    console.log(
      `null-pair (A/A control: two identical agents side by side, the noise of every pair figure): B's share ${ci(np.share_mean, pc1)}, median ${pc1(median(np.share_rounds))}; ` +
        `B/A ${ci(np.ratio_mean, (x) => f(x, 3))} (rounds ${np.share_rounds.map((x) => (x * 100).toFixed(1)).join(' ')})`,
    );
  }
  const pr = rows.find((r) => r.monitor === 'pair');
  if (pr) {
    console.log(
      `pair (A: this tree; B: ${PAIR.describe}), side by side under the same storms: B/A CPU per exec ${f(pr.pair_ratio, 3)}, median of ${pr.pair_ratio_rounds.length} rounds ` +
        `(quartiles ${f(pr.pair_ratio_quartiles[0], 3)}-${f(pr.pair_ratio_quartiles[1], 3)}; rounds ${pr.pair_ratio_rounds.map((x) => x.toFixed(3)).join(' ')}); A ${f(pr.cpu_a_ms_per_1000, 1)}, B ${f(pr.cpu_ms_per_1000, 1)} ms per 1000 execs`,
    );
    console.log(`  the mean of its rounds: B/A ${ci(pr.ratio_mean, (x) => f(x, 3))}`);
    if (np) console.log(`  minus the A/A control's B/A: ${ci(diffCi(pr.ratio_mean, np.ratio_mean), (x) => f(x, 3))}`);
  }
  if (a) console.log(
    `bytes per storm exec vs auditd's log: JSONL ${((v.storm_bytes_per_exec_jsonl / a.storm_bytes_per_exec_log) * 100).toFixed(0)} %; ` +
      `all bytes per exec recorded: JSONL ${((v.bytes_per_exec_jsonl / a.bytes_per_exec_log) * 100).toFixed(0)} %, SQLite ${((v.bytes_per_exec_sqlite / a.bytes_per_exec_log) * 100).toFixed(0)} % (the store cannot be split per exec)`,
  );
}
await nats?.stop();
const lost = rows.some((r) => (r.drops ?? 0) > 0 || (r.lost ?? 0) > 0);
if (lost) {
  console.error('LOSSES: a monitor lost records; its figures are not comparable');
  process.exitCode = 1;
}
