#!/usr/bin/env node
/**
 * Records real events once, for bench/fleet/run.mjs to replay as 100 simulated agents.
 *
 *   node bench/fleet/record.mjs [--out FILE] [--events N]
 *
 * Runs `vigil run` (exec, file and network sensors, no store, no enforcement) with
 * its JSONL audit log while a workload runs on this machine: shell pipelines (execs
 * with their lineage), file writes, renames, chmod and deletes under a temp dir, and
 * connections to a loopback HTTP server (curl). Stops after N events (default
 * 20,000) and keeps them as the agent wrote them (one JSON object per line).
 * Needs root and a built tree (npm run build).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const out = opt('--out', `${root}bench/.build/fleet/events.jsonl`);
const want = Number(opt('--events', 20000));
mkdirSync(dirname(out), { recursive: true });

const work = mkdtempSync(join(tmpdir(), 'vigil-fleet-rec-'));
const log = join(work, 'events.jsonl');
const http = createServer((_q, r) => r.end('ok\n'));
await new Promise((r) => http.listen(0, '127.0.0.1', r));
const port = http.address().port;

const agent = spawn(process.execPath, [`${root}bin/vigil`, 'run', '--no-db', '--no-enforce', '--events-out', log, '--stats-interval', '0', '--sensors', 'exec,file,network'], { stdio: ['ignore', 'ignore', 'pipe'] });
let err = '';
agent.stderr.on('data', (d) => (err += d));
const t0 = Date.now();
while (!err.includes('vigil running')) {
  if (agent.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`vigil run did not start:\n${err}`);
  await new Promise((r) => setTimeout(r, 100));
}

const count = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').length - 1 : 0);
const script = `
d=${work}/w
mkdir -p $d
for i in $(seq 40); do
  ls -la /usr/bin | grep -c "^-" > /dev/null
  ps aux --sort=-%cpu | head -5 > /dev/null
  cat /etc/os-release | sed -n 2p | wc -c > /dev/null
  echo "build $i" > $d/out-$i.log; mv $d/out-$i.log $d/app-$i.log; chmod +x $d/app-$i.log
  curl -s -o /dev/null http://127.0.0.1:${port}/health?i=$i
  sh -c "find /etc -maxdepth 1 -name '*.conf' | sort | head -3" > /dev/null
  rm -f $d/app-$i.log
done`;
while (count() < want) {
  // not spawnSync: the loopback HTTP server curl talks to lives in this process
  await new Promise((r) => spawn('/bin/sh', ['-c', script], { stdio: 'ignore' }).once('exit', r));
  if (Date.now() - t0 > 300_000) break;
}
agent.kill('SIGTERM');
await new Promise((r) => agent.once('exit', r));
http.close();
const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).slice(0, want);
writeFileSync(out, lines.join('\n') + '\n');
rmSync(work, { recursive: true, force: true });
const cats = {};
let bytes = 0;
for (const l of lines) {
  const c = JSON.parse(l).category;
  cats[c] = (cats[c] ?? 0) + 1;
  bytes += l.length + 1;
}
console.log(`recorded ${lines.length} events (${Math.round(bytes / lines.length)} bytes each on average) to ${out}: ${JSON.stringify(cats)}`);
