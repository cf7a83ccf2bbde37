#!/usr/bin/env node
// @ts-check
/**
 * Runs the privileged test suite (test/**\/*.vm.test.ts, vitest) inside a VM on every
 * kernel, one boot per kernel, up to --jobs VMs at a time. Exit status 0 only if every
 * kernel passed.
 *
 *   node test/vm/suite.mjs [--kernels 5.10,6.1,6.12,lts] [--jobs N] [--no-build] [--timeout SEC]
 *                          [-- VITEST_ARGS...]      e.g. -- test/enforcement
 *
 * --jobs (default $VIGIL_VM_JOBS, else 2 on a host with 2 or more CPUs): the tests in
 * a guest are mostly one busy thread, so two emulated VMs side by side use a 2-core host
 * about twice as well as one. With one job the output streams; with more, each kernel's
 * output is printed whole when it ends (a line says when each starts and ends).
 *
 * Before booting anything it builds what the guests use, on the host (fast, native):
 * the BPF objects (make -C bpf), dist/ (tsc, for tests that run the vigil CLI) and the
 * harness's own fixtures. See docs/vm-tests.md.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, DEFAULT_KERNELS, REPO, ensureInitramfs, ensureKernel, failureReport, runInVm } from './run.mjs';

/** Build the harness fixtures (BPF objects used only by tests) into .cache/fixtures. */
export function buildFixtures() {
  const out = join(CACHE, 'fixtures');
  mkdirSync(out, { recursive: true });
  execFileSync('clang-19', [
    '-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-mcpu=v3', `-I${join(REPO, 'bpf/include')}`,
    '-c', join(REPO, 'test/vm/fixtures/smoke_lsm.bpf.c'), '-o', join(out, 'smoke_lsm.bpf.o'),
  ], { stdio: 'inherit' });
}

/** @param {string} what @param {string} cmd @param {string[]} args */
function step(what, cmd, args) {
  const t = Date.now();
  process.stderr.write(`vm-suite: ${what} ...\n`);
  execFileSync(cmd, args, { cwd: REPO, stdio: 'inherit' });
  process.stderr.write(`vm-suite: ${what} done in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
}

async function main() {
  const argv = process.argv.slice(2);
  let kernels = DEFAULT_KERNELS;
  let build = true;
  let timeoutMs = 2_400_000; // one kernel's whole suite under emulation, two VMs sharing 2 cores: about 20 min here
  let jobs = Number(process.env.VIGIL_VM_JOBS ?? (cpus().length >= 2 ? 2 : 1));
  /** @type {string[]} */
  let vitestArgs = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { vitestArgs = argv.slice(i + 1); break; }
    if (a === '--kernels' || a === '-k') kernels = String(argv[++i]).split(',').filter(Boolean);
    else if (a === '--no-build') build = false;
    else if (a === '--jobs' || a === '-j') jobs = Number(argv[++i]);
    else if (a === '--timeout') timeoutMs = Number(argv[++i]) * 1000;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node test/vm/suite.mjs [--kernels 5.10,6.1,6.12,lts] [--jobs N] [--no-build] [--timeout SEC] [-- VITEST_ARGS...]\n');
      return 0;
    } else { vitestArgs = argv.slice(i); break; }
  }
  if (build) {
    step('make -C bpf', 'make', ['-s', '-C', 'bpf']);
    step('tsc (dist/ for CLI tests)', 'node', ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']);
    step('harness fixtures', process.execPath, ['-e', `import(${JSON.stringify(new URL('./suite.mjs', import.meta.url).href)}).then(m => m.buildFixtures())`]);
  }
  // what the tests load, from RAM instead of 9p (test/vm/run.mjs, ramArchive)
  const RAM = ['node_modules', 'dist', 'src', 'test'];
  const cmd = ['node', 'node_modules/vitest/vitest.mjs', 'run', '--config', 'test/vm/vitest.vm.config.ts', ...vitestArgs];
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs: a positive integer, not ${jobs}`);
  jobs = Math.min(jobs, kernels.length);
  // fetch and prepare every kernel first (kernels.sh and the initramfs cache are not made for parallel runs)
  for (const kernel of kernels) ensureInitramfs(ensureKernel(kernel).dir);
  /** @type {{kernel: string, release: string, code: number, secs: number}[]} */
  const results = [];
  const t0 = Date.now();
  const queue = [...kernels];
  const worker = async () => {
    for (let kernel = queue.shift(); kernel; kernel = queue.shift()) {
      if (jobs === 1) process.stdout.write(`\n===== vm-suite: kernel ${kernel} =====\n`);
      else process.stdout.write(`vm-suite: kernel ${kernel} started (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
      const r = await runInVm({ kernel, command: cmd, stream: jobs === 1, timeoutMs, ram: RAM });
      if (jobs > 1) process.stdout.write(`\n===== vm-suite: kernel ${kernel} (ended at ${((Date.now() - t0) / 1000).toFixed(0)} s) =====\n${r.output}`);
      results.push({ kernel, release: r.kernelRelease, code: r.code, secs: r.durationMs / 1000 });
      if (r.code !== 0) process.stdout.write(failureReport(r, 40));
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  results.sort((a, b) => kernels.indexOf(a.kernel) - kernels.indexOf(b.kernel));
  process.stdout.write('\n===== vm-suite summary =====\n');
  for (const r of results) {
    const status = r.code === 0 ? 'PASS' : r.code === 124 ? 'TIMEOUT' : r.code === 125 ? 'VM FAILURE' : `FAIL (exit ${r.code})`;
    process.stdout.write(`  ${r.kernel.padEnd(6)} ${r.release.padEnd(24)} ${status.padEnd(16)} ${r.secs.toFixed(1)} s\n`);
  }
  process.stdout.write(`  total ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return results.every((r) => r.code === 0) ? 0 : 1;
}

if (process.argv[1] && new URL(import.meta.url).pathname === (await import('node:path')).resolve(process.argv[1])) {
  main().then((c) => process.exit(c), (e) => { process.stderr.write(`vm-suite: ${e?.stack ?? e}\n`); process.exit(125); });
}
