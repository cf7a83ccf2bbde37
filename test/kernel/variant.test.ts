/**
 * The pieces of the two-build mechanism that need no kernel: object names per
 * build, forcing a build, and reading the verifier's reason out of libbpf's log
 * (samples as libbpf 1.1 prints them, from the 5.10 and 6.18 kernels).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BpfError, reasonHint, verifierReason } from '../../src/kernel/errors.js';
import { bpfVariant, resetBpfVariant, variantObjectPath } from '../../src/kernel/variant.js';

const LOG_510 = `libbpf: prog 'vigil_exec': added 113 insns from sub-prog 'vigil_walk_step'
libbpf: prog 'vigil_exec': insn #261 relocated, imm 310 points to subprog 'vigil_walk_step' (now at 572 offset)
libbpf: prog 'vigil_exec': BPF program load failed: Invalid argument
libbpf: prog 'vigil_exec': -- BEGIN PROG LOAD LOG --
number of funcs in func_info doesn't match number of subprogs
processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'vigil_exec': failed to load: -22
libbpf: failed to load object 'bpf/.output/exec.bpf.o'
`;

const LOG_SLEEPABLE = `libbpf: prog 'vigil_guard_bprm_hash': BPF program load failed: Invalid argument
libbpf: prog 'vigil_guard_bprm_hash': -- BEGIN PROG LOAD LOG --
bpf_lsm_bprm_check_security is not sleepable
processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'vigil_guard_bprm_hash': failed to load: -22
`;

// a long log whose head (and the BEGIN line) was cut by tailLog
const LOG_TAIL = `…(91234 bytes elided)…
1203: (85) call bpf_probe_read_kernel#113
; if (pos < nl + 2) @ vigil_bpf.h:180
1204: (2d) if r1 > r2 goto pc+12
BPF program is too large. Processed 1000001 insn
verification time 4812345 usec
stack depth 96+0
processed 1000001 insns (limit 1000000) max_states_per_insn 33 total_states 91313 peak_states 4041 mark_read 38
-- END PROG LOAD LOG --
libbpf: prog 'vigil_file_open_exit': failed to load: -7
`;

describe('verifierReason', () => {
  it('names the program and the verifier\'s last line', () => {
    expect(verifierReason(LOG_510)).toBe("prog 'vigil_exec': number of funcs in func_info doesn't match number of subprogs");
    expect(verifierReason(LOG_SLEEPABLE)).toBe("prog 'vigil_guard_bprm_hash': bpf_lsm_bprm_check_security is not sleepable");
  });

  it('skips the statistics lines and finds the program after the block when the head was cut', () => {
    expect(verifierReason(LOG_TAIL)).toBe("prog 'vigil_file_open_exit': BPF program is too large. Processed 1000001 insn");
  });

  it('is undefined without a program load log', () => {
    expect(verifierReason(undefined)).toBeUndefined();
    expect(verifierReason("libbpf: failed to find BTF for 'x'\n")).toBeUndefined();
  });

  it('goes into the error message, and the hint says what it means instead of blaming CONFIG_BPF_LSM', () => {
    const e = new BpfError({ op: 'bpf_object__load(exec_guard.bpf.o [lsm/bprm_check_security])', errno: 22, log: LOG_510 });
    expect(e.reason).toMatch(/func_info/);
    expect(e.message).toMatch(/EINVAL \[prog 'vigil_exec': number of funcs in func_info doesn't match number of subprogs\]/);
    expect(e.hint).toMatch(/helper or callback this kernel does not have/);
    expect(e.hint).not.toMatch(/CONFIG_BPF_LSM/);
    expect(reasonHint("prog 'x': bpf_lsm_bprm_check_security is not sleepable")).toMatch(/5\.11\+/);
    expect(reasonHint("prog 'x': invalid func unknown#193")).toMatch(/helper/);
    expect(reasonHint("prog 'x': R1 invalid mem access 'scalar'")).toBeUndefined();
  });
});

describe('BPF object builds', () => {
  const saved = process.env.VIGIL_BPF_VARIANT;
  afterEach(() => {
    if (saved === undefined) delete process.env.VIGIL_BPF_VARIANT;
    else process.env.VIGIL_BPF_VARIANT = saved;
    resetBpfVariant();
  });

  it('maps x.bpf.o to x.compat.bpf.o for the compat build only', () => {
    expect(variantObjectPath('/o/exec.bpf.o', 'compat')).toBe('/o/exec.compat.bpf.o');
    expect(variantObjectPath('/o/exec_guard.bpf.o', 'compat')).toBe('/o/exec_guard.compat.bpf.o');
    expect(variantObjectPath('/o/exec.compat.bpf.o', 'compat')).toBe('/o/exec.compat.bpf.o');
    expect(variantObjectPath('/o/exec.bpf.o', 'default')).toBe('/o/exec.bpf.o');
    expect(variantObjectPath('/o/smoke.o', 'compat')).toBe('/o/smoke.o');
  });

  it('VIGIL_BPF_VARIANT forces a build without probing, and a bad value is an error', () => {
    process.env.VIGIL_BPF_VARIANT = 'compat';
    resetBpfVariant();
    expect(bpfVariant()).toEqual({ variant: 'compat', reason: 'forced by VIGIL_BPF_VARIANT=compat', forced: true });
    expect(variantObjectPath('/o/net.bpf.o')).toBe('/o/net.compat.bpf.o');
    process.env.VIGIL_BPF_VARIANT = 'default';
    resetBpfVariant();
    expect(bpfVariant().variant).toBe('default');
    process.env.VIGIL_BPF_VARIANT = 'v510';
    resetBpfVariant();
    expect(() => bpfVariant()).toThrow(/expected compat, default or auto/);
  });
});
