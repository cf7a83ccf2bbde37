#!/usr/bin/env node
/**
 * Provenance overhead: a write + read + exec storm (bench/provenance/storm.c:
 * static C; each round creates and writes a 4 KiB file, reads it back, and
 * fork+execs /usr/bin/true) under `vigil run --sensors exec,file,network` with
 * provenance off and with `--provenance monitor --provenance-loopback`, in
 * interleaved rounds (the order alternates), a fresh agent per round.
 *
 *   node bench/provenance/run.mjs [--n 1000] [--rounds 5] [--vigil PATH/TO/cli.mjs]
 *
 * Under each agent two storms run (after one warm-up storm): "plain" (the storm
 * never touched the network: provenance costs it the read-open and exec
 * lookups) and "tainted" (it connects to a loopback listener first, so with
 * provenance on every file it writes is marked: a mark record, an xattr write
 * and a store row each). Printed (medians over rounds): storm seconds, the ratio
 * monitor/off for each storm (the target in issue 10: <= 1.03), and the agent's
 * CPU seconds per 1,000 storm rounds (utime+stime of its process, all threads).
 * Needs root and gcc (static link). Not part of the tests.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const N = Number(opt('--n', 1000));
const ROUNDS = Number(opt('--rounds', 5));
const VIGIL = opt('--vigil', join(root, 'bin/vigil'));
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString());

const work = mkdtempSync(join(tmpdir(), 'vigil-provbench-'));
const STORM = join(work, 'storm');
execFileSync('gcc', ['-O2', '-static', '-o', STORM, join(root, 'bench/provenance/storm.c')]);

// the listener runs in a child: the bench process itself must not touch the network,
// or the storms it starts would inherit its taint
const listener = spawn(process.execPath, ['-e', "const s = require('node:net').createServer((c) => c.destroy()); s.listen(0, '127.0.0.1', () => console.log(s.address().port));"], { stdio: ['ignore', 'pipe', 'inherit'] });
const PORT = await new Promise((r) => listener.stdout.once('data', (d) => r(Number(String(d).trim()))));

function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

function storm(tainted) {
  const dir = mkdtempSync(join(work, 'd-'));
  const t0 = process.hrtime.bigint();
  const r = spawnSync(STORM, [String(N), dir, tainted ? String(PORT) : '0']);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`storm failed: ${r.stderr}`);
  rmSync(dir, { recursive: true, force: true });
  return secs;
}

async function underAgent(mode) {
  const dir = mkdtempSync(join(work, `a-${mode}-`));
  const args = [VIGIL, 'run', '--db', join(dir, 'vigil.db'), '--no-enforce', '--stats-interval', '0', '--sensors', 'exec,file,network'];
  if (mode === 'monitor') args.push('--provenance', 'monitor', '--provenance-loopback');
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const t0 = Date.now();
  while (!err.includes('vigil running')) {
    if (p.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`vigil did not start: ${err}`);
    await sleep(50);
  }
  storm(true); // warm-up
  await sleep(500);
  const out = {};
  for (const kind of ['plain', 'tainted']) {
    const c0 = cpuOf(p.pid);
    const secs = storm(kind === 'tainted');
    await sleep(1000); // let the agent finish the storm's records
    out[kind] = { secs, cpu: cpuOf(p.pid) - c0 - 0 };
  }
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  const prov = err.split('\n').find((l) => l.includes('origin records written'));
  out.marks = prov ? JSON.parse(prov).provenance.marks : 0;
  rmSync(dir, { recursive: true, force: true });
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const res = { off: [], monitor: [] };
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 ? ['monitor', 'off'] : ['off', 'monitor'];
  for (const m of order) res[m].push(await underAgent(m));
  process.stderr.write(`round ${i + 1}/${ROUNDS} done\n`);
}
listener.kill();
rmSync(work, { recursive: true, force: true });

console.log(`provenance bench: ${N} rounds per storm (write 4 KiB + read + exec), ${ROUNDS} interleaved rounds, medians`);
for (const kind of ['plain', 'tainted']) {
  const off = median(res.off.map((r) => r[kind].secs));
  const mon = median(res.monitor.map((r) => r[kind].secs));
  const cOff = median(res.off.map((r) => r[kind].cpu)) * (1000 / N);
  const cMon = median(res.monitor.map((r) => r[kind].cpu)) * (1000 / N);
  console.log(`  ${kind.padEnd(8)} storm ${off.toFixed(3)} s off, ${mon.toFixed(3)} s monitor: ratio ${(mon / off).toFixed(3)}; agent CPU per 1,000 rounds ${cOff.toFixed(3)} s off, ${cMon.toFixed(3)} s monitor`);
}
console.log(`  marks recorded per monitor run (expected ${2 * N}: the warm-up and the tainted storm; the plain storm none): ${res.monitor.map((r) => r.marks).join(', ')}`);
