/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * vigil_scope.h — tree scoping shared by every sensor program.
 *
 * `vigil watch -- CMD` follows one process tree: userspace puts the root's tgid
 * into vigil_scope_tgids before the root execs CMD, bpf/scope/scope.bpf.c adds
 * every child at sched_process_fork (in the kernel: no child escapes between its
 * fork and its first event) and removes a tgid when its task is freed. Sensors
 * call vigil_in_scope() first thing, so a process outside the tree costs one
 * array lookup and one hash lookup per event and sends nothing.
 *
 * Every object that includes this header has its own copy of both maps; the
 * watch loads scope.bpf.o first and the sensors reuse its maps' fds before load
 * (bpf_map__reuse_fd, BpfSensorOptions.scope). Where nobody sets the mode
 * (`vigil run`), mode is VIGIL_SCOPE_OFF: the whole host, as before.
 */
#ifndef VIGIL_SCOPE_H
#define VIGIL_SCOPE_H

#define VIGIL_SCOPE_MAX_TGIDS 65536

enum vigil_scope_mode {
	VIGIL_SCOPE_OFF = 0,  /* every process (the default) */
	VIGIL_SCOPE_TREE = 1, /* only tgids in vigil_scope_tgids */
};

/* Array "vigil_scope_settings", one entry, written by userspace. */
struct vigil_scope_settings {
	__u32 mode;   /* enum vigil_scope_mode */
	__u32 _pad0;
};

/* tgid -> depth below the root (0: the root userspace inserted) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_SCOPE_MAX_TGIDS);
	__type(key, __u32);
	__type(value, __u32);
} vigil_scope_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_scope_settings);
} vigil_scope_settings SEC(".maps");

static __always_inline bool vigil_in_scope_tgid(__u32 tgid)
{
	__u32 zero = 0;
	struct vigil_scope_settings *s = bpf_map_lookup_elem(&vigil_scope_settings, &zero);
	if (!s || s->mode == VIGIL_SCOPE_OFF)
		return true;
	return bpf_map_lookup_elem(&vigil_scope_tgids, &tgid) != NULL;
}

/* Is the current process one the sensors report? (always, unless a watch scoped them) */
static __always_inline bool vigil_in_scope(void)
{
	return vigil_in_scope_tgid(bpf_get_current_pid_tgid() >> 32);
}

#endif /* VIGIL_SCOPE_H */
