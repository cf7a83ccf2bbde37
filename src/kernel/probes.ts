/**
 * Small feature probes for `vigil doctor` that talk to libbpf or libc directly
 * (only src/kernel/ does).
 */
import { readFileSync } from 'node:fs';
import { koffi, libbpf } from './ffi.js';

/** libbpf_probe_bpf_map_type: 1 supported, 0 not, <0 error. */
export function probeMapType(type: number): number {
  return libbpf().libbpf_probe_bpf_map_type(type, null) as number;
}

export function fanotifyPermissionEvents(): { ok: boolean; detail: string } {
  try {
    const lib = koffi.load('libc.so.6');
    const init = lib.func('int fanotify_init(unsigned int flags, unsigned int event_f_flags)');
    const close = lib.func('int close(int fd)');
    const FAN_CLOEXEC = 0x1;
    const FAN_CLASS_CONTENT = 0x4;
    const fd = init(FAN_CLASS_CONTENT | FAN_CLOEXEC, 0) as number;
    if (fd >= 0) {
      close(fd);
      return { ok: true, detail: 'fanotify_init(FAN_CLASS_CONTENT) succeeded' };
    }
    return { ok: false, detail: `fanotify_init(FAN_CLASS_CONTENT): errno ${koffi.errno()}` };
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
}


/**
 * Can BPF programs read security.bpf.* extended attributes here (bpf_get_file_xattr
 * with those names: Linux 6.15+)? The kernel's BTF names its kfuncs: bpf_get_file_xattr
 * (6.8, user.* names only until 6.15) and bpf_set_dentry_xattr, added with the
 * security.bpf.* reads. Both names in the BTF string table mean yes. Read once.
 */
let bpfXattrs: { ok: boolean; detail: string } | undefined;
export function bpfReadsSecurityXattrs(btfPath = '/sys/kernel/btf/vmlinux'): { ok: boolean; detail: string } {
  if (btfPath === '/sys/kernel/btf/vmlinux' && bpfXattrs) return bpfXattrs;
  let r: { ok: boolean; detail: string };
  try {
    const btf = readFileSync(btfPath);
    const has = (name: string) => btf.indexOf(Buffer.from(`\0${name}\0`)) >= 0;
    r = has('bpf_get_file_xattr') && has('bpf_set_dentry_xattr')
      ? { ok: true, detail: 'the kernel has bpf_get_file_xattr with security.bpf.* names (6.15+)' }
      : { ok: false, detail: has('bpf_get_file_xattr') ? 'bpf_get_file_xattr reads only user.* names before Linux 6.15' : 'no bpf_get_file_xattr kfunc (Linux 6.8+; security.bpf.* names 6.15+)' };
  } catch (e) {
    r = { ok: false, detail: `kernel BTF unreadable (${btfPath}): ${(e as Error).message}` };
  }
  if (btfPath === '/sys/kernel/btf/vmlinux') bpfXattrs = r;
  return r;
}
