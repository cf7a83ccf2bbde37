/**
 * The mark as an attribute the kernel reads (security.bpf.vigil.mark, struct
 * vigil_mark_xattr in bpf/include/vigil_taint.h): written next to the origin
 * record where BPF programs can read security.bpf.* names (Linux 6.15+), so the
 * exec guard's origin programs find a mark the kernel's map lost
 * (docs/provenance.md IN-KERNEL ORIGIN). Elsewhere nothing is written: the
 * agent re-arms marks from its store.
 */
import { encodeMarkXattr, MARK_XATTR, TaintFlags } from '../events/taint.js';
import { bpfReadsSecurityXattrs } from '../kernel/probes.js';
import { getXattr, removeXattr, setXattr } from '../kernel/xattr.js';

export { MARK_XATTR };

/** Does this kernel read the attribute (so it is written)? */
export function markXattrInKernel(): boolean {
  return bpfReadsSecurityXattrs().ok;
}

/** Write the attribute for a mark of `kind` at `depth`; false when this kernel would not read it (nothing written). */
export function writeMarkXattr(path: string, kind: 'network' | 'derived' | 'manual', depth: number): boolean {
  if (!markXattrInKernel()) return false;
  setXattr(path, MARK_XATTR, encodeMarkXattr(depth, kind === 'derived' ? TaintFlags.FILE : TaintFlags.NET));
  return true;
}

/** Remove it; false when the file had none. */
export function removeMarkXattr(path: string): boolean {
  try {
    return removeXattr(path, MARK_XATTR);
  } catch (e) {
    // a file system without security.* attributes never had one
    if ((e as { code?: string }).code === 'ENOTSUP') return false;
    throw e;
  }
}

/** The attribute's bytes, or null (absent, or a file system without security.* attributes). */
export function readMarkXattr(path: string): Buffer | null {
  try {
    return getXattr(path, MARK_XATTR, 64);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOTSUP') return null;
    throw e;
  }
}
