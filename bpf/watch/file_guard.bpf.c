// SPDX-License-Identifier: GPL-2.0-only
/*
 * vigil watch's file guard (BPF LSM): with `sensitive.action: deny`, opening a
 * sensitive file (its inode is in file_inodes: the files the policy's sensitive
 * paths named when the watch started) by any process of the watched tree
 * (vigil_scope_tgids, shared with the scope object) fails with EPERM. Processes
 * outside the tree are untouched. Records: struct vigil_shell_denied (type
 * VIGIL_REC_FILE_DENIED) in shell_guard.h.
 */
#include "vigil_bpf.h"
#include "vigil_scope.h"
#include "shell_guard.h"
#include "deny.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_shell_denied);
VIGIL_BTF_KEEP(vigil_shell_key);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_shell_key);
	__type(value, __u32);
} file_inodes SEC(".maps");

SEC("lsm/file_open")
int BPF_PROG(vigil_file_guard, struct file *file, int ret)
{
	if (ret != 0)
		return -EPERM; /* an earlier program denied: keep it */
	return vigil_watch_deny(file, &file_inodes, 0, VIGIL_REC_FILE_DENIED, VIGIL_STAT_FILE_DENIED);
}
