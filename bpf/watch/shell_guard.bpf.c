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
#include "deny.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_shell_denied);
VIGIL_BTF_KEEP(vigil_shell_key);
VIGIL_BTF_KEEP_ENUM(vigil_shell_guard_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_shell_guard_stat);

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
	return vigil_watch_deny(BPF_CORE_READ(bprm, file), &shell_inodes, 1, VIGIL_REC_SHELL_DENIED, VIGIL_STAT_SHELL_DENIED);
}
