#!/usr/bin/env node
// Exec-storm benchmark of the exec guard, in the test VM (BPF LSM needs it):
//   node bench/exec-guard/run.mjs [--kernel 6.12] [--execs 5000] [--rules 1000] [--rounds 3]
// Builds the storm driver and a static binary on the host, boots one VM, and in
// that same boot alternates storms without and with the guard (RULES deny rules).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runInVm, failureReport, REPO } from '../../test/vm/run.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const kernel = args.kernel ?? '6.12';
const build = join(REPO, 'bench/.build/exec-guard');
mkdirSync(build, { recursive: true });
execFileSync('make', ['-s', '-C', join(REPO, 'bpf')], { stdio: 'inherit' });
execFileSync('node', [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.json')], { stdio: 'inherit' });
execFileSync('gcc', ['-O2', '-o', join(build, 'storm'), join(REPO, 'bench/exec-guard/storm.c')]);
execFileSync('gcc', ['-O2', '-static', '-o', join(build, 'true-static'), join(REPO, 'bench/exec-guard/true.c')]);
const r = await runInVm({
  kernel,
  command: ['node', 'bench/exec-guard/in-vm.mjs', build, args.execs ?? '5000', args.rules ?? '1000', args.rounds ?? '3'],
  stream: true,
  timeoutMs: 1_800_000,
});
process.stdout.write(`(kernel ${r.kernelRelease}, VM ${(r.durationMs / 1000).toFixed(0)} s, TCG: absolute times are emulated)\n`);
if (r.code !== 0) process.stderr.write(failureReport(r));
process.exit(r.code);
