#!/usr/bin/env node
// Exec-storm benchmark of the exec guard, in the test VM (BPF LSM needs it):
//   node bench/exec-guard/run.mjs [--kernel 6.12] [--execs 5000] [--rules 1000] [--rounds 25]
//                                 [--kinds path,inode] [--cpu 0|none] [--clock icount|wall] [--smp 1] [--no-build]
// Builds the storm driver and a static binary on the host, boots one VM, and in
// that same boot, per rule set (--kinds, see in-vm.mjs), runs --rounds short
// storms per side, interleaved ABBA, without and with the guard attached;
// --execs fork+execs per side in total. Prints per-side medians and mins, the
// ratio of medians (the overhead) and noise estimates.
//
// --clock icount (default): qemu -icount shift=0, sleep=off: the guest's clock advances
// 1 ns per emulated instruction, so the storm's elapsed time counts the instructions
// the guest executed (kernel, BPF JIT code, the binary) and does not depend on how
// busy the host is. --clock wall: the guest clock follows the host (TCG wall time:
// host load shows up as noise). --smp 1 (default) keeps the storm on one vCPU.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runInVm, failureReport, REPO } from '../../test/vm/run.mjs';

const argv = process.argv.slice(2);
const args = Object.fromEntries(argv.reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]?.startsWith('--') ? true : all[i + 1]]] : acc), []));
const kernel = args.kernel ?? '6.12';
const build = join(REPO, 'bench/.build/exec-guard');
mkdirSync(build, { recursive: true });
if (!args['no-build']) {
  execFileSync('make', ['-s', '-C', join(REPO, 'bpf')], { stdio: 'inherit' });
  execFileSync('node', [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.json')], { stdio: 'inherit' });
}
execFileSync('gcc', ['-O2', '-o', join(build, 'storm'), join(REPO, 'bench/exec-storm/storm.c')]);
execFileSync('gcc', ['-O2', '-static', '-o', join(build, 'true-static'), join(REPO, 'bench/exec-guard/true.c')]);
const r = await runInVm({
  kernel,
  command: [
    'node', 'bench/exec-guard/in-vm.mjs', build,
    String(args.execs ?? 5000), String(args.rules ?? 1000), String(args.rounds ?? 25), String(args.kinds ?? 'path,inode'), String(args.cpu ?? '0'),
  ],
  smp: Number(args.smp ?? 1),
  qemuArgs: (args.clock ?? 'icount') === 'icount' ? ['-icount', 'shift=0,sleep=off'] : [],
  stream: true,
  timeoutMs: 3_600_000,
});
process.stdout.write(`(kernel ${r.kernelRelease}, clock ${args.clock ?? 'icount'}, smp ${args.smp ?? 1}, VM ${(r.durationMs / 1000).toFixed(0)} s, TCG: absolute times are emulated, ratios are what counts)\n`);
if (r.code !== 0) process.stderr.write(failureReport(r));
process.exit(r.code);
