// Runs inside the VM (bench/exec-guard/run.mjs boots it): exec storm without the
// guard, then with the guard armed and RULES deny rules, alternating, same boot.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExecGuard, RulesStore } from '../../dist/enforcement/index.js';

const [build, nStr, rulesStr, roundsStr] = process.argv.slice(2);
const N = Number(nStr), RULES = Number(rulesStr), ROUNDS = Number(roundsStr);
const T = '/tmp/vigil-bench';
const PIN = '/sys/fs/bpf/vigil-bench/exec_guard';
mkdirSync(T, { recursive: true });
const bin = join(T, 'true-static');
copyFileSync(join(build, 'true-static'), bin);
chmodSync(bin, 0o755);
const storm = (n) => Number(execFileSync(join(build, 'storm'), [String(n), bin], { encoding: 'utf8' }).trim());

// 1,000 rules on files that exist (inode + path entries): half path rules, half by content (stored
// with their file: inode entries; no sha256 entries, so no IMA hashing in the storm)
const store = RulesStore.open(join(T, 'rules.db'));
for (let i = 0; i < RULES; i++) {
  const f = join(T, `denied-${i}`);
  writeFileSync(f, `#!/bin/sh\n# ${i}\n`);
  chmodSync(f, 0o755);
  store.add({ kind: 'path', path: f, resolvedPath: f, sha256: null, mode: 'enforce', comment: null });
}
const rules = store.list();
store.close();

storm(200); // warm up (page cache, dentries)
const off = [], on = [];
for (let r = 0; r < ROUNDS; r++) {
  ExecGuard.disarm(PIN);
  off.push(storm(N));
  const { guard } = ExecGuard.arm({ pinDir: PIN });
  const rec = guard.reconcile(rules, 'enforce');
  guard.close();
  if (r === 0) process.stdout.write(`guard: ${rec.inode} inode + ${rec.path} path entries, hash program ${guard.hashProgram}\n`);
  on.push(storm(N));
}
// sanity: a denied file is denied
let denied = false;
try { execFileSync(join(T, 'denied-0')); } catch (e) { denied = e.code === 'EPERM'; }
ExecGuard.disarm(PIN);
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const perExec = (ns) => (ns / N / 1000).toFixed(1);
process.stdout.write(`rounds ${ROUNDS} x ${N} execs; per exec (median): without ${perExec(med(off))} us, with ${perExec(med(on))} us\n`);
process.stdout.write(`without: ${off.map((x) => (x / 1e6).toFixed(0)).join(' ')} ms\nwith:    ${on.map((x) => (x / 1e6).toFixed(0)).join(' ')} ms\n`);
const ratio = med(on) / med(off);
process.stdout.write(`RESULT overhead ${((ratio - 1) * 100).toFixed(2)} % (ratio ${ratio.toFixed(4)}), denied file refused: ${denied}\n`);
