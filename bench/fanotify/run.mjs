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
 * touched). Three sides: no listener at all; the guard running in this
 * process's worker thread as in the agent, with its verdict cache in the kernel
 * off (every exec and open is answered by the worker); and the guard as
 * shipped (an allowed file gets an inode ignore mark: its next execs raise no
 * event). Each round runs every side once in a rotating, alternately reversed
 * order, after one uncounted warm-up per side. The rules deny 990 other files by path (and inode)
 * and 10 contents by sha256, so every exec pays the full lookup: the inode
 * table, the path set and the sha256 cache.
 *
 * Printed per workload: median per-exec time for each side, the ratio of its
 * median to the no-agent median (the overhead), the ratio of minimums, and the
 * guard's own counts.
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

  const SIDES = [
    { name: 'no agent', guard: false },
    { name: 'fanotify, no cache', guard: true, ignoreCache: false },
    { name: 'fanotify', guard: true, ignoreCache: true },
  ];
  for (const [name, bin] of [['static no-op', noop], ['dynamic (copy of /usr/bin/true)', dyn]]) {
    const times = SIDES.map(() => []);
    const last = [];
    const side = async (i, keep) => {
      const s = SIDES[i];
      if (!s.guard) {
        const t = run(bin);
        if (keep) times[i].push(t);
        return;
      }
      const svc = new FanotifyGuardService({ db, mounts: [dir], deadlineMs: 250, failMode: 'open', loaderGuard: LOADER, ignoreCache: s.ignoreCache, revalidateMs: 0, onEvent: () => {} });
      await svc.start();
      try {
        const t = run(bin);
        if (keep) times[i].push(t);
      } finally {
        last[i] = svc.stats();
        await svc.stop();
      }
    };
    for (let i = 0; i < SIDES.length; i++) await side(i, false);
    // each round runs every side once, in an order that rotates and reverses (no side always first or last)
    for (let r = 0; r < ROUNDS; r++) {
      const order = SIDES.map((_, i) => (i + r) % SIDES.length);
      if (r % 2) order.reverse();
      for (const i of order) await side(i, true);
    }
    const base = median(times[0]);
    const baseMin = Math.min(...times[0]);
    console.log(`${name}: ${ROUNDS} rounds x ${EXECS} execs per side, ${RULES} rules, loader guard ${LOADER ? 'on' : 'off'}`);
    SIDES.forEach((s, i) => {
      const m = median(times[i]);
      const mn = Math.min(...times[i]);
      const ratio = i === 0 ? '' : `  ratio of medians ${(m / base).toFixed(3)} (${((m / base - 1) * 100).toFixed(1)} %), of mins ${(mn / baseMin).toFixed(3)}, ${m - base >= 0 ? '+' : ''}${(m - base).toFixed(1)} us/exec`;
      console.log(`  ${s.name.padEnd(20)} median ${m.toFixed(1)} us/exec  min ${mn.toFixed(1)}${ratio}`);
    });
    SIDES.forEach((s, i) => {
      const l = last[i];
      if (!l) return;
      const ev = l.execs + l.opens;
      console.log(`  ${s.name} (last round): events ${ev} (execs ${l.execs} opens ${l.opens}) denied ${l.denied} ignore marks ${l.ignoreMarks} deadline misses ${l.deadlineMisses} hashes ${l.hashes} errors ${l.errors} max answer ${(l.maxAnswerUs / 1000).toFixed(2)} ms` +
        (ev ? `, mean read to answer ${(l.sumAnswerUs / ev).toFixed(1)} us/event, on the CPU ${(l.cpuUs / ev).toFixed(1)} us/event` : ''));
    });
  }
} finally {
  execFileSync('umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
}
