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
    detail: `${marking}; ${blocking}; the owner of a file can remove its mark only with CAP_SYS_ADMIN (trusted.* xattr), there is no LSM tamper protection yet`,
    hint: x.lsm ? 'vigil run --provenance enforce; vigil allow add --path FILE; vigil provenance show FILE' : 'vigil run --provenance monitor; vigil provenance show FILE',
  };
}
