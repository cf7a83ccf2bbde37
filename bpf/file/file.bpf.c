// SPDX-License-Identifier: GPL-2.0-only
/*
 * file sensor: creation and opens for write, unlink, rename (both paths), chmod
 * that sets an exec bit, truncate, and (for chosen prefixes) read-only opens,
 * from syscall tracepoints (no kprobes, fentry or LSM needed: Linux 5.8+).
 *
 * At sys_enter the arguments are stashed per thread; at sys_exit the result is
 * known and the record is built:
 *  - an open that returned an fd, fchmod and ftruncate: the path of the file
 *    itself, walked in the kernel from the fd (exact, symlinks resolved);
 *  - everything else (unlink, rename, chmod, truncate, failed opens): the
 *    directory (cwd or dirfd) walked in the kernel + the name as the caller gave
 *    it (userspace normalizes "." and ".."; flagged as joined).
 * Volume control in the kernel: the agent's own activity, include/exclude/read
 * prefixes (LPM trie, longest prefix decides), repeats of the same (process,
 * inode, op) within a window, failed syscalls by class. Each is counted.
 * Records: struct vigil_file in file.h.
 */
#include "vigil_bpf.h"
#include "file.h"
#include "vigil_scope.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_file);
VIGIL_BTF_KEEP(vigil_file_settings);
VIGIL_BTF_KEEP(vigil_file_prefix_key);
VIGIL_BTF_KEEP_ENUM(vigil_file_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_file_op);
VIGIL_BTF_KEEP_ENUM(vigil_file_flags);
VIGIL_BTF_KEEP_ENUM(vigil_file_stat);
VIGIL_BTF_KEEP_ENUM(vigil_file_prefix_flags);
VIGIL_BTF_KEEP_ENUM(vigil_file_failed);
VIGIL_BTF_KEEP(vigil_file_mark);
VIGIL_BTF_KEEP(vigil_taint);
VIGIL_BTF_KEEP(vigil_mark_key);
VIGIL_BTF_KEEP(vigil_mark);
VIGIL_BTF_KEEP_ENUM(vigil_file_prov_flags);
VIGIL_BTF_KEEP_ENUM(vigil_taint_flags);

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_ACCMODE 00000003
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define FMODE_CREATED 0x100000
#define S_IXUGO 00111
#define S_IFMT 00170000
#define S_IFREG 0100000
#define EPERM 1
#define EACCES 13
#define EROFS 30

struct file_pending {
	__u64 name;  /* user pointers */
	__u64 name2;
	__s32 dfd;
	__s32 dfd2;
	__s32 fd;    /* fd-based ops: the fd; -1 otherwise */
	__u32 op;
	__u32 open_flags;
	__u32 mode;
	__u32 old_mode;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct file_pending);
} file_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_file_settings);
} file_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_file_prefix_key);
	__type(value, __u32); /* enum vigil_file_prefix_flags */
} file_prefixes SEC(".maps");

struct dedup_key {
	__u32 tgid;
	__u32 op;
	__u32 dev;
	__u32 _pad0;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dedup_key);
	__type(value, __u64); /* ktime of the last report */
} file_dedup SEC(".maps");

struct file_scratch {
	struct vigil_file rec;
	char data[VIGIL_PATH_MAX * 3]; /* path, path2 (+ room for fixed-size copies) */
	char name[VIGIL_PATH_MAX];     /* the caller's name, copied from user memory */
	struct vigil_file_prefix_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_scratch);
} file_scratch SEC(".maps");

struct mark_scratch {
	struct vigil_file_mark m;
	char data[VIGIL_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mark_scratch);
} mark_scratch SEC(".maps");

static __always_inline struct vigil_file_settings *settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&file_settings, &zero);
}

static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/* The struct file behind a descriptor of the current task (NULL when none). */
static __always_inline struct file *fd_file(struct task_struct *task, __s32 fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline int stash(__u32 op, __s32 dfd, const void *name, __s32 dfd2, const void *name2, __s32 fd,
				 __u32 open_flags, __u32 mode, __u32 old_mode, __u32 flags)
{
	struct vigil_file_settings *s = settings();
	if (!s)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) == s->self_tgid) {
		vigil_count(VIGIL_STAT_FILE_SELF);
		return 0;
	}
	if (!vigil_in_scope_tgid(id >> 32))
		return 0; /* outside a watched tree (vigil_scope.h) */
	struct file_pending p = {
		.name = (__u64)name,
		.name2 = (__u64)name2,
		.dfd = dfd,
		.dfd2 = dfd2,
		.fd = fd,
		.op = op,
		.open_flags = open_flags,
		.mode = mode,
		.old_mode = old_mode,
		.flags = flags,
	};
	if (bpf_map_update_elem(&file_pending, &id, &p, BPF_ANY))
		vigil_count(VIGIL_STAT_FILE_PENDING_LOST);
	return 0;
}

static __always_inline int on_open(__s32 dfd, const void *name, __u32 oflags, __u32 mode)
{
	bool write = (oflags & O_ACCMODE) || (oflags & (O_CREAT | O_TRUNC));
	if (!write) {
		struct vigil_file_settings *s = settings();
		if (!s || (!s->read_prefixes && !s->prov_flags))
			return 0; /* reads are off: nothing to stash, nothing to walk */
	}
	return stash(write ? VIGIL_FOP_OPEN_WRITE : VIGIL_FOP_OPEN_READ, dfd, name, 0, 0, -1, oflags, mode, 0, 0);
}

/*
 * The caller's name, made absolute: as given when it starts with '/', else
 * the directory (cwd or dirfd) resolved in the kernel + '/' + the name.
 * dst must have 2 * VIGIL_PATH_MAX bytes of room. Returns the length.
 */
static __always_inline __u32 build_name(struct task_struct *task, struct path *root, __s32 dfd, const void *name,
					char *dst, char *tmp, __u32 *flags, __u32 trunc_flag, __u32 joined_flag)
{
	long n = bpf_probe_read_user_str(tmp, VIGIL_PATH_MAX, name);
	if (n <= 0) {
		*flags |= VIGIL_FF_PATH_FAULT;
		return 0;
	}
	__u32 nl = (n - 1) & VIGIL_PATH_MASK;
	if (n >= VIGIL_PATH_MAX)
		*flags |= trunc_flag; /* the name filled the buffer: maybe cut */
	if (tmp[0] == '/') {
		bpf_probe_read_kernel(dst, VIGIL_PATH_MAX, tmp);
		return nl;
	}
	struct path dir;
	if (dfd == AT_FDCWD) {
		dir = BPF_CORE_READ(task, fs, pwd);
	} else {
		struct file *f = fd_file(task, dfd);
		if (!f) {
			/* a bad dirfd: the syscall failed with EBADF; keep the name */
			bpf_probe_read_kernel(dst, VIGIL_PATH_MAX, tmp);
			*flags |= joined_flag;
			return nl;
		}
		dir = BPF_CORE_READ(f, f_path);
	}
	bool t = false;
	__u32 len = vigil_path_resolve_at(&dir, root, dst, &t) & VIGIL_PATH_MASK;
	if (t)
		*flags |= trunc_flag;
	if (len == 1)
		len = 0; /* the root directory: "/" + name, not "//name" */
	dst[len & VIGIL_PATH_MASK] = '/';
	bpf_probe_read_kernel(dst + ((len + 1) & VIGIL_PATH_MASK), VIGIL_PATH_MAX, tmp);
	__u32 total = len + 1 + nl;
	if (total > VIGIL_PATH_MAX - 1) {
		total = VIGIL_PATH_MAX - 1;
		*flags |= trunc_flag;
	}
	*flags |= joined_flag;
	return total;
}

/* Flags of the longest configured prefix of path (0: none). */
static __always_inline __u32 prefix_flags(struct file_scratch *s, const char *path, __u32 len)
{
	if (len > VIGIL_FILE_PREFIX_MAX)
		len = VIGIL_FILE_PREFIX_MAX;
	s->key.prefixlen = len * 8;
	bpf_probe_read_kernel(s->key.data, VIGIL_FILE_PREFIX_MAX, path);
	__u32 *v = bpf_map_lookup_elem(&file_prefixes, &s->key);
	return v ? *v : 0;
}

static __always_inline bool wanted(struct vigil_file_settings *cfg, __u32 op, __u32 pf)
{
	/* userspace folds inherited verdicts into each entry (src/sensors/file/prefixes.ts) */
	if (op == VIGIL_FOP_OPEN_READ)
		return pf & VIGIL_FP_READ;
	if (pf & VIGIL_FP_EXCLUDE)
		return false;
	if (cfg->has_include && !(pf & VIGIL_FP_INCLUDE))
		return false;
	return true;
}

/* Provenance: a read of a marked regular file makes the reader's writes derived from it. */
static __always_inline void prov_read(struct vigil_file_settings *cfg, __u32 tgid, __u32 dev, __u64 ino)
{
	struct vigil_mark_key k = { .dev = dev, .ino = ino };
	struct vigil_mark *m = bpf_map_lookup_elem(&vigil_marks, &k);
	if (!m)
		return;
	__u32 depth = m->depth + 1;
	if (depth > cfg->prov_max_depth) {
		vigil_count(VIGIL_STAT_FILE_DEPTH);
		return;
	}
	__u64 now = bpf_ktime_get_boot_ns();
	struct vigil_taint *t = bpf_map_lookup_elem(&vigil_taint, &tgid);
	if (t) {
		t->file_ns = now;
		t->src_dev = dev;
		t->src_ino = ino;
		t->depth = depth;
		t->flags |= VIGIL_TAINT_FILE;
	} else {
		struct vigil_taint n = { .file_ns = now, .src_dev = dev, .src_ino = ino, .depth = depth, .flags = VIGIL_TAINT_FILE };
		if (bpf_map_update_elem(&vigil_taint, &tgid, &n, BPF_ANY)) {
			vigil_count(VIGIL_STAT_FILE_TAINT_LOST);
			return;
		}
	}
	vigil_count(VIGIL_STAT_FILE_DERIVED);
}

/*
 * Provenance: a tainted process opened a regular file for writing. Mark the
 * inode now (exec right after the download is covered without userspace) and
 * tell userspace, which writes the origin record (xattr, store).
 */
static __always_inline void prov_write(struct vigil_file_settings *cfg, struct task_struct *task, struct vigil_taint *t,
				       __u32 dev, __u64 ino, const char *path, __u32 len, __u32 flags)
{
	/* a network peer makes an origin (depth 0); else the mark is derived from the file read last */
	__u32 depth = (t->flags & VIGIL_TAINT_NET) ? 0 : t->depth;
	if (depth > cfg->prov_max_depth) {
		vigil_count(VIGIL_STAT_FILE_DEPTH);
		return;
	}
	__u64 now = bpf_ktime_get_boot_ns();
	struct vigil_mark_key k = { .dev = dev, .ino = ino };
	struct vigil_mark *old = bpf_map_lookup_elem(&vigil_marks, &k);
	/*
	 * Repeated writes to one file are marked once per dedup window. Never a file
	 * this open created: a mark found then was left by a deleted file whose inode
	 * number was reused (ext4 hands it to the next file at once), and the new
	 * content needs its own mark and origin record.
	 */
	if (old && !(flags & VIGIL_FF_CREATED) && old->marked_ns && old->depth == depth && old->flags == t->flags && cfg->dedup_ns &&
	    now - old->marked_ns < cfg->dedup_ns) {
		vigil_count(VIGIL_STAT_FILE_MARK_DEDUP);
		return;
	}
	struct vigil_mark m = { .marked_ns = now, .depth = depth, .flags = t->flags };
	if (bpf_map_update_elem(&vigil_marks, &k, &m, BPF_ANY))
		vigil_count(VIGIL_STAT_FILE_MARK_LOST);

	__u32 zero = 0;
	struct mark_scratch *ms = bpf_map_lookup_elem(&mark_scratch, &zero);
	if (!ms)
		return;
	struct vigil_file_mark *r = &ms->m;
	len &= VIGIL_PATH_MASK;
	bpf_probe_read_kernel(ms->data, VIGIL_PATH_MAX, path);
	r->ino = ino;
	r->dev = dev;
	r->path_len = len;
	r->flags = flags;
	r->depth = depth;
	__builtin_memcpy(&r->taint, t, sizeof(r->taint));
	vigil_task_fill(&r->task, task);
	__u64 size = sizeof(*r) + len;
	vigil_hdr_init(&r->hdr, VIGIL_REC_FILE_MARK, size);
	if (!vigil_output(r, size))
		vigil_count(VIGIL_STAT_FILE_MARK);
}

static __always_inline int on_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct file_pending *pp = bpf_map_lookup_elem(&file_pending, &id);
	if (!pp)
		return 0;
	struct file_pending p = *pp;
	bpf_map_delete_elem(&file_pending, &id);

	struct vigil_file_settings *cfg = settings();
	if (!cfg)
		return 0;
	if (ret < 0) {
		if (p.op == VIGIL_FOP_OPEN_READ)
			return 0;
		bool denied = ret == -EPERM || ret == -EACCES || ret == -EROFS;
		if (cfg->failed == VIGIL_FAILED_NONE || (cfg->failed == VIGIL_FAILED_DENIED && !denied)) {
			vigil_count(VIGIL_STAT_FILE_FAILED_SKIPPED);
			return 0;
		}
	}

	__u32 zero = 0;
	struct file_scratch *s = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!s)
		return 0;
	struct vigil_file *r = &s->rec;
	struct task_struct *task = current_task();
	struct path root = BPF_CORE_READ(task, fs, root);
	__u32 flags = p.flags;
	__u32 len = 0, len2 = 0;
	r->dev = 0;
	r->ino = 0;

	/* the file itself, when there is a descriptor for it */
	__s32 fd = p.fd;
	if ((p.op == VIGIL_FOP_OPEN_WRITE || p.op == VIGIL_FOP_OPEN_READ) && ret >= 0)
		fd = ret;
	struct file *f = fd_file(task, fd);
	struct vigil_taint *taint = NULL;
	if (cfg->prov_flags && f && ret >= 0 && (p.op == VIGIL_FOP_OPEN_WRITE || p.op == VIGIL_FOP_OPEN_READ) &&
	    (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) == S_IFREG) {
		__u32 tgid = id >> 32;
		if (p.op == VIGIL_FOP_OPEN_READ) {
			prov_read(cfg, tgid, BPF_CORE_READ(f, f_inode, i_sb, s_dev), BPF_CORE_READ(f, f_inode, i_ino));
			if (!cfg->read_prefixes)
				return 0; /* read only for provenance: no path walk, no record */
		} else {
			taint = bpf_map_lookup_elem(&vigil_taint, &tgid);
			/*
			 * A file this open created is new content: a mark on its inode
			 * number is left from a deleted file whose inode was reused
			 * (without LSM no hook tells when an inode is freed).
			 */
			if (!taint && (BPF_CORE_READ(f, f_mode) & FMODE_CREATED)) {
				struct vigil_mark_key k = { .dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev), .ino = BPF_CORE_READ(f, f_inode, i_ino) };
				if (!bpf_map_delete_elem(&vigil_marks, &k))
					vigil_count(VIGIL_STAT_FILE_MARK_STALE);
			}
		}
	} else if (p.op == VIGIL_FOP_OPEN_READ && !cfg->read_prefixes) {
		return 0;
	}
	if (f) {
		struct path fpath = BPF_CORE_READ(f, f_path);
		bool t = false;
		len = vigil_path_resolve_at(&fpath, &root, s->data, &t) & VIGIL_PATH_MASK;
		flags |= VIGIL_FF_PATH_KERNEL;
		if (t)
			flags |= VIGIL_FF_PATH_TRUNCATED;
		r->ino = BPF_CORE_READ(f, f_inode, i_ino);
		r->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
		if (BPF_CORE_READ(f, f_mode) & FMODE_CREATED)
			flags |= VIGIL_FF_CREATED;
	} else {
		len = build_name(task, &root, p.dfd, (const void *)p.name, s->data, s->name, &flags, VIGIL_FF_PATH_TRUNCATED,
				 VIGIL_FF_PATH_JOINED) & VIGIL_PATH_MASK;
	}
	if (p.op == VIGIL_FOP_RENAME)
		len2 = build_name(task, &root, p.dfd2, (const void *)p.name2, s->data + len, s->name, &flags,
				  VIGIL_FF_PATH2_TRUNCATED, VIGIL_FF_PATH2_JOINED) & VIGIL_PATH_MASK;

	/* procfs and sysfs files are not content anyone downloads: not marked */
	if (taint && !(len >= 6 && s->data[0] == '/' && s->data[1] == 'p' && s->data[2] == 'r' && s->data[3] == 'o' && s->data[4] == 'c' && s->data[5] == '/') &&
	    !(len >= 5 && s->data[0] == '/' && s->data[1] == 's' && s->data[2] == 'y' && s->data[3] == 's' && s->data[4] == '/'))
		prov_write(cfg, task, taint, r->dev, r->ino, s->data, len, flags);

	/* prefixes: a rename is kept when either side is wanted */
	bool keep = wanted(cfg, p.op, prefix_flags(s, s->data, len));
	if (!keep && p.op == VIGIL_FOP_RENAME)
		keep = wanted(cfg, p.op, prefix_flags(s, s->data + len, len2));
	if (!keep) {
		vigil_count(VIGIL_STAT_FILE_FILTERED);
		return 0;
	}

	/*
	 * The same process opening the same inode the same way again: once per
	 * window (a logger reopening its file, an editor's saves). Changes (chmod,
	 * truncate, rename, delete) are always reported.
	 */
	if (cfg->dedup_ns && r->ino && ret >= 0 && (p.op == VIGIL_FOP_OPEN_WRITE || p.op == VIGIL_FOP_OPEN_READ)) {
		struct dedup_key k = { .tgid = id >> 32, .op = p.op, .dev = r->dev, .ino = r->ino };
		__u64 now = bpf_ktime_get_boot_ns();
		__u64 *last = bpf_map_lookup_elem(&file_dedup, &k);
		/* a file this open created is new, even if its inode number was just freed */
		if (last && !(flags & VIGIL_FF_CREATED) && now - *last < cfg->dedup_ns) {
			vigil_count(VIGIL_STAT_FILE_DEDUP);
			return 0;
		}
		bpf_map_update_elem(&file_dedup, &k, &now, BPF_ANY);
	}

	vigil_task_fill(&r->task, task);
	r->result = ret;
	r->op = p.op;
	r->flags = flags;
	r->open_flags = p.open_flags;
	r->mode = p.mode;
	r->old_mode = p.old_mode;
	r->path_len = len;
	r->path2_len = len2;
	if (flags & (VIGIL_FF_PATH_TRUNCATED | VIGIL_FF_PATH2_TRUNCATED))
		vigil_count(VIGIL_STAT_TRUNCATED);
	__u64 size = sizeof(*r) + len + len2;
	if (size > sizeof(*r) + 2 * VIGIL_PATH_MAX)
		size = sizeof(*r) + 2 * VIGIL_PATH_MAX;
	vigil_hdr_init(&r->hdr, VIGIL_REC_FILE, size);
	if (!vigil_output(r, size))
		vigil_count(VIGIL_STAT_FILE_EVENTS);
	return 0;
}

#define ARG(i) ((const void *)ctx->args[i])

/*
 * Every sys_exit program tail-calls this one: the record is built in one
 * program, verified once (fifteen inlined copies took the verifier ~15x longer).
 * Not attached itself (bare section).
 */
SEC("tracepoint")
int vigil_file_finish(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int(void *));
} file_tail SEC(".maps") = {
	.values = { [0] = (void *)&vigil_file_finish },
};

#define EXIT_PROG(sys)                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                            \
	int vigil_file_##sys##_exit(struct trace_event_raw_sys_exit *ctx) \
	{                                                                     \
		bpf_tail_call(ctx, &file_tail, 0);                            \
		vigil_count(VIGIL_STAT_FILE_TAIL_FAILED);                     \
		return 0;                                                     \
	}

SEC("tracepoint/syscalls/sys_enter_open")
int vigil_file_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_open(AT_FDCWD, ARG(0), ctx->args[1], ctx->args[2]);
}
EXIT_PROG(open)

SEC("tracepoint/syscalls/sys_enter_openat")
int vigil_file_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_open(ctx->args[0], ARG(1), ctx->args[2], ctx->args[3]);
}
EXIT_PROG(openat)

SEC("tracepoint/syscalls/sys_enter_openat2")
int vigil_file_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), ARG(2));
	return on_open(ctx->args[0], ARG(1), how.flags, how.mode);
}
EXIT_PROG(openat2)

SEC("tracepoint/syscalls/sys_enter_creat")
int vigil_file_creat(struct trace_event_raw_sys_enter *ctx)
{
	return on_open(AT_FDCWD, ARG(0), O_CREAT | O_TRUNC | 1 /* O_WRONLY */, ctx->args[1]);
}
EXIT_PROG(creat)

SEC("tracepoint/syscalls/sys_enter_unlink")
int vigil_file_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return stash(VIGIL_FOP_UNLINK, AT_FDCWD, ARG(0), 0, 0, -1, 0, 0, 0, 0);
}
EXIT_PROG(unlink)

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int vigil_file_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	__u32 at = ctx->args[2];
	return stash(VIGIL_FOP_UNLINK, ctx->args[0], ARG(1), 0, 0, -1, at, 0, 0, at & AT_REMOVEDIR ? VIGIL_FF_DIR : 0);
}
EXIT_PROG(unlinkat)

SEC("tracepoint/syscalls/sys_enter_rename")
int vigil_file_rename(struct trace_event_raw_sys_enter *ctx)
{
	return stash(VIGIL_FOP_RENAME, AT_FDCWD, ARG(0), AT_FDCWD, ARG(1), -1, 0, 0, 0, 0);
}
EXIT_PROG(rename)

SEC("tracepoint/syscalls/sys_enter_renameat")
int vigil_file_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return stash(VIGIL_FOP_RENAME, ctx->args[0], ARG(1), ctx->args[2], ARG(3), -1, 0, 0, 0, 0);
}
EXIT_PROG(renameat)

SEC("tracepoint/syscalls/sys_enter_renameat2")
int vigil_file_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return stash(VIGIL_FOP_RENAME, ctx->args[0], ARG(1), ctx->args[2], ARG(3), -1, ctx->args[4], 0, 0, 0);
}
EXIT_PROG(renameat2)

/* chmod by name: the old mode is not known here; reported when the new mode has an exec bit */
SEC("tracepoint/syscalls/sys_enter_chmod")
int vigil_file_chmod(struct trace_event_raw_sys_enter *ctx)
{
	__u32 mode = ctx->args[1];
	if (!(mode & S_IXUGO))
		return 0;
	return stash(VIGIL_FOP_CHMOD, AT_FDCWD, ARG(0), 0, 0, -1, 0, mode, 0, 0);
}
EXIT_PROG(chmod)

SEC("tracepoint/syscalls/sys_enter_fchmodat")
int vigil_file_fchmodat(struct trace_event_raw_sys_enter *ctx)
{
	__u32 mode = ctx->args[2];
	if (!(mode & S_IXUGO))
		return 0;
	return stash(VIGIL_FOP_CHMOD, ctx->args[0], ARG(1), 0, 0, -1, 0, mode, 0, 0);
}
EXIT_PROG(fchmodat)

/* Linux 6.6+: attached only where the tracepoint exists (userspace checks) */
SEC("tracepoint/syscalls/sys_enter_fchmodat2")
int vigil_file_fchmodat2(struct trace_event_raw_sys_enter *ctx)
{
	__u32 mode = ctx->args[2];
	if (!(mode & S_IXUGO))
		return 0;
	return stash(VIGIL_FOP_CHMOD, ctx->args[0], ARG(1), 0, 0, -1, ctx->args[3], mode, 0, 0);
}
EXIT_PROG(fchmodat2)

/* chmod of an open file: reported only when it adds an exec bit */
SEC("tracepoint/syscalls/sys_enter_fchmod")
int vigil_file_fchmod(struct trace_event_raw_sys_enter *ctx)
{
	__u32 mode = ctx->args[1];
	if (!(mode & S_IXUGO))
		return 0;
	struct file *f = fd_file(current_task(), ctx->args[0]);
	if (!f)
		return 0;
	__u32 old = BPF_CORE_READ(f, f_inode, i_mode);
	if (!(mode & ~old & S_IXUGO))
		return 0;
	return stash(VIGIL_FOP_CHMOD, AT_FDCWD, 0, 0, 0, ctx->args[0], 0, mode, old & 07777, VIGIL_FF_OLD_MODE);
}
EXIT_PROG(fchmod)

SEC("tracepoint/syscalls/sys_enter_truncate")
int vigil_file_truncate(struct trace_event_raw_sys_enter *ctx)
{
	return stash(VIGIL_FOP_TRUNCATE, AT_FDCWD, ARG(0), 0, 0, -1, 0, 0, 0, 0);
}
EXIT_PROG(truncate)

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int vigil_file_ftruncate(struct trace_event_raw_sys_enter *ctx)
{
	return stash(VIGIL_FOP_TRUNCATE, AT_FDCWD, 0, 0, 0, ctx->args[0], 0, 0, 0, 0);
}
EXIT_PROG(ftruncate)
