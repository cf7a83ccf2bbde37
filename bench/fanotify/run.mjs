#!/usr/bin/env node
/**
 * Exec storm with no agent vs the fanotify exec guard with 1,000 deny rules, in
 * one run (issue 14). Not in CI. Needs root, gcc, and the built dist/ (npm run build).
 *
 *   node bench/fanotify/run.mjs [--execs 300] [--rounds 10] [--rules 1000] [--no-loader]
 *
 * The storm (bench/exec-storm/storm.c: fork + execve + wait, sequential) runs a
 * static no-op and a dynamic program (a copy of /usr/bin/true: the loader opens
 * libc, each open a FAN_OPEN_PERM answer with the loader guard on) from a tmpfs
 * the guard marks (enforcement.fanotify_mounts: the host's other work is not
 * touched). Rounds alternate A B B A … (A: no listener at all; B: the guard
 * running, in this process's worker thread, as in the agent), one uncounted
 * warm-up round per side. The rules deny 990 other files by path (and inode)
 * and 10 contents by sha256, so every exec pays the full lookup: the inode
 * table, the path set and the sha256 cache.
 *
 * Printed per workload: median per-exec time for each side, the ratio of
 * medians (the overhead), the ratio of minimums, and the guard's own counts.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { FanotifyGuardService } = await import(join(ROOT, 'dist/enforcement/fanotify.js'));
const { RulesStore } = await import(join(ROOT, 'dist/enforcement/rules-store.js'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const EXECS = opt('execs', 300);
const ROUNDS = opt('rounds', 10);
const RULES = opt('rules', 1000);
const LOADER = !args.includes('--no-loader');

const dir = mkdtempSync(join(tmpdir(), 'vigil-fanbench-'));
execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'tmpfs', dir]);
try {
  const storm = join(dir, 'storm');
  const noop = join(dir, 'noop');
  const dyn = join(dir, 'true');
  execFileSync('gcc', ['-O2', '-static', '-o', storm, join(ROOT, 'bench/exec-storm/storm.c')]);
  execFileSync('gcc', ['-O2', '-static', '-o', noop, join(ROOT, 'bench/exec-storm/noop.c')]);
  copyFileSync('/usr/bin/true', dyn);
  chmodSync(dyn, 0o755);

  // 1,000 rules: 990 path rules on real files (inode + path entries), 10 sha256 rules
  const db = join(dir, 'rules.db');
  const store = RulesStore.open(db);
  const nHash = Math.min(10, RULES);
  for (let i = 0; i < RULES - nHash; i++) {
    const p = join(dir, `denied-${i}`);
    writeFileSync(p, `#!/bin/sh\n# ${i}\n`, { mode: 0o755 });
    store.add({ kind: 'path', path: p, resolvedPath: p, sha256: null, mode: 'enforce', comment: null });
  }
  for (let i = 0; i < nHash; i++) {
    store.add({ kind: 'sha256', path: null, resolvedPath: null, sha256: createHash('sha256').update(randomBytes(32)).digest('hex'), mode: 'enforce', comment: null });
  }
  store.close();

  const run = (bin) => Number(execFileSync(storm, [String(EXECS), bin], { encoding: 'utf8' }).trim()) / EXECS / 1000; // µs per exec
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };

  for (const [name, bin] of [['static no-op', noop], ['dynamic (copy of /usr/bin/true)', dyn]]) {
    const A = [];
    const B = [];
    let last;
    const side = async (b, keep) => {
      if (!b) {
        const t = run(bin);
        if (keep) A.push(t);
        return;
      }
      const svc = new FanotifyGuardService({ db, mounts: [dir], deadlineMs: 250, failMode: 'open', loaderGuard: LOADER, revalidateMs: 0, onEvent: () => {} });
      await svc.start();
      try {
        const t = run(bin);
        if (keep) B.push(t);
      } finally {
        last = svc.stats();
        await svc.stop();
      }
    };
    await side(false, false);
    await side(true, false);
    const order = [];
    for (let r = 0; r < ROUNDS; r++) order.push(...(r % 2 ? [true, false] : [false, true]));
    for (const b of order) await side(b, true);
    const ma = median(A);
    const mb = median(B);
    console.log(`${name}: ${ROUNDS} rounds x ${EXECS} execs per side, ${RULES} rules, loader guard ${LOADER ? 'on' : 'off'}`);
    console.log(`  no agent      median ${ma.toFixed(1)} us/exec  min ${Math.min(...A).toFixed(1)}`);
    console.log(`  fanotify      median ${mb.toFixed(1)} us/exec  min ${Math.min(...B).toFixed(1)}`);
    console.log(`  overhead      ratio of medians ${(mb / ma).toFixed(3)} (${((mb / ma - 1) * 100).toFixed(1)} %), ratio of mins ${(Math.min(...B) / Math.min(...A)).toFixed(3)}, +${(mb - ma).toFixed(1)} us/exec`);
    console.log(`  guard (last round): execs ${last.execs} opens ${last.opens} denied ${last.denied} deadline misses ${last.deadlineMisses} hashes ${last.hashes} max answer ${(last.maxAnswerUs / 1000).toFixed(2)} ms, mean time in the worker from read to answer ${(last.sumAnswerUs / (last.execs + last.opens)).toFixed(1)} us/event, of it on the CPU ${(last.cpuUs / (last.execs + last.opens)).toFixed(1)} us/event`);
  }
} finally {
  execFileSync('umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
}
