/**
 * `vigil deny` as a user runs it, as root, on this host (issue 9, item 7). On a
 * host without BPF LSM (this project's CI: bpf is in the LSM list but BPF
 * trampolines are refused with EPERM) the guard cannot load: one line with the
 * reason (libbpf's log with --verbose), the rule stored once however often it is
 * added, and every deny command says the rules are stored only and why. On a
 * host where the guard loads, the same commands say the rules are enforced.
 * Runs the built CLI (dist/: npm run build, as .ci/run does first).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecGuard } from '../../src/enforcement/index.js';

const VIGIL = join(__dirname, '../../bin/vigil');
const PIN = `/sys/fs/bpf/vigil-cli-test-${process.pid}/exec_guard`;
let dir: string;
let db: string;

function vigil(...args: string[]) {
  const r = spawnSync(process.execPath, [VIGIL, 'deny', ...args, '--db', db, '--pin-dir', PIN], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, VIGIL_CONFIG: '' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

let loads: boolean;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-deny-kernel-'));
  db = join(dir, 'vigil.db');
  spawnSync('mkdir', ['-p', '/sys/fs/bpf']);
  const first = vigil('apply');
  loads = first.code === 0;
}, 180_000);

afterAll(() => {
  ExecGuard.disarm(PIN);
});

describe('vigil deny on this host', () => {
  it('deny add: one line with the reason, the rule stored; a retry keeps one rule', () => {
    const a = vigil('add', '/usr/bin/true', '--comment', 'test');
    expect(a.out).toMatch(/^added rule (\d+)\n/);
    if (loads) {
      expect(a.code).toBe(0);
      expect(a.err).toMatch(/enforcement: rules are enforced \(exec guard armed/);
    } else {
      expect(a.code).toBe(3);
      const lines = a.err.trimEnd().split('\n');
      expect(lines, a.err).toHaveLength(1);
      expect(lines[0]).toMatch(/^vigil deny add: rule \d+ stored, not enforced: the exec guard cannot load here: bpf_object__load\(exec_guard.*\): E[A-Z]+: .*\(--verbose shows the libbpf log\) \[unavailable\.bpf_lsm\]$/);
      expect(a.err).not.toContain('libbpf:');
      const v = vigil('add', '/usr/bin/true', '--verbose');
      expect(v.code).toBe(3);
      expect(v.out).toMatch(/^rule \d+ is stored already: kept one\n/);
      expect(v.err).toMatch(/\n--- libbpf log ---\n(.*\n)*libbpf: /);
    }
    const again = vigil('add', '/usr/bin/true');
    expect(again.out).toMatch(/is stored already: kept one/);
    const list = JSON.parse(vigil('list', '--json').out);
    expect(list.rules.map((r: { path: string }) => r.path)).toEqual(['/usr/bin/true']);
  });

  it('deny list, mode, rm and apply each say whether the rules are enforced here, and why not', () => {
    const list = vigil('list');
    expect(list.code).toBe(0);
    const mode = vigil('mode');
    const apply = vigil('apply');
    if (loads) {
      expect(list.out).toMatch(/enforcement: rules are enforced/);
      expect(mode.err).toMatch(/enforcement: rules are enforced/);
      expect(apply.code).toBe(0);
    } else {
      const why = /enforcement: rules are stored only, the exec guard cannot load on this host: bpf_object__load\(exec_guard[^)]*\): E[A-Z]+/;
      expect(list.out).toMatch(why);
      expect(list.out).not.toMatch(/`vigil deny apply` or `vigil run` arms it/);
      expect(mode.err).toMatch(why);
      expect(apply.code).toBe(3);
      expect(apply.err.trimEnd().split('\n')).toHaveLength(1);
      expect(apply.err).toMatch(/^vigil deny apply: the exec guard cannot load here: /);
      const ev = vigil('events', '-n', '1');
      expect(ev.code).toBe(3);
      expect(ev.err).toMatch(/no decisions to follow: rules are stored only, the exec guard cannot load on this host/);
    }
    const id = JSON.parse(vigil('list', '--json').out).rules[0].id;
    const rm = vigil('rm', String(id));
    expect(rm.code).toBe(0);
    expect(rm.err).toMatch(loads ? /enforcement: rules are enforced/ : /enforcement: rules are stored only, the exec guard cannot load on this host/);
  });
});
