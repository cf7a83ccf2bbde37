#!/usr/bin/env node
/**
 * What `vigil watch` costs a file-heavy program, inside the watched tree and
 * outside it, against no vigil at all, in the same run.
 *
 *   node bench/watch/run.mjs [--rounds-work 40] [--files 2000] [--rounds 5] [--vigil bin/vigil] [--json]
 *
 * The workload (bench/watch/filework.c, static C) reads FILES distinct files per
 * round (open, read, close) and writes one, and measures its own loop's CPU time
 * (user + system: the BPF programs run in its syscalls and count there; other
 * agents competing for the 2 cores do not, which wall-clock time would show;
 * vigil's start-up is not counted). Modes, interleaved, order rotating each round:
 *   none     no vigil
 *   outside  `vigil watch -- sleep` is running (sensors loaded, scope set to its
 *            tree); the workload runs outside that tree: the sensors' programs run
 *            for every syscall and drop it after the scope lookup
 *   inside   `vigil watch -- filework ...`: every open is reported (reads too, as
 *            watch records them; the same file is reported once per 5 s per process)
 * Printed: median workload CPU time per mode and its ratio to `none`, and the events the
 * inside watch reported. The claim to check: `outside` is within noise of `none`.
 * Needs root and a built tree (npm run build). Not part of the tests.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const WORK_ROUNDS = Number(opt('--rounds-work', 40));
const FILES = Number(opt('--files', 2000));
const ROUNDS = Number(opt('--rounds', 5));
const VIGIL = opt('--vigil', `${root}bin/vigil`);
const JSON_OUT = argv.includes('--json');

const build = `${root}bench/.build/watch`;
mkdirSync(build, { recursive: true });
execFileSync('gcc', ['-O2', '-static', '-o', `${build}/filework`, `${root}bench/watch/filework.c`]);
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-watch-'));
for (let i = 0; i < FILES; i++) writeFileSync(join(dir, `src-${i}.txt`), `line ${i}\n`.repeat(64));
const WORK = [`${build}/filework`, String(WORK_ROUNDS), String(FILES), dir];

function runWork() {
  return Number(execFileSync(WORK[0], WORK.slice(1)).toString().trim());
}

async function outside() {
  const out = join(dir, 'outside.jsonl');
  const w = spawn(process.execPath, [VIGIL, 'watch', '--json', '--out', out, '--', 'sleep', '3600'], { stdio: 'ignore' });
  const done = new Promise((r) => w.once('exit', r));
  // ready when the watch has seen its own command exec
  for (let i = 0; i < 600 && !(existsSync(out) && readFileSync(out, 'utf8').includes('"process_creation"')); i++) await sleep(50);
  const ns = runWork();
  w.kill('SIGTERM');
  await done;
  const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const foreign = lines.filter((e) => typeof e.TargetFilename === 'string' && e.TargetFilename.startsWith(dir)).length;
  return { ns, foreign };
}

const modes = ['none', 'outside', 'inside'];
const times = { none: [], outside: [], inside: [] };
let insideEvents = 0;
let insideLosses = null;
let foreignEvents = 0;
for (let r = 0; r < ROUNDS; r++) {
  const order = modes.slice(r % modes.length).concat(modes.slice(0, r % modes.length));
  for (const m of order) {
    if (m === 'none') times.none.push(runWork());
    else if (m === 'outside') {
      const o = await outside();
      times.outside.push(o.ns);
      foreignEvents += o.foreign;
    } else {
      // the workload's stdout (its time) passes through vigil watch untouched
      const out = join(dir, 'inside.jsonl');
      const stdout = execFileSync(process.execPath, [VIGIL, 'watch', '--json', '--out', out, '--', ...WORK]).toString();
      times.inside.push(Number(stdout.trim()));
      const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const s = lines.at(-1);
      insideEvents = Object.values(s.events).reduce((a, b) => a + b, 0);
      insideLosses = s.losses;
    }
  }
}
rmSync(dir, { recursive: true, force: true });

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const spread = (a) => `${(Math.min(...a) / 1e6).toFixed(1)}-${(Math.max(...a) / 1e6).toFixed(1)}`;
const base = median(times.none);
const result = {
  workload: { rounds: WORK_ROUNDS, files: FILES, opens: WORK_ROUNDS * (FILES + 1) },
  modes: Object.fromEntries(modes.map((m) => [m, { median_ms: median(times[m]) / 1e6, range_ms: spread(times[m]), ratio: median(times[m]) / base }])),
  inside_events: insideEvents,
  inside_losses: insideLosses,
  outside_events_about_the_workload: foreignEvents,
  rounds: ROUNDS,
};
if (JSON_OUT) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else {
  process.stdout.write(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  process.stdout.write(`file-heavy workload (CPU time of its loop): ${WORK_ROUNDS} rounds x ${FILES} reads + 1 write (${result.workload.opens} opens), ${ROUNDS} interleaved rounds\n`);
  for (const m of modes) process.stdout.write(`  ${m.padEnd(8)} ${result.modes[m].median_ms.toFixed(1)} ms (range ${result.modes[m].range_ms})  x${result.modes[m].ratio.toFixed(3)} of none\n`);
  process.stdout.write(`  inside: ${insideEvents} events reported, losses ${JSON.stringify(insideLosses)}; outside: ${foreignEvents} events about the workload (must be 0)\n`);
}
