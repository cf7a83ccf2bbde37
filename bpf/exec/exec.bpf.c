// SPDX-License-Identifier: GPL-2.0-only
/*
 * exec sensor: process creation (with the full argv read from the new mm in the
 * kernel, so short-lived processes keep their command line), fork and exit.
 * Records: struct vigil_exec / vigil_fork / vigil_exit in exec.h.
 */
#include "vigil_bpf.h"
#include "exec.h"
#include "vigil_scope.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_fork);
VIGIL_BTF_KEEP(vigil_exit);
VIGIL_BTF_KEEP_ENUM(vigil_exec_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_exec_flags);
VIGIL_BTF_KEEP_ENUM(vigil_stat);

#define EXEC_DATA_MAX (VIGIL_PATH_MAX * 2 + VIGIL_ARGS_MAX)

struct exec_scratch {
	struct vigil_exec e;
	char data[EXEC_DATA_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_scratch SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	if (!vigil_in_scope())
		return 0;
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!s)
		return 0;
	struct vigil_exec *e = &s->e;
	struct task_struct *task = vigil_current_task();
	bool trunc = false;
	__u32 flags = 0;

	vigil_task_fill(&e->task, task);
	e->argc = BPF_CORE_READ(bprm, argc);

	/* paths as the process sees them: up to its root (chroot), like d_path() */
	struct path root = BPF_CORE_READ(task, fs, root);

	/* exe: the file the kernel executes (symlinks resolved) */
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	__u32 exe_len = 0;
	if (exe) {
		struct path fpath = BPF_CORE_READ(exe, f_path);
		exe_len = vigil_path_resolve_at(&fpath, &root, &s->data[0], &trunc);
		if (trunc)
			flags |= VIGIL_F_EXE_TRUNCATED;
		e->exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
		e->exe_dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
	} else {
		flags |= VIGIL_F_EXE_MISSING;
		e->exe_ino = 0;
		e->exe_dev = 0;
	}
	exe_len &= VIGIL_PATH_MASK;

	/* cwd */
	trunc = false;
	struct path pwd = BPF_CORE_READ(task, fs, pwd);
	__u32 cwd_len = vigil_path_resolve_at(&pwd, &root, &s->data[exe_len], &trunc);
	if (trunc)
		flags |= VIGIL_F_CWD_TRUNCATED;
	cwd_len &= VIGIL_PATH_MASK;

	/* argv: the strings the kernel just copied to the top of the new stack */
	__u32 off = (exe_len + cwd_len) & (VIGIL_PATH_MAX * 2 - 1);
	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u64 args_len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (args_len > VIGIL_ARGS_MAX - 1) {
		args_len = VIGIL_ARGS_MAX - 1;
		flags |= VIGIL_F_ARGS_TRUNCATED;
	}
	args_len &= VIGIL_ARGS_MAX - 1;
	if (args_len && bpf_probe_read_user(&s->data[off], args_len, (void *)arg_start)) {
		flags |= VIGIL_F_ARGS_FAULT;
		vigil_count(VIGIL_STAT_ARGS_FAULT);
		args_len = 0;
	}

	e->flags = flags;
	e->exe_len = exe_len;
	e->cwd_len = cwd_len;
	e->args_len = args_len;
	if (flags & (VIGIL_F_ARGS_TRUNCATED | VIGIL_F_EXE_TRUNCATED | VIGIL_F_CWD_TRUNCATED))
		vigil_count(VIGIL_STAT_TRUNCATED);

	__u64 size = sizeof(*e) + off + args_len;
	if (size > sizeof(*s))
		size = sizeof(*s);
	vigil_hdr_init(&e->hdr, VIGIL_REC_EXEC, size);
	if (!vigil_output(e, size))
		vigil_count(VIGIL_STAT_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork, struct task_struct *parent, struct task_struct *child)
{
	/* threads are not processes */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (!vigil_in_scope_tgid(BPF_CORE_READ(parent, tgid)))
		return 0;
	struct vigil_fork r = {};
	vigil_task_fill(&r.task, child);
	/* the child does not run yet: its cgroup is the parent's (current) */
	vigil_hdr_init(&r.hdr, VIGIL_REC_FORK, sizeof(r));
	if (!vigil_output(&r, sizeof(r)))
		vigil_count(VIGIL_STAT_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit, struct task_struct *p)
{
	/* only when the whole thread group is gone */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (!vigil_in_scope_tgid(BPF_CORE_READ(p, tgid)))
		return 0;
	struct vigil_exit r = {};
	vigil_task_fill(&r.task, p);
	r.exit_code = BPF_CORE_READ(p, exit_code);
	vigil_hdr_init(&r.hdr, VIGIL_REC_EXIT, sizeof(r));
	if (!vigil_output(&r, sizeof(r)))
		vigil_count(VIGIL_STAT_EXIT);
	return 0;
}
