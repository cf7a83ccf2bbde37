import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    } else {
      expect(report.enforcement.level).toBe('detect-only');
      expect(check('exec_guard').detail).toMatch(/exec_guard\.bpf\.o.*E[A-Z]+/);
      if (check('bpf_lsm').status !== 'ok') expect(check('bpf_lsm').detail).toMatch(/lsm\/bprm_check_security.*E[A-Z]+/);
      if (check('bpf_lsm').status !== 'ok') expect(check('bpf_lsm').hint).toMatch(/lsm=/);
      expect(report.enforcement.reason).toMatch(/nothing is blocked/);
    }
  });

  it('prints a human report too', () => {
    const h = spawnSync(process.execPath, [VIGIL, 'doctor'], { encoding: 'utf8' });
    expect(h.stdout).toMatch(/Enforcement: (ENFORCE|DETECT-ONLY)/);
    expect(h.stdout).toMatch(/✓ exec sensor\s+exec.bpf.o: 3 programs loaded and attached/);
  });
});
