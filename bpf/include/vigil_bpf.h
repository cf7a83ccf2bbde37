/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * vigil_bpf.h — the pieces every vigil BPF object shares: the ring buffer the
 * records go to, the loss counters, task identity, and in-kernel path walking.
 * Sensors include this instead of copying it.
 */
#ifndef VIGIL_BPF_H
#define VIGIL_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "vigil.h"

/*
 * Two builds of every object (bpf/Makefile): `<name>.bpf.o` for kernels with
 * bpf_loop (5.17+), and `<name>.compat.bpf.o`, built with -DVIGIL_COMPAT, for
 * kernels from 5.10 without it (Debian 11's 5.10, Ubuntu 22.04's 5.15). Userspace
 * loads the compat build where the kernel has no bpf_loop, by probing, not by
 * version (src/kernel/variant.ts), so backports count. In code shared by both builds,
 * use only helpers a 5.10 kernel has, or the wrappers below:
 *   vigil_current_task()     bpf_get_current_task_btf() is 5.11+
 *   vigil_path_resolve_at()  bpf_loop() is 5.17+: the compat build walks in a bounded loop
 * Program-specific features newer than 5.10 (bpf_ima_file_hash, kfuncs) belong in
 * their own program, which userspace leaves unloaded where the kernel lacks them.
 */
#ifdef VIGIL_COMPAT
#define vigil_current_task() ((struct task_struct *)bpf_get_current_task())
#else
#define vigil_current_task() ((struct task_struct *)bpf_get_current_task_btf())
#endif

/* Userspace resizes this before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_stats SEC(".maps");

static __always_inline void vigil_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&vigil_stats, &stat);
	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/*
 * Wake-ups of the reader. Left alone, the kernel wakes the reader for each
 * record that finds it caught up: an agent that keeps up is woken once per
 * record. When userspace sets vigil_wakeup[0].every to N > 0 bytes (src/sensors/
 * bpf-sensor.ts, before attaching), records go in with BPF_RB_NO_WAKEUP and only
 * the record that takes the unread data across a multiple of N forces a
 * wake-up. In between, the reader drains on a timer (src/kernel/ringbuf.ts) that
 * runs only while records come: it stops after a period without any. So that a
 * record after such a quiet spell is not left unread, the first record after
 * quiet_ns without records (userspace: half the timer's period) forces a wake-up
 * too; the reader starts its timer again then. last_ns is written only when it
 * is quiet_ns / 8 old, so busy CPUs do not all write one cache line per record;
 * a stale last_ns only makes a wake-up likelier. 0 (never set: the exec guard's
 * reader, benchmarks) keeps the kernel's default.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_wakeup_cfg);
} vigil_wakeup SEC(".maps");

static __always_inline __u64 vigil_wakeup_flags(__u64 size)
{
	__u32 zero = 0;
	struct vigil_wakeup_cfg *w = bpf_map_lookup_elem(&vigil_wakeup, &zero);
	if (!w || !w->every)
		return 0;
	__u64 quiet = w->quiet_ns;
	if (quiet) {
		__u64 now = bpf_ktime_get_ns();
		__u64 since = now - w->last_ns;
		if (since >= quiet / 8)
			w->last_ns = now;
		if (since >= quiet) {
			vigil_count(VIGIL_STAT_WAKEUP_QUIET);
			return BPF_RB_FORCE_WAKEUP;
		}
	}
	__u64 n = w->every;
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	/* 8 bytes of record header, rounded up to 8 like the kernel's slots */
	__u64 after = avail + ((size + 8 + 7) & ~7ULL);
	if (avail / n == after / n)
		return BPF_RB_NO_WAKEUP;
	vigil_count(VIGIL_STAT_WAKEUP);
	return BPF_RB_FORCE_WAKEUP;
}

/* Submit a record built elsewhere (per-CPU scratch); counts the loss on failure. */
static __always_inline long vigil_output(void *rec, __u64 size)
{
	long err = bpf_ringbuf_output(&events, rec, size, vigil_wakeup_flags(size));
	if (err)
		vigil_count(VIGIL_STAT_RB_FULL);
	return err;
}

static __always_inline void vigil_hdr_init(struct vigil_hdr *h, __u16 type, __u32 size)
{
	h->type = type;
	h->version = VIGIL_ABI_VERSION;
	h->_pad0 = 0;
	h->size = size;
	h->ktime_ns = bpf_ktime_get_boot_ns();
}

static __always_inline void vigil_task_fill(struct vigil_task *t, struct task_struct *task)
{
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	t->pid = BPF_CORE_READ(task, pid);
	t->tgid = BPF_CORE_READ(task, tgid);
	t->ppid = BPF_CORE_READ(parent, tgid);
	t->uid = BPF_CORE_READ(task, cred, uid.val);
	t->gid = BPF_CORE_READ(task, cred, gid.val);
	t->euid = BPF_CORE_READ(task, cred, euid.val);
	if (bpf_core_field_exists(task->loginuid)) {
		t->loginuid = BPF_CORE_READ(task, loginuid.val);
		t->sessionid = BPF_CORE_READ(task, sessionid);
	} else {
		t->loginuid = (__u32)-1;
		t->sessionid = (__u32)-1;
	}
	t->start_ns = BPF_CORE_READ(leader, start_boottime);
	t->parent_start_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	t->cgroup_id = bpf_get_current_cgroup_id();
	BPF_CORE_READ_STR_INTO(&t->comm, task, comm);
}

/*
 * Path walking, the in-kernel equivalent of d_path(): follow d_parent up to the
 * mount root, cross to the parent mount at mnt_mountpoint, stop at the root of
 * the mount namespace. Components are written backwards into a per-CPU buffer.
 */
#define VIGIL_PATHBUF_SIZE (VIGIL_PATH_MAX * 2)
#define VIGIL_PATH_MASK (VIGIL_PATH_MAX - 1)

struct vigil_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	/* optional: stop here (the task's root, as d_path does); NULL = namespace root */
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 pos;
	bool done;
	bool truncated;
};

struct vigil_pathbuf {
	char buf[VIGIL_PATHBUF_SIZE];
#ifdef VIGIL_COMPAT
	/*
	 * The compat walk keeps its state here, not on the stack: the verifier does
	 * not track values in map memory, so every iteration of the bounded loop
	 * starts from one state and verification stays linear in the depth.
	 */
	struct vigil_walk walk;
#endif
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_pathbuf);
} vigil_pathbufs SEC(".maps");


/*
 * One step of the walk: 0 = go on, 1 = stop. The same body runs as the bpf_loop
 * callback (verified once, not per iteration) and, in the compat build, inside
 * a bounded loop: both builds resolve the same paths to the same depth.
 */
static __always_inline long vigil_walk_step_in(struct vigil_walk *w, struct vigil_pathbuf *pb)
{
	/* locals, not w->...: CO-RE relocations must see kernel types only */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

	if (w->root_dentry && dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = true; /* the task's root (chroot) */
		return 1;
	}

	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (dentry != mnt_root || mnt == mnt_parent) {
			w->done = true; /* namespace root (or a detached tree) */
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		w->vfsmnt = (struct vfsmount *)((void *)mnt_parent + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}

	struct qstr name = BPF_CORE_READ(dentry, d_name);
	__u32 nl = name.len & 255;
	w->dentry = parent;
	if (nl == 0)
		return 0;
	__u32 pos = w->pos;
	if (pos < nl + 2 || pos > VIGIL_PATH_MAX) {
		w->truncated = true;
		w->done = true;
		return 1;
	}
	pos -= nl + 1;
	pb->buf[pos & VIGIL_PATH_MASK] = '/';
	bpf_probe_read_kernel(&pb->buf[(pos + 1) & VIGIL_PATH_MASK], nl, name.name);
	w->pos = pos;
	return 0;
}

#ifndef VIGIL_COMPAT
/* bpf_loop callback */
static long vigil_walk_step(__u64 index, void *ctx)
{
	__u32 zero = 0;
	struct vigil_pathbuf *pb = bpf_map_lookup_elem(&vigil_pathbufs, &zero);
	if (!pb)
		return 1;
	return vigil_walk_step_in(ctx, pb);
}
#else
#define VIGIL_WALK_POS 0xffff
#define VIGIL_WALK_DONE (1 << 16)
#define VIGIL_WALK_TRUNCATED (1 << 17)

/*
 * The compat walk: a bounded loop over the same step, in a global function.
 * The verifier checks a global function once, on its own (5.6+), instead of at
 * every call site and for every path that leads there, and the walk's state
 * lives in map memory (untracked), so each iteration starts from one state:
 * verification stays linear in VIGIL_PATH_DEPTH. 5.10 passes only scalars to
 * global functions: the kernel pointers travel as numbers (they are only ever
 * read through bpf_probe_read_kernel). Returns pos | VIGIL_WALK_DONE |
 * VIGIL_WALK_TRUNCATED, or -1 without the per-CPU buffer.
 */
__noinline long vigil_path_walk(__u64 dentry, __u64 vfsmnt, __u64 root_dentry, __u64 root_mnt)
{
	__u32 zero = 0;
	struct vigil_pathbuf *pb = bpf_map_lookup_elem(&vigil_pathbufs, &zero);
	if (!pb)
		return -1;
	struct vigil_walk *w = &pb->walk;
	w->dentry = (struct dentry *)dentry;
	w->vfsmnt = (struct vfsmount *)vfsmnt;
	w->mnt = (struct mount *)(vfsmnt - bpf_core_field_offset(struct mount, mnt));
	w->root_dentry = (struct dentry *)root_dentry;
	w->root_mnt = (struct vfsmount *)root_mnt;
	w->pos = VIGIL_PATH_MAX;
	w->done = false;
	w->truncated = false;
	for (__u32 i = 0; i < VIGIL_PATH_DEPTH; i++) {
		if (vigil_walk_step_in(w, pb))
			break;
	}
	long r = w->pos & VIGIL_WALK_POS;
	if (w->done)
		r |= VIGIL_WALK_DONE;
	if (w->truncated)
		r |= VIGIL_WALK_TRUNCATED;
	return r;
}
#endif

/*
 * Resolve `path` into dst (which must have VIGIL_PATH_MAX bytes of room) and
 * return the length. Sets *truncated when the path was deeper than
 * VIGIL_PATH_DEPTH components or longer than VIGIL_PATH_MAX.
 */
static __always_inline __u32 vigil_path_resolve_at(const struct path *path, const struct path *root, char *dst,
						   bool *truncated)
{
	__u32 zero = 0;
	struct dentry *root_dentry = NULL;
	struct vfsmount *root_mnt = NULL;
	if (root) {
		root_dentry = BPF_CORE_READ(root, dentry);
		root_mnt = BPF_CORE_READ(root, mnt);
	}
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);
	__u32 pos;
	bool done, trunc;

#ifdef VIGIL_COMPAT
	long r = vigil_path_walk((__u64)dentry, (__u64)vfsmnt, (__u64)root_dentry, (__u64)root_mnt);
	if (r < 0)
		return 0;
	pos = r & VIGIL_WALK_POS;
	done = r & VIGIL_WALK_DONE;
	trunc = r & VIGIL_WALK_TRUNCATED;
#else
	struct vigil_walk w = {
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.mnt = (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt)),
		.root_dentry = root_dentry,
		.root_mnt = root_mnt,
		.pos = VIGIL_PATH_MAX,
	};
	bpf_loop(VIGIL_PATH_DEPTH, vigil_walk_step, &w, 0);
	pos = w.pos;
	done = w.done;
	trunc = w.truncated;
#endif
	struct vigil_pathbuf *pb = bpf_map_lookup_elem(&vigil_pathbufs, &zero);
	if (!pb)
		return 0;
	if (!done || trunc)
		*truncated = true; /* the head of the path is missing */
	if (pos >= VIGIL_PATH_MAX) {
		pos = VIGIL_PATH_MAX - 1;
		pb->buf[pos & VIGIL_PATH_MASK] = '/';
	}
	__u32 len = (VIGIL_PATH_MAX - pos) & VIGIL_PATH_MASK;
	bpf_probe_read_kernel(dst, len, &pb->buf[pos & VIGIL_PATH_MASK]);
	return len;
}

/*
 * Keep a record struct in the object's BTF even when it is only a local
 * variable, so userspace can check its decoder against it (8 bytes of .bss).
 */
#define VIGIL_BTF_KEEP(name) struct name *__vigil_btf_##name __attribute__((unused))
/* Same for an enum, so userspace checks its constants against the BTF too. */
#define VIGIL_BTF_KEEP_ENUM(name) enum name __vigil_btf_enum_##name __attribute__((unused))

#endif /* VIGIL_BPF_H */
