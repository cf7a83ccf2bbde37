#!/usr/bin/env node
// Runs every benchmark that runs on this machine; each prints its own baseline
// and ratio. The exec-storm one needs the auditd package (apt-get install auditd). The exec-guard benchmark needs BPF LSM and runs in a VM:
// node bench/exec-guard/run.mjs (see docs/enforcement.md).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
let failed = 0;
for (const [name, cmd, args] of [
  ['ring buffer: vigil TS reader vs C libbpf consumer', 'node', [`${root}bench/ringbuf/run.mjs`]],
  ['Sigma engine: compiled vs naive vs no rules (one core)', 'taskset', ['-c', '0', 'node', `${root}bench/sigma/run.mjs`]],
  ['pipeline: recorded ring records through decode → events → Sigma → JSONL + SQLite (one core)', 'taskset', ['-c', '0', 'node', `${root}bench/pipeline/run.mjs`]],
  ['audit chain: the JSONL sink with and without hash chain and seals (one core)', 'taskset', ['-c', '0', 'node', `${root}bench/audit-chain/run.mjs`]],
  ['exec storm: no monitor vs vigil vs auditd (CPU per exec, bytes per exec)', 'node', [`${root}bench/exec-storm/run.mjs`]],
  ['vigil watch: a file-heavy program inside the watched tree, outside it, and with no vigil (CPU time)', 'node', [`${root}bench/watch/run.mjs`]],
]) {
  console.log(`\n== ${name}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
