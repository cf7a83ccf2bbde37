// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tamper protection of origin records (docs/provenance.md TAMPERING): while the
 * agent runs with provenance on, setting, rewriting or removing an extended
 * attribute whose name starts with "trusted.vigil." (the origin record) or
 * "security.bpf.vigil." (the mark the exec guard reads, 6.15+) fails with EPERM for every
 * process but vigil's own (tamper_exempt: tgid -> start time, filled by the
 * agent and by `vigil provenance mark|clear`), root and the file's owner
 * included. Each refusal is counted and reported (struct vigil_xattr_tamper).
 *
 * The hooks' arguments changed with idmapped mounts (5.12): before, they are
 * (dentry, name, ...); from 5.12 a struct user_namespace * (6.3+: struct
 * mnt_idmap *) comes first. The kernel that added that argument also added it
 * to struct vfsmount (mnt_userns, 6.3+ mnt_idmap), which CO-RE can test: the
 * test is a constant at load, so the verifier checks only the branch this
 * kernel takes. Reading the previous program's return value (the argument
 * after the last) makes a wrong guess a load error, never a misread.
 *
 * The 6.12+ verifier wants an LSM return value provably in [-4095, 0]: every
 * branch returns a constant.
 */
#include "vigil_bpf.h"
#include "tamper.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

VIGIL_BTF_KEEP(vigil_xattr_tamper);
VIGIL_BTF_KEEP(vigil_tamper_exempt);
VIGIL_BTF_KEEP_ENUM(vigil_tamper_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_tamper_stat);
VIGIL_BTF_KEEP_ENUM(vigil_tamper_op);

struct vfsmount___userns {
	struct user_namespace *mnt_userns;
} __attribute__((preserve_access_index));

struct vfsmount___idmap {
	struct mnt_idmap *mnt_idmap;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct vigil_tamper_exempt);
} tamper_exempt SEC(".maps");

#define USER_HZ_NS (1000000000ULL / 100) /* x86 USER_HZ */

/* the hooks take a mount's user namespace / idmap first (5.12+) */
static __always_inline bool idmapped_args(void)
{
	return bpf_core_field_exists(((struct vfsmount___idmap *)0)->mnt_idmap) ||
	       bpf_core_field_exists(((struct vfsmount___userns *)0)->mnt_userns);
}

/*
 * The hook's n-th argument, read from the context with a constant offset in
 * the instruction itself (the verifier refuses a load through a ctx pointer
 * the compiler moved, which it does when both branches share the load).
 */
#define CTX_ARG(ctx, n) ({ \
	__u64 __v; \
	asm volatile("%[v] = *(u64 *)(%[c] + %[o])" : [v] "=r"(__v) : [c] "r"(ctx), [o] "i"((n) * 8)); \
	__v; \
})

static __always_inline bool exempt(struct task_struct *task)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct vigil_tamper_exempt *e = bpf_map_lookup_elem(&tamper_exempt, &tgid);
	if (!e)
		return false;
	return e->start_ticks == BPF_CORE_READ(task, group_leader, start_boottime) / USER_HZ_NS;
}

/* buf starts with prefix (len bytes, len < VIGIL_XATTR_NAME_MAX) */
static __always_inline bool has_prefix(const char *buf, const char *prefix, int len)
{
	for (int i = 0; i < len; i++)
		if (buf[i] != prefix[i])
			return false;
	return true;
}

/* 0: not ours; 1: a vigil attribute touched by someone else (refuse) */
static __always_inline int check(struct dentry *dentry, const char *name, __u32 op)
{
	char buf[VIGIL_XATTR_NAME_MAX] = {};
	const char prefix[] = VIGIL_XATTR_PREFIX;
	const char bpf_prefix[] = VIGIL_XATTR_BPF_PREFIX;

	long n = bpf_probe_read_kernel_str(buf, sizeof(buf), name);
	if (!(n > VIGIL_XATTR_PREFIX_LEN && has_prefix(buf, prefix, VIGIL_XATTR_PREFIX_LEN)) &&
	    !(n > VIGIL_XATTR_BPF_PREFIX_LEN && has_prefix(buf, bpf_prefix, VIGIL_XATTR_BPF_PREFIX_LEN)))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (exempt(task))
		return 0;

	struct vigil_xattr_tamper r = {};
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	vigil_task_fill(&r.task, task);
	r.ino = BPF_CORE_READ(inode, i_ino);
	r.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	r.owner = BPF_CORE_READ(inode, i_uid.val);
	r.op = op;
	__builtin_memcpy(r.name, buf, sizeof(r.name));
	vigil_hdr_init(&r.hdr, VIGIL_REC_XATTR_TAMPER, sizeof(r));
	vigil_output(&r, sizeof(r));
	vigil_count(op == VIGIL_TAMPER_SET ? VIGIL_STAT_TAMPER_SET : VIGIL_STAT_TAMPER_REMOVE);
	return 1;
}

/* inode_setxattr([idmap,] dentry, name, value, size, flags) */
SEC("lsm/inode_setxattr")
int vigil_tamper_set(unsigned long long *ctx)
{
	struct dentry *dentry;
	const char *name;
	int ret;

	if (idmapped_args()) {
		dentry = (struct dentry *)CTX_ARG(ctx, 1);
		name = (const char *)CTX_ARG(ctx, 2);
		ret = (int)CTX_ARG(ctx, 6);
	} else {
		dentry = (struct dentry *)CTX_ARG(ctx, 0);
		name = (const char *)CTX_ARG(ctx, 1);
		ret = (int)CTX_ARG(ctx, 5);
	}
	if (ret != 0)
		return -EPERM; /* an earlier program denied: keep it */
	if (check(dentry, name, VIGIL_TAMPER_SET))
		return -EPERM;
	return 0;
}

/* inode_removexattr([idmap,] dentry, name) */
SEC("lsm/inode_removexattr")
int vigil_tamper_remove(unsigned long long *ctx)
{
	struct dentry *dentry;
	const char *name;
	int ret;

	if (idmapped_args()) {
		dentry = (struct dentry *)CTX_ARG(ctx, 1);
		name = (const char *)CTX_ARG(ctx, 2);
		ret = (int)CTX_ARG(ctx, 3);
	} else {
		dentry = (struct dentry *)CTX_ARG(ctx, 0);
		name = (const char *)CTX_ARG(ctx, 1);
		ret = (int)CTX_ARG(ctx, 2);
	}
	if (ret != 0)
		return -EPERM;
	if (check(dentry, name, VIGIL_TAMPER_REMOVE))
		return -EPERM;
	return 0;
}
