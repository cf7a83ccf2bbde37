import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

describe('vigil doctor', () => {
  const r = spawnSync(process.execPath, [VIGIL, 'doctor', '--json'], { encoding: 'utf8' });
  const report = JSON.parse(r.stdout);
  const check = (id: string) => report.checks.find((c: { id: string }) => c.id === id);

  it('reports every probe with a status', () => {
    for (const id of ['kernel', 'libbpf', 'btf', 'lockdown', 'lsm_list', 'bpf_lsm', 'trampoline', 'ringbuf', 'tracepoint', 'tp_btf', 'raw_tp', 'uprobe', 'kfuncs', 'fanotify', 'bpffs', 'exec_guard']) {
      expect(check(id), id).toBeDefined();
      expect(['ok', 'missing', 'error', 'info']).toContain(check(id).status);
    }
    expect(report.libbpf).toMatch(/^v?1\.\d+/);
  });

  it('tried the exec sensor for real and says so (this machine runs it)', () => {
    expect(check('tp_btf').status).toBe('ok');
    expect(check('tp_btf').detail).toBe('loaded and attached');
    expect(r.status).toBe(0);
  });

  it('derives the enforcement level from the LSM probe, and explains a refusal', () => {
    const lsms = readFileSync('/sys/kernel/security/lsm', 'utf8');
    expect(check('lsm_list').detail).toBe(lsms.trim());
    if (check('exec_guard').status === 'ok') {
      expect(check('bpf_lsm').status).toBe('ok');
      expect(report.enforcement.level).toBe('enforce');
      expect(report.enforcement.backend).toBe('lsm');
    } else {
      // without BPF LSM, fanotify permission events enforce (this machine has them: KNOWLEDGE.md)
      const fan = check('fanotify').status === 'ok';
      expect(report.enforcement.level).toBe(fan ? 'enforce' : 'detect-only');
      expect(report.enforcement.backend).toBe(fan ? 'fanotify' : 'detect-only');
      // the route this backend cannot see is named, with the sysctl that closes it where the kernel has one (6.3+)
      if (fan) {
        const noexec = existsSync('/proc/sys/vm/memfd_noexec') ? readFileSync('/proc/sys/vm/memfd_noexec', 'utf8').trim() : null;
        expect(check('fanotify').detail).toMatch(/not covered by this backend: fexecve of a memfd is not checked \(the kernel refuses fanotify marks on the memfd mount: EINVAL\)/);
        expect(check('fanotify').detail).toMatch(noexec === null ? /no vm\.memfd_noexec/ : noexec === '2' ? /vm\.memfd_noexec=2 refuses/ : /sysctl vm\.memfd_noexec=2` closes the route/);
      }
      expect(check('exec_guard').detail).toMatch(/exec_guard(\.compat)?\.bpf\.o.*E[A-Z]+/);
      if (check('bpf_lsm').status !== 'ok') expect(check('bpf_lsm').detail).toMatch(/lsm\/bprm_check_security.*E[A-Z]+/);
      expect(report.enforcement.reason).toMatch(fan ? /^BPF LSM unavailable \(.+\); fanotify permission events work$/ : /nothing is blocked/);
    }
  });

  it('names the one cause of a BPF LSM refusal (not in the LSM list / no trampolines / the object itself)', () => {
    const listed = readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').includes('bpf');
    const lsm = check('bpf_lsm');
    const fentry = check('trampoline');
    if (!listed) {
      expect(check('lsm_list').hint).toMatch(/lsm=/);
      expect(report.enforcement.reason).toMatch(/bpf is not in the active LSM list/);
    }
    if (lsm.status === 'ok') {
      if (check('exec_guard').status !== 'ok') {
        // the kernel takes LSM programs: only vigil's own object can be at fault, and the verifier says why
        expect(check('exec_guard').detail).toMatch(/vigil's exec_guard(\.compat)?\.bpf\.o was refused/);
      }
      return;
    }
    const code = /: (E[A-Z]+)/.exec(lsm.detail)?.[1];
    if (fentry.status !== 'ok' && fentry.detail.endsWith(`: ${code}`)) {
      // this machine: bpf IS in the LSM list, trampolines are refused (EPERM)
      expect(lsm.detail).toMatch(/refuses BPF trampolines \(an fentry program fails the same way, E[A-Z]+\)/);
      expect(lsm.hint).toMatch(/BPF LSM needs BPF trampolines/);
      expect(lsm.hint).not.toMatch(/CONFIG_BPF_LSM/);
      expect(check('exec_guard').detail).toMatch(/BPF LSM programs are refused here/);
      expect(check('exec_guard').hint).toMatch(/trampolines/);
      if (listed) {
        expect(lsm.hint).toMatch(/bpf is in the active LSM list: that is not what is missing/);
        expect(lsm.hint).not.toMatch(/lsm=/);
        expect(report.enforcement.reason).toMatch(/BPF LSM unavailable \(this kernel refuses BPF trampolines/);
      }
    } else if (!listed) {
      expect(lsm.hint).toMatch(/lsm=/);
    }
  });

  it('says which build of the BPF objects it chose and why', () => {
    expect(check('bpf_build').detail).toMatch(/^(default \(x\.bpf\.o: bpf_loop|compat \(x\.compat\.bpf\.o)/);
    const compat = check('bpf_build').detail.startsWith('compat');
    expect(check('sensor_exec').detail).toMatch(compat ? /^exec\.compat\.bpf\.o: .*compat build/ : /^exec\.bpf\.o: /);
  });

  it('prints a human report too', () => {
    const h = spawnSync(process.execPath, [VIGIL, 'doctor'], { encoding: 'utf8' });
    expect(h.stdout).toMatch(/Enforcement: (ENFORCE|DETECT-ONLY)/);
    expect(h.stdout).toMatch(/✓ exec sensor\s+exec.bpf.o: 3 programs loaded and attached/);
  });
});
