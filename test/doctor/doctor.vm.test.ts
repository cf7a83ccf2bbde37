/**
 * `vigil doctor` inside the test VM (node test/vm/suite.mjs), on each kernel of the
 * suite: its hints must be true there. Which BPF build it picks, what the exec guard
 * does with sha256 rules, and, with the build forced to the wrong one, that it
 * blames vigil's own object (with the verifier's reason), not BPF LSM.
 */
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { kernelAtLeast } from '../vm/kernel.js';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const inVm = process.env.VIGIL_IN_VM === '1';
const REPO = resolve(new URL('.', import.meta.url).pathname, '../..');
const atLeast = kernelAtLeast;
const hasBpfLoop = atLeast(5, 17);

interface Check { id: string; status: string; detail: string; hint?: string }

function doctor(env: Record<string, string> = {}): { checks: Check[]; enforcement: { level: string; reason: string }; check(id: string): Check } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/vigil'), 'doctor', '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
  const rep = JSON.parse(r.stdout);
  return {
    ...rep,
    check: (id: string) => {
      const c = rep.checks.find((x: Check) => x.id === id);
      if (!c) throw new Error(`no check ${id} in ${r.stdout}`);
      return c;
    },
  };
}

// one doctor run answers the first two tests (each run loads every object: ~30 s under qemu TCG)
let plain: ReturnType<typeof doctor> | null = null;
const plainDoctor = () => (plain ??= doctor());

describe.skipIf(!inVm)(`vigil doctor on ${release()}`, () => {
  it('picks the BPF build by probing bpf_loop, and every sensor loads in it', () => {
    const d = plainDoctor();
    expect(d.check('bpf_build').detail).toMatch(hasBpfLoop ? /^default .*bpf_loop present/ : /^compat .*no bpf_loop \(Linux 5\.17\+\)/);
    for (const c of d.checks.filter((x) => x.id.startsWith('sensor_'))) {
      expect(c.status, `${c.id}: ${c.detail}`).toBe('ok');
      expect(c.detail).toMatch(hasBpfLoop ? /^\w+\.bpf\.o: / : /^\w+\.compat\.bpf\.o: .*compat build/);
    }
    expect(d.check('bpf_lsm').status).toBe('ok');
    expect(d.check('exec_guard').status).toBe('ok');
    expect(d.check('exec_guard').detail).toMatch(hasBpfLoop ? /^exec_guard\.bpf\.o loads/ : /^exec_guard\.compat\.bpf\.o loads/);
    // every hook of the guard attaches on every kernel of the suite (5.10 included): the loader and script routes are closed there too
    expect(d.check('exec_guard').detail).toMatch(/ at bprm_check_security, mmap_file, file_mprotect, file_open$/);
    const w = d.check('watch_guards');
    expect(w.status, w.detail).toBe('ok');
    expect(w.detail).toBe(hasBpfLoop ? 'shell_guard.bpf.o, file_guard.bpf.o, net_guard.bpf.o load and attach' : 'shell_guard.compat.bpf.o, file_guard.compat.bpf.o, net_guard.compat.bpf.o load and attach');
    expect(d.enforcement.level).toBe('enforce');
  }, 300_000); // doctor loads every sensor and the guard's six programs for real: over 120 s under TCG on a busy host

  it('says exactly what sha256 rules need where the kernel lacks it', () => {
    const c = plainDoctor().check('exec_guard_sha256');
    if (atLeast(5, 18)) {
      expect(c.status).toBe('ok');
      expect(c.detail).toMatch(/bpf_ima_file_hash/);
    } else {
      expect(c.status).toBe('missing');
      expect(c.detail).toMatch(/sha256 rules need bpf_ima_file_hash, Linux 5\.18\+/);
      if (!atLeast(5, 11)) expect(c.detail).toMatch(/bprm_check_security is not sleepable/);
      expect(c.hint).toMatch(/path and inode rules work/);
      expect(`${c.detail} ${c.hint}`).not.toMatch(/CONFIG_BPF_LSM/);
    }
  });

  it('says whether provenance marks are read in the kernel, and what that needs where not', () => {
    const c = plainDoctor().check('exec_guard_origin');
    if (atLeast(6, 15)) {
      expect(c.status, c.detail).toBe('ok');
      expect(c.detail).toMatch(/reads a file's security\.bpf\.vigil\.mark at exec/);
    } else {
      expect(c.status).toBe('missing');
      // 6.8-6.14 have the kfunc for user.* names only; older kernels have none
      expect(c.detail).toMatch(atLeast(6, 8) ? /bpf_get_file_xattr reads only user\.\* names before Linux 6\.15/ : /no bpf_get_file_xattr kfunc/);
      expect(c.detail).toMatch(/security\.bpf\.\* names \(Linux 6\.15\+\)/);
      expect(c.hint).toMatch(/puts the stored marks back in the kernel's map at start/);
    }
  });

  it('blames vigil\'s own object, with the verifier\'s reason, when only that is refused', () => {
    // force the build this kernel cannot take: without bpf_loop the default build is
    // refused; with it, the compat build must load too (it is the other kernels' build)
    const d = doctor({ VIGIL_BPF_VARIANT: hasBpfLoop ? 'compat' : 'default' });
    expect(d.check('bpf_lsm').status).toBe('ok');
    if (hasBpfLoop) {
      expect(d.check('exec_guard').status).toBe('ok');
      expect(d.check('exec_guard').detail).toMatch(/^exec_guard\.compat\.bpf\.o loads/);
      expect(d.check('sensor_exec').status).toBe('ok');
      return;
    }
    const g = d.check('exec_guard');
    expect(g.status).toBe('missing');
    expect(g.detail).toMatch(/vigil's exec_guard\.bpf\.o was refused although a minimal LSM program loads: .*EINVAL \[prog 'vigil_guard_bprm\w*': number of funcs in func_info doesn't match number of subprogs\]/);
    expect(g.hint).toMatch(/helper or callback this kernel does not have/);
    expect(`${g.detail} ${g.hint}`).not.toMatch(/CONFIG_BPF_LSM|lsm=/);
    expect(d.enforcement.reason).toMatch(/vigil's exec_guard\.bpf\.o was refused: prog 'vigil_guard_bprm\w*': number of funcs/);
    const s = d.check('sensor_exec');
    expect(s.status).toBe('missing');
    expect(s.detail).toMatch(/exec\.bpf\.o.*EINVAL \[prog 'vigil_exec': number of funcs in func_info/);
  });
});
