/**
 * Doctor's hints do not tell the user to run doctor (issue 9, item 10): the
 * kernel binding's hints say "run `vigil doctor`" for every other command.
 */
import { describe, expect, it } from 'vitest';
import { inDoctor } from '../../src/doctor/doctor.js';
import { BpfError, defaultHint } from '../../src/kernel/errors.js';

describe('doctor hints', () => {
  const hints = [
    defaultHint('bpf_object__load(exec_guard.bpf.o [lsm/bprm_check_security])', 'EPERM'),
    defaultHint('bpf_object__load(probe.bpf.o [fentry/do_unlinkat])', 'EPERM'),
    defaultHint('bpf_object__load(exec_guard.bpf.o [lsm/bprm_check_security])', 'EINVAL'),
    new BpfError({ op: 'bpf_program__attach_lsm(vigil_guard_bprm)', errno: 1 }).message,
  ].filter((h): h is string => !!h);

  it('the kernel binding\'s hints send the user to vigil doctor (what doctor must not repeat)', () => {
    expect(hints.some((h) => /vigil doctor/.test(h))).toBe(true);
  });

  it('inDoctor leaves every reference to vigil doctor out and keeps the rest', () => {
    for (const h of hints) {
      const d = inDoctor(h);
      expect(d, h).not.toMatch(/vigil doctor/);
      expect(d.length).toBeGreaterThan(10);
    }
    expect(inDoctor('BPF LSM is not usable here: it needs CONFIG_BPF_LSM; run `vigil doctor`')).toBe('BPF LSM is not usable here: it needs CONFIG_BPF_LSM');
    expect(inDoctor('the guard is refused (see vigil doctor)')).toBe('the guard is refused');
  });
});
