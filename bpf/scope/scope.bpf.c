// SPDX-License-Identifier: GPL-2.0-only
/*
 * scope: keeps the set of tracked tgids (vigil_scope_tgids, vigil_scope.h) in
 * the kernel. A fork whose parent process is tracked adds the child before the
 * child runs (sched_process_fork fires in the parent, before wake_up_new_task),
 * so no child escapes; a process leaves the set when its task is freed
 * (sched_process_free: after its exit record was sent by the exec sensor, and
 * before the pid can be reused). Threads are not processes: only new thread
 * groups are added. Nothing is sent to userspace.
 */
#include "vigil_bpf.h"
#include "vigil_scope.h"
#include "scope.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_scope_settings);
VIGIL_BTF_KEEP_ENUM(vigil_scope_mode);
VIGIL_BTF_KEEP_ENUM(vigil_scope_stat);

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_scope_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 child_pid = BPF_CORE_READ(child, pid);
	if (child_pid != BPF_CORE_READ(child, tgid))
		return 0; /* a thread: its process is already in (or out of) the set */
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 *depth = bpf_map_lookup_elem(&vigil_scope_tgids, &ptgid);
	if (!depth)
		return 0;
	__u32 d = *depth + 1;
	if (bpf_map_update_elem(&vigil_scope_tgids, &child_pid, &d, BPF_ANY))
		vigil_count(VIGIL_STAT_SCOPE_FULL); /* the map is full: this child escapes, counted */
	else
		vigil_count(VIGIL_STAT_SCOPE_ADDED);
	return 0;
}

SEC("tp_btf/sched_process_free")
int BPF_PROG(vigil_scope_free, struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid);
	if (pid != BPF_CORE_READ(p, tgid))
		return 0;
	if (!bpf_map_delete_elem(&vigil_scope_tgids, &pid))
		vigil_count(VIGIL_STAT_SCOPE_REMOVED);
	return 0;
}
