/**
 * What doctor says about file provenance on this host (docs/provenance.md):
 * which guarantees hold. Marking runs from syscall tracepoints everywhere the
 * network and file sensors load; blocking marked files needs BPF LSM (the
 * exec guard's bprm_check_security program checks the marks).
 */
import { ORIGIN_XATTR } from './format.js';

export interface ProvenanceDoctorInput {
  /** BPF LSM programs load and run here */
  lsm: boolean;
  /** why not, when not */
  lsmWhy?: string;
  /** the network and file sensors load (marking and propagation need both) */
  sensors: boolean;
}

export function provenanceCheck(x: ProvenanceDoctorInput): { id: string; title: string; status: 'ok' | 'missing' | 'info'; detail: string; hint?: string } {
  const marking = x.sensors
    ? `marking works (monitor): network taint, marks at write time and propagation from syscall tracepoints; origin records in ${ORIGIN_XATTR} and the store`
    : 'marking does not work: the network or file sensor does not load here';
  const blocking = x.lsm
    ? 'exec policy on marked files available (BPF LSM): --provenance enforce refuses execs of marked programs and shebang scripts, `ld.so ./file` and marked libraries mapped executable (mmap_file, file_mprotect), and marked files read by an interpreter (file_open: bash x.sh, python3 x.py; refused with enforcement.loader_guard, else reported) with EPERM unless `vigil allow` matches, soak learns allow rules'
    : `marked files are not blocked here: BPF LSM unavailable (${x.lsmWhy ?? 'unknown reason'}); marks are kept and shown, exec of a marked file is not refused`;
  return {
    id: 'provenance',
    title: 'File provenance',
    status: x.sensors ? 'info' : 'missing',
    detail: `${marking}; ${blocking}; tamper protection: see provenance_tamper`,
    hint: x.lsm ? 'vigil run --provenance enforce; vigil allow add --path FILE; vigil provenance show FILE' : 'vigil run --provenance monitor; vigil provenance show FILE',
  };
}

/**
 * Tamper protection of origin records (lsm/inode_setxattr, lsm/inode_removexattr
 * in bpf/provenance/tamper.bpf.c): `load` is doctor's load of that object (the
 * verifier checked the hooks' arguments on this kernel; not attached here: an
 * attached hook with no agent would refuse a running agent's own writes).
 */
export function tamperCheck(x: { lsm: boolean; lsmWhy?: string; load?: { ok: boolean; why?: string } }): { id: string; title: string; status: 'ok' | 'missing'; detail: string; hint?: string } {
  const without = `without it a file's owner still cannot remove or forge ${ORIGIN_XATTR} (the trusted.* namespace needs CAP_SYS_ADMIN), but root can`;
  const id = 'provenance_tamper';
  const title = 'Provenance tamper protection';
  if (!x.lsm) {
    return { id, title, status: 'missing', detail: `does not hold here: BPF LSM unavailable (${x.lsmWhy ?? 'unknown reason'}); ${without}`, hint: 'BPF LSM (lsm=...,bpf on the kernel command line) lets vigil run refuse changes to its attributes' };
  }
  if (!x.load?.ok) {
    return { id, title, status: 'missing', detail: `does not hold here: the tamper hooks were refused (${x.load?.why ?? 'not tried'}); ${without}` };
  }
  return {
    id,
    title,
    status: 'ok',
    detail: `holds while vigil run runs with provenance on: inode_setxattr/inode_removexattr hooks load here, so only vigil's own processes can set, rewrite or remove trusted.vigil.* attributes (root and the file's owner get EPERM, attempts are reported as provenance_tamper events); when the agent is stopped the attributes are protected by CAP_SYS_ADMIN only, the kernel's marks stay in the pinned exec guard`,
  };
}
