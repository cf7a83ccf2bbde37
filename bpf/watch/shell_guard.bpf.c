// SPDX-License-Identifier: GPL-2.0-only
/*
 * vigil watch's shell guard (BPF LSM): with `shells.action: deny`, the exec of a
 * shell (its executable's inode is in shell_inodes) by a process of the watched
 * tree (vigil_scope_tgids, shared with the scope object) fails with EPERM. The
 * root of the tree itself (depth 0: the command vigil started) may exec a shell;
 * every process below it may not. Processes outside the tree are untouched.
 * Records: struct vigil_shell_denied in shell_guard.h.
 */
#include "vigil_bpf.h"
#include "vigil_scope.h"
#include "shell_guard.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_shell_denied);
VIGIL_BTF_KEEP(vigil_shell_key);
VIGIL_BTF_KEEP_ENUM(vigil_shell_guard_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_shell_guard_stat);

#define EPERM 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct vigil_shell_key);
	__type(value, __u32);
} shell_inodes SEC(".maps");

SEC("lsm/bprm_check_security")
int BPF_PROG(vigil_shell_guard, struct linux_binprm *bprm, int ret)
{
	if (ret != 0)
		return -EPERM; /* an earlier program denied: keep it (the only non-zero we pass on) */
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *depth = bpf_map_lookup_elem(&vigil_scope_tgids, &tgid);
	if (!depth || *depth == 0)
		return 0;
	struct vigil_shell_key k = {};
	k.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	k.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
	if (!bpf_map_lookup_elem(&shell_inodes, &k))
		return 0;
	struct vigil_shell_denied r = {};
	vigil_task_fill(&r.task, (struct task_struct *)bpf_get_current_task());
	r.ino = k.ino;
	r.dev = k.dev;
	r.depth = *depth;
	vigil_hdr_init(&r.hdr, VIGIL_REC_SHELL_DENIED, sizeof(r));
	vigil_output(&r, sizeof(r));
	vigil_count(VIGIL_STAT_SHELL_DENIED);
	return -EPERM;
}
