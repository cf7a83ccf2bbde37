/**
 * Raw FFI declarations for libbpf.so.1 and the few libc calls the binding needs.
 * Nothing outside src/kernel/ imports this file: use the typed wrappers
 * (BpfObject, BpfMap, BpfLink, RingBufferReader) instead.
 *
 * libbpf 1.x conventions: functions returning pointers return NULL and set errno;
 * functions returning int return a negative errno. koffi.errno() is only read
 * right after a failure.
 */
import koffi from 'koffi';

export type Ptr = unknown; // an opaque koffi pointer (external)

koffi.opaque('bpf_object');
koffi.opaque('bpf_program');
koffi.opaque('bpf_map');
koffi.opaque('bpf_link');
koffi.opaque('btf');

// libbpf_print_fn_t: the va_list is passed through as an opaque pointer and
// formatted with libc's vsnprintf (x86-64 va_list decays to a pointer).
export const PrintFn = koffi.proto('int vigil_libbpf_print_fn(int level, const char *fmt, void *args)');

let libbpfHandle: ReturnType<typeof loadLibbpf> | undefined;
let libcHandle: ReturnType<typeof loadLibc> | undefined;

function loadLibbpf() {
  const lib = koffi.load('libbpf.so.1');
  return {
    libbpf_major_version: lib.func('uint32_t libbpf_major_version(void)'),
    libbpf_minor_version: lib.func('uint32_t libbpf_minor_version(void)'),
    libbpf_version_string: lib.func('const char *libbpf_version_string(void)'),
    libbpf_set_print: lib.func('void *libbpf_set_print(vigil_libbpf_print_fn *fn)'),
    libbpf_num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),
    libbpf_probe_bpf_prog_type: lib.func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
    libbpf_probe_bpf_map_type: lib.func('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
    libbpf_probe_bpf_helper: lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),

    bpf_object__open_file: lib.func('bpf_object *bpf_object__open_file(const char *path, const void *opts)'),
    bpf_object__load: lib.func('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: lib.func('void bpf_object__close(bpf_object *obj)'),
    bpf_object__name: lib.func('const char *bpf_object__name(const bpf_object *obj)'),
    bpf_object__find_program_by_name: lib.func('bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)'),
    bpf_object__find_map_by_name: lib.func('bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)'),
    bpf_object__next_program: lib.func('bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prev)'),
    bpf_object__next_map: lib.func('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *prev)'),
    bpf_object__btf: lib.func('btf *bpf_object__btf(const bpf_object *obj)'),

    bpf_program__name: lib.func('const char *bpf_program__name(const bpf_program *prog)'),
    bpf_program__section_name: lib.func('const char *bpf_program__section_name(const bpf_program *prog)'),
    bpf_program__set_autoload: lib.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    bpf_program__autoload: lib.func('bool bpf_program__autoload(const bpf_program *prog)'),
    bpf_program__fd: lib.func('int bpf_program__fd(const bpf_program *prog)'),
    bpf_program__attach: lib.func('bpf_link *bpf_program__attach(const bpf_program *prog)'),
    bpf_program__attach_tracepoint: lib.func('bpf_link *bpf_program__attach_tracepoint(const bpf_program *prog, const char *category, const char *name)'),
    bpf_program__attach_raw_tracepoint: lib.func('bpf_link *bpf_program__attach_raw_tracepoint(const bpf_program *prog, const char *name)'),
    bpf_program__attach_lsm: lib.func('bpf_link *bpf_program__attach_lsm(const bpf_program *prog)'),
    bpf_program__attach_uprobe_opts: lib.func('bpf_link *bpf_program__attach_uprobe_opts(const bpf_program *prog, int pid, const char *binary_path, size_t func_offset, const void *opts)'),

    bpf_link__pin: lib.func('int bpf_link__pin(bpf_link *link, const char *path)'),
    bpf_link__unpin: lib.func('int bpf_link__unpin(bpf_link *link)'),
    bpf_link__open: lib.func('bpf_link *bpf_link__open(const char *path)'),
    bpf_link__fd: lib.func('int bpf_link__fd(const bpf_link *link)'),
    bpf_link__disconnect: lib.func('void bpf_link__disconnect(bpf_link *link)'),
    bpf_link__destroy: lib.func('int bpf_link__destroy(bpf_link *link)'),
    bpf_link_get_fd_by_id: lib.func('int bpf_link_get_fd_by_id(uint32_t id)'),
    bpf_prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),

    bpf_map__name: lib.func('const char *bpf_map__name(const bpf_map *map)'),
    bpf_map__fd: lib.func('int bpf_map__fd(const bpf_map *map)'),
    bpf_map__type: lib.func('int bpf_map__type(const bpf_map *map)'),
    bpf_map__key_size: lib.func('uint32_t bpf_map__key_size(const bpf_map *map)'),
    bpf_map__value_size: lib.func('uint32_t bpf_map__value_size(const bpf_map *map)'),
    bpf_map__max_entries: lib.func('uint32_t bpf_map__max_entries(const bpf_map *map)'),
    bpf_map__set_max_entries: lib.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
    bpf_map__set_pin_path: lib.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
    bpf_map__pin: lib.func('int bpf_map__pin(bpf_map *map, const char *path)'),
    bpf_map__unpin: lib.func('int bpf_map__unpin(bpf_map *map, const char *path)'),
    bpf_map__reuse_fd: lib.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    bpf_map__initial_value: lib.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),

    // fd-level (work on pinned maps opened by path, too)
    bpf_obj_get: lib.func('int bpf_obj_get(const char *pathname)'),
    bpf_obj_pin: lib.func('int bpf_obj_pin(int fd, const char *pathname)'),
    bpf_map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
    bpf_map_update_elem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
    bpf_obj_get_info_by_fd: lib.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ uint32_t *info_len)'),

    btf__raw_data: lib.func('const void *btf__raw_data(const btf *btf, _Out_ uint32_t *size)'),
  };
}

function loadLibc() {
  const lib = koffi.load('libc.so.6');
  return {
    vsnprintf: lib.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *ap)'),
    mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
    munmap: lib.func('int munmap(void *addr, size_t length)'),
    close: lib.func('int close(int fd)'),
    getpagesize: lib.func('int getpagesize(void)'),
    clock_gettime: lib.func('int clock_gettime(int clk, _Out_ int64_t *ts)'),
    sysconf: lib.func('long sysconf(int name)'),
  };
}

let flockFn: ((fd: number, op: number) => number) | undefined;

/** flock(2) (src/kernel/lock.ts); libc only, so the lock works where libbpf is absent. */
export function libcFlock(fd: number, op: number): number {
  flockFn ??= koffi.load('libc.so.6').func('int flock(int fd, int operation)') as (fd: number, op: number) => number;
  return flockFn(fd, op);
}

export function libbpf() {
  return (libbpfHandle ??= loadLibbpf());
}

export function libc() {
  return (libcHandle ??= loadLibc());
}

export { koffi };
