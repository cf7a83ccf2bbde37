/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What vigil watch's LSM guards share: a process of the watched tree at least
 * `min_depth` below its root (vigil_scope_tgids) touching a file whose inode is
 * in `inodes` is refused with EPERM, and a struct vigil_shell_denied record of
 * `type` is submitted and `stat` counted. Include after vigil_bpf.h,
 * vigil_scope.h and shell_guard.h.
 */
#ifndef VIGIL_WATCH_DENY_H
#define VIGIL_WATCH_DENY_H

#define EPERM 1

static __always_inline int vigil_watch_deny(struct file *file, void *inodes, __u32 min_depth, __u16 type, __u32 stat)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *depth = bpf_map_lookup_elem(&vigil_scope_tgids, &tgid);
	if (!depth || *depth < min_depth)
		return 0;
	struct vigil_shell_key k = {};
	k.ino = BPF_CORE_READ(file, f_inode, i_ino);
	k.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	if (!bpf_map_lookup_elem(inodes, &k))
		return 0;
	struct vigil_shell_denied r = {};
	vigil_task_fill(&r.task, (struct task_struct *)bpf_get_current_task());
	r.ino = k.ino;
	r.dev = k.dev;
	r.depth = *depth;
	vigil_hdr_init(&r.hdr, type, sizeof(r));
	vigil_output(&r, sizeof(r));
	vigil_count(stat);
	return -EPERM;
}

#endif
