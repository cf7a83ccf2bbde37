import { libbpf } from './ffi.js';

/** "1.1" style version of the libbpf.so.1 in use. */
export function libbpfVersion(): string {
  return String(libbpf().libbpf_version_string());
}
