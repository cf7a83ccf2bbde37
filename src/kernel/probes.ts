/**
 * Small feature probes for `vigil doctor` that talk to libbpf or libc directly
 * (only src/kernel/ does).
 */
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

