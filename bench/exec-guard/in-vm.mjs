// Runs inside the VM (bench/exec-guard/run.mjs boots it). One boot, one loaded guard:
// for each rule set ("kind"), exec storms without and with the guard attached, in
// many short interleaved rounds (ABBA order), then medians, mins, the ratio of
// medians and noise estimates.
//
//   node bench/exec-guard/in-vm.mjs BUILD_DIR EXECS_PER_SIDE RULES ROUNDS_PER_SIDE KINDS CPU
//
// KINDS (comma separated):
//   path       RULES path rules as `vigil deny add PATH` makes them (deny_inode + deny_path +
//              deny_name entries); the storm's file name is not a rule's basename
//   inode      RULES deny_inode entries only (no path rules: no path work at all)
//   none       the guard attached with no rules
//   path-walk  as path, plus one rule on another file named like the storm's binary:
//              every exec passes the name prefilter and walks its path (worst case)
//   provenance no rules, the provenance policy on (monitor), no marks: the guard's exec and
//              mmap programs each look the file up in vigil_marks
//   origin     as provenance, plus the sleepable origin programs (Linux 6.15+: they read an
//              unmarked file's security.bpf.vigil.mark once per inode, then hit their cache);
//              compare its overhead with provenance's for their cost
// CPU: pin the storm (fork parent and children) to this guest CPU with taskset, or "none".
//
// "Without" = the guard's programs detached (no BPF LSM program on bprm_check_security);
// "with" = both programs attached (inode/path and the sleepable sha256 one), maps as reconciled;
// provenance and origin attach the mmap_file programs too (the kernel maps the binary's segments).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExecGuard, RulesStore, MAPS, PROGRAMS, LINK_PINS, defaultObjectPath, inodeKey, kernelDev, ruleValue } from '../../dist/enforcement/index.js';
import { BpfMap, BpfObject } from '../../dist/kernel/index.js';

const [build, execsStr, rulesStr, roundsStr, kindsStr = 'path,inode', cpu = '0'] = process.argv.slice(2);
const EXECS = Number(execsStr), RULES = Number(rulesStr), ROUNDS = Number(roundsStr);
const PER_ROUND = Math.max(1, Math.round(EXECS / ROUNDS));
const KINDS = kindsStr.split(',').filter(Boolean);
const T = '/tmp/vigil-bench';
const PIN = '/sys/fs/bpf/vigil-bench/exec_guard';
const say = (s) => process.stdout.write(`${s}\n`);

mkdirSync(join(T, 'other'), { recursive: true });
const bin = join(T, 'true-static');
copyFileSync(join(build, 'true-static'), bin);
chmodSync(bin, 0o755);
const stormCmd = cpu === 'none' ? [join(build, 'storm')] : ['taskset', '-c', cpu, join(build, 'storm')];
const storm = (n) => Number(execFileSync(stormCmd[0], [...stormCmd.slice(1), String(n), bin], { encoding: 'utf8' }).trim());

// RULES files that exist; path rules on them as the CLI stores them
const store = RulesStore.open(join(T, 'rules.db'));
const files = [];
for (let i = 0; i < RULES; i++) {
  const f = join(T, `denied-${i}`);
  writeFileSync(f, `#!/bin/sh\n# ${i}\n`);
  chmodSync(f, 0o755);
  files.push(f);
  store.add({ kind: 'path', path: f, resolvedPath: f, sha256: null, mode: 'enforce', comment: null });
}
const pathRules = store.list();
store.close();
// a file named like the storm's binary, elsewhere: its rule puts "true-static" in deny_name
const twin = join(T, 'other', 'true-static');
copyFileSync(bin, twin);
const twinRule = { id: RULES + 1, kind: 'path', path: twin, resolvedPath: twin, sha256: null, mode: 'enforce', comment: null, createdMs: 0 };

/** the object has the origin programs (the compat build has none) */
function obj0HasOrigin() {
  const o = BpfObject.open(defaultObjectPath(), {});
  try {
    return o.programs().some((p) => p.name === PROGRAMS.origin);
  } finally {
    o.close();
  }
}

// Load once: arm (pins maps and links), then drop the pinned links (detached) and
// attach/detach the same programs from our own load of the object, reusing the pinned maps.
ExecGuard.disarm(PIN);
const { guard } = ExecGuard.arm({ pinDir: PIN });
for (const l of Object.values(LINK_PINS)) {
  try { unlinkSync(join(PIN, l)); } catch { /* the hash program may be absent */ }
}
const skip = [...(guard.hashProgram ? [] : [PROGRAMS.hash, PROGRAMS.mmapHash]), ...(guard.originProgram || !obj0HasOrigin() ? [] : [PROGRAMS.origin, PROGRAMS.mmapOrigin])];
const obj = BpfObject.open(defaultObjectPath(), { maxEntries: { events: 256 * 1024 }, skipPrograms: skip });
const pinned = MAPS.map((m) => BpfMap.openPinned(join(PIN, m)));
MAPS.forEach((m, i) => obj.reuseMap(m, pinned[i].fd));
obj.load();
const base = guard.hashProgram ? [PROGRAMS.inode, PROGRAMS.hash] : [PROGRAMS.inode];
let progs = base;
let links = [];
const attach = () => { links = progs.map((p) => obj.program(p).attachLsm()); };
const detach = () => { for (const l of links.splice(0)) l.destroy(); };
say(`guard: programs ${progs.join(' + ')}; storm ${cpu === 'none' ? 'not pinned' : `pinned to CPU ${cpu}`}; ${ROUNDS} rounds per side x ${PER_ROUND} execs, ABBA order`);

const refused = (f) => { try { execFileSync(f); return false; } catch (e) { return e.code === 'EPERM'; } };

function setRules(kind) {
  progs = base;
  guard.setProvenancePolicy('off');
  if (kind === 'provenance' || kind === 'origin') {
    guard.reconcile([], 'enforce');
    guard.setProvenancePolicy('monitor');
    progs = [...base, PROGRAMS.mmap];
    if (kind === 'origin') {
      if (!guard.originProgram) throw new Error('origin: the guard has no origin programs on this kernel (Linux 6.15+)');
      progs = [...progs, PROGRAMS.origin, PROGRAMS.mmapOrigin];
    }
    return `no rules, provenance monitor, no marks; programs ${progs.join(' + ')}`;
  }
  if (kind === 'path' || kind === 'path-walk') {
    const r = guard.reconcile(kind === 'path' ? pathRules : [...pathRules, twinRule], 'enforce');
    return `${r.inode} inode + ${r.path} path entries (${[...guard.map('deny_name').keys()].length} names)`;
  }
  guard.reconcile([], 'enforce');
  if (kind === 'inode') {
    const m = guard.map('deny_inode');
    files.forEach((f, i) => { const st = statSync(f, { bigint: true }); m.update(inodeKey(kernelDev(st.dev), st.ino), ruleValue(i + 1, 'enforce')); });
    return `${files.length} inode entries, no path rules`;
  }
  return 'no rules';
}

// statistics
const sorted = (a) => [...a].sort((x, y) => x - y);
const q = (a, p) => { const s = sorted(a); const i = (s.length - 1) * p; const lo = Math.floor(i); return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo); };
const med = (a) => q(a, 0.5);
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const resample = (a) => a.map(() => a[Math.floor(rnd() * a.length)]);
const us = (ns) => (ns / PER_ROUND / 1000).toFixed(1);
const pct = (r) => `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(2)} %`;

const results = [];
storm(200); // warm up: page cache, dentries
for (const kind of KINDS) {
  say(`\n== ${kind}: ${setRules(kind)} ==`);
  attach();
  const denied = kind === 'path' || kind === 'path-walk' || kind === 'inode' ? refused(files[0]) : null;
  storm(PER_ROUND); // warm-up round each side, not counted
  detach();
  storm(PER_ROUND);
  const off = [], on = [];
  for (let r = 0; r < ROUNDS; r++) {
    // ABBA: off,on,on,off,off,on,...
    for (const side of r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      if (side === 'on') attach();
      const t = storm(PER_ROUND);
      if (side === 'on') detach();
      (side === 'on' ? on : off).push(t);
    }
  }
  const ratio = med(on) / med(off);
  const minRatio = Math.min(...on) / Math.min(...off);
  const paired = off.map((x, i) => on[i] / x);
  const boots = [];
  for (let i = 0; i < 2000; i++) boots.push(med(resample(on)) / med(resample(off)));
  const iqr = (a) => (q(a, 0.75) - q(a, 0.25)) / med(a);
  const evenOff = off.filter((_, i) => i % 2 === 0), oddOff = off.filter((_, i) => i % 2 === 1);
  const aa = med(evenOff) / med(oddOff);
  say(`per exec (us, emulated)   median   min     p25..p75      rounds (ms)`);
  for (const [name, a] of [['without guard', off], ['with guard', on]]) {
    say(`${name.padEnd(25)} ${us(med(a)).padStart(6)}  ${us(Math.min(...a)).padStart(6)}  ${us(q(a, 0.25))}..${us(q(a, 0.75))}   ${a.map((x) => (x / 1e6).toFixed(0)).join(' ')}`);
  }
  say(`noise: same-side IQR/median without ${(iqr(off) * 100).toFixed(1)} %, with ${(iqr(on) * 100).toFixed(1)} %; A/A (without, even vs odd rounds) ${pct(aa)}; paired ratios p25..p75 ${pct(q(paired, 0.25))}..${pct(q(paired, 0.75))}`);
  say(`RESULT ${kind}: overhead ${pct(ratio)} (ratio of medians ${ratio.toFixed(4)}, bootstrap 95 % CI ${q(boots, 0.025).toFixed(4)}..${q(boots, 0.975).toFixed(4)}; ratio of mins ${minRatio.toFixed(4)}; median paired ratio ${med(paired).toFixed(4)})${denied === null ? '' : `, denied file refused: ${denied}`}`);
  results.push({ kind, ratio, denied });
}
detach();
obj.close();
for (const m of pinned) m.close();
guard.close();
ExecGuard.disarm(PIN);
say(`\nSUMMARY ${results.map((r) => `${r.kind} ${pct(r.ratio)}`).join(', ')} (${EXECS} execs per side, ${ROUNDS} rounds per side)`);
process.exit(results.every((r) => r.denied !== false) ? 0 : 1);
