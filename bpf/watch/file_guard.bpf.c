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

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

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
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *depth = bpf_map_lookup_elem(&vigil_scope_tgids, &tgid);
	if (!depth)
		return 0;
	struct vigil_shell_key k = {};
	k.ino = BPF_CORE_READ(file, f_inode, i_ino);
	k.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	if (!bpf_map_lookup_elem(&file_inodes, &k))
		return 0;
	struct vigil_shell_denied r = {};
	vigil_task_fill(&r.task, (struct task_struct *)bpf_get_current_task());
	r.ino = k.ino;
	r.dev = k.dev;
	r.depth = *depth;
	vigil_hdr_init(&r.hdr, VIGIL_REC_FILE_DENIED, sizeof(r));
	vigil_output(&r, sizeof(r));
	vigil_count(VIGIL_STAT_FILE_DENIED);
	return -EPERM;
}
