// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exec guard: decides in the kernel whether a file may run. One decision
 * (guard_file) on a `struct file *`, taken at four hooks:
 *
 *   lsm/bprm_check_security  execve of the file (a shebang script, then its interpreter)
 *   lsm/mmap_file            a PROT_EXEC mapping of the file: shared objects (LD_PRELOAD,
 *                            dlopen) and programs the dynamic loader maps (`ld.so FILE`)
 *   lsm/file_mprotect        PROT_EXEC added to a mapping of the file
 *   lsm/file_open            the file opened for reading by an interpreter (interp_inode:
 *                            `sh SCRIPT`, `python3 x.py`): reported, refused with
 *                            guard_settings.script_mode ENFORCE (enforcement.loader_guard)
 *
 * Deny rules live in hash maps (O(1) lookups, no string loops):
 *
 *   deny_inode  (s_dev, ino)           -> rule   the file itself (any name, hard links)
 *   deny_path   resolved path (256 B)  -> rule   whatever file sits at that path
 *   deny_name   basename of each path  -> 1      prefilter: walk the path only when
 *               rule (64 B)                       the file's name is in it
 *   deny_hash   sha256 digest          -> rule   any file with that content (IMA hash,
 *                                                 sleepable programs on bprm_check_security
 *                                                 and mmap_file, cached per inode)
 *
 * Per rule and globally (guard_settings) the mode is monitor (allow, report
 * would_block) or enforce (-EPERM, report exec_blocked). PID 1 and vigil itself
 * (allow_tgid: the agent, its children; allow_inode: its executable) are never
 * blocked (allow_tgid entries carry the process start time, so a reused pid is
 * not exempt). Records: struct vigil_exec_decision (include/vigil.h).
 *
 * Provenance (docs/provenance.md): with guard_settings.prov_mode set, a file in
 * vigil_marks (key as the sensors key it: struct vigil_mark_key) that is not in
 * prov_allow (inodes userspace matched to an allow rule, for every uid) nor in
 * prov_allow_uid for the exec's uid (struct vigil_mark_uid_key: rules with an exec
 * uid; the uid is current_uid(), the real uid of the task, as in the decision
 * record's task.uid) is refused (ENFORCE) or reported (MONITOR, SOAK).
 * bprm_check_security runs for a shebang script itself too (then again for its
 * interpreter): a marked script is covered.
 *
 * The 6.12+ verifier wants an LSM return value provably in [-4095, 0]: every
 * branch returns a constant. A previous BPF program's denial (`ret`) is kept.
 */
#include "vigil_bpf.h"
/* vigil_marks only (the marked inodes): the agent's sensors reuse this pinned map */
#define VIGIL_MARKS_ONLY
#include "vigil_taint.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define HASH_ALGO_SHA256 4 /* enum hash_algo */

VIGIL_BTF_KEEP(vigil_exec_decision);
VIGIL_BTF_KEEP(vigil_guard_settings);
VIGIL_BTF_KEEP(vigil_guard_inode_key);
VIGIL_BTF_KEEP(vigil_guard_rule);
VIGIL_BTF_KEEP(vigil_guard_name_key);
VIGIL_BTF_KEEP(vigil_mark_key);
VIGIL_BTF_KEEP(vigil_mark);
VIGIL_BTF_KEEP(vigil_mark_uid_key);
VIGIL_BTF_KEEP(vigil_mark_xattr);

/* marked inodes an allow rule matched (userspace resolves the rules): value = rule id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MARKS_MAX);
	__type(key, struct vigil_mark_key);
	__type(value, __u64);
} prov_allow SEC(".maps");

/* marked inodes an allow rule on the exec uid matched, for that uid: (dev, ino, uid) -> rule id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MARKS_MAX);
	__type(key, struct vigil_mark_uid_key);
	__type(value, __u64);
} prov_allow_uid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_guard_inode_key);
	__type(value, struct vigil_guard_rule);
} deny_inode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, char[VIGIL_GUARD_PATH_KEY]);
	__type(value, struct vigil_guard_rule);
} deny_path SEC(".maps");

/* basenames of the deny_path entries (value unused: presence is the answer) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_guard_name_key);
	__type(value, __u32);
} deny_name SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u8[32]);
	__type(value, struct vigil_guard_rule);
} deny_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_guard_settings);
} guard_settings SEC(".maps");

/* tgid -> its start time in clock ticks (/proc/PID/stat field 22): a reused pid does not match */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} allow_tgid SEC(".maps");

#define USER_HZ_NS (1000000000ULL / 100) /* x86 USER_HZ */

static __always_inline bool allowed_tgid(__u32 tgid, struct task_struct *leader)
{
	__u64 *ticks = bpf_map_lookup_elem(&allow_tgid, &tgid);
	if (!ticks)
		return false;
	return *ticks == BPF_CORE_READ(leader, start_boottime) / USER_HZ_NS;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct vigil_guard_inode_key);
	__type(value, __u32);
} allow_inode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_guard_hash_cache);
} hash_cache SEC(".maps");

/* Path key scratch (non-sleepable program only). */
struct guard_scratch {
	char path[VIGIL_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct guard_scratch);
} guard_scratch SEC(".maps");

#define DECISION_MAX (sizeof(struct vigil_exec_decision) + VIGIL_PATH_MAX)

static __always_inline void fill_ancestors(struct vigil_exec_decision *d, struct task_struct *task)
{
	struct task_struct *p = BPF_CORE_READ(task, real_parent);
	__u32 n = 0;

#pragma unroll
	for (int i = 0; i < VIGIL_GUARD_ANCESTORS; i++) {
		if (!p)
			break;
		__u32 tgid = BPF_CORE_READ(p, tgid);
		if (tgid == 0)
			break;
		d->ancestors[i].tgid = tgid;
		d->ancestors[i]._pad0 = 0;
		d->ancestors[i].start_ns = BPF_CORE_READ(p, group_leader, start_boottime);
		BPF_CORE_READ_STR_INTO(&d->ancestors[i].comm, p, comm);
		n++;
		if (tgid == 1)
			break;
		p = BPF_CORE_READ(p, real_parent);
	}
	d->n_ancestors = n;
}

/* mm->exe_file of the current process is this file: its exec was decided at bprm_check_security */
static __always_inline bool own_exe(struct file *file)
{
	struct task_struct *task = vigil_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	return exe && BPF_CORE_READ(exe, f_inode) == BPF_CORE_READ(file, f_inode);
}

/*
 * A rule matched `file` at `hook`: decide, report, return the verdict (1 = deny).
 * Never blocks PID 1 or vigil (its tgid, its children, its executable).
 */
static __always_inline int decide(struct file *file, __u32 hook, __u64 rule_id, __u32 mode,
				  const struct vigil_guard_inode_key *key, __u32 match,
				  const struct vigil_guard_settings *st)
{
	struct task_struct *task = vigil_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 flags = 0;
	__u32 action;

	/*
	 * The kernel maps the program it execs (and ld.so maps nothing of it again):
	 * that file was decided at bprm_check_security (allowed: monitor, exempt or
	 * allow rule), so its segments are not decided twice.
	 */
	if ((hook == VIGIL_HOOK_MMAP || hook == VIGIL_HOOK_MPROTECT) && own_exe(file))
		return 0;
	if (tgid == 1 || allowed_tgid(tgid, BPF_CORE_READ(task, group_leader)) ||
	    allowed_tgid(ptgid, BPF_CORE_READ(parent, group_leader)) || bpf_map_lookup_elem(&allow_inode, key))
		flags |= VIGIL_DF_EXEMPT;
	/* vigil itself reading a file (its interpreter is node) is not an exec route: no record */
	if (hook == VIGIL_HOOK_OPEN && (flags & VIGIL_DF_EXEMPT))
		return 0;
	/* the global mode (vigil deny) downgrades deny rules, not the provenance policy */
	if (mode == VIGIL_MODE_ENFORCE && st->mode == VIGIL_MODE_MONITOR && match != VIGIL_MATCH_PROVENANCE)
		flags |= VIGIL_DF_GLOBAL_MONITOR;
	/* a script read by an interpreter: refused only with script_mode ENFORCE (enforcement.loader_guard) */
	if (hook == VIGIL_HOOK_OPEN && st->script_mode != VIGIL_MODE_ENFORCE)
		flags |= VIGIL_DF_REPORT_ONLY;
	bool deny = mode == VIGIL_MODE_ENFORCE && !(flags & (VIGIL_DF_EXEMPT | VIGIL_DF_GLOBAL_MONITOR | VIGIL_DF_REPORT_ONLY));
	action = deny ? VIGIL_ACT_BLOCKED : VIGIL_ACT_WOULD_BLOCK;

	struct vigil_exec_decision *d = bpf_ringbuf_reserve(&events, DECISION_MAX, 0);
	if (!d) {
		vigil_count(VIGIL_STAT_RB_FULL);
		return deny;
	}
	vigil_task_fill(&d->task, task);
	d->rule_id = rule_id;
	d->file_ino = key->ino;
	d->file_dev = key->dev;
	d->match = match;
	d->action = action;
	d->mode = mode;
	d->hook = hook;
	fill_ancestors(d, task);

	bool trunc = false;
	struct path fpath = BPF_CORE_READ(file, f_path);
	struct path root = BPF_CORE_READ(task, fs, root);
	__u32 len = vigil_path_resolve_at(&fpath, &root, d->path, &trunc) & VIGIL_PATH_MASK;
	if (trunc)
		flags |= VIGIL_DF_PATH_TRUNCATED;
	d->flags = flags;
	d->path_len = len;
	vigil_hdr_init(&d->hdr, VIGIL_REC_EXEC_DECISION, sizeof(*d) + len);
	bpf_ringbuf_submit(d, 0);
	vigil_count(VIGIL_STAT_DECISION);
	return deny;
}

static __always_inline void inode_key(struct file *file, struct vigil_guard_inode_key *k)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	k->ino = BPF_CORE_READ(inode, i_ino);
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->_pad0 = 0;
}

/*
 * Prefilter for path rules: can the file's path be in deny_path? Reads only the
 * file's own name (f_path.dentry->d_name), no walk. The walk's last component is
 * that name, except when the dentry is the root of its mount (a file bind-mounted
 * over another: the path ends in the mountpoint's name): then, or when the name
 * cannot be read, say yes and let the walk decide.
 */
static __always_inline bool path_may_be_denied(struct file *file)
{
	struct vigil_guard_name_key nk;
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *mnt = BPF_CORE_READ(file, f_path.mnt);

	if (BPF_CORE_READ(mnt, mnt_root) == dentry)
		return true;
	__builtin_memset(&nk, 0, sizeof(nk));
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	if (bpf_probe_read_kernel_str(nk.name, sizeof(nk.name), name) <= 0)
		return true;
	return bpf_map_lookup_elem(&deny_name, &nk) != NULL;
}

/* The provenance policy on a marked file: refused or reported unless an allow rule matched it. 1 = deny. */
static __always_inline int guard_marked(struct file *file, __u32 hook, const struct vigil_guard_inode_key *key,
					const struct vigil_guard_settings *st)
{
	struct vigil_mark_key mk = { .dev = key->dev, ._pad0 = 0, .ino = key->ino };
	if (bpf_map_lookup_elem(&prov_allow, &mk)) {
		vigil_count(VIGIL_GUARD_STAT_PROV_ALLOWED);
		return 0;
	}
	/* a rule on the exec uid: the real uid of the task (the record's task.uid, what soak learns) */
	struct vigil_mark_uid_key uk = { .dev = key->dev, .uid = (__u32)bpf_get_current_uid_gid(), .ino = key->ino };
	if (bpf_map_lookup_elem(&prov_allow_uid, &uk)) {
		vigil_count(VIGIL_GUARD_STAT_PROV_ALLOWED);
		return 0;
	}
	return decide(file, hook, 0, st->prov_mode, key, VIGIL_MATCH_PROVENANCE, st);
}

/*
 * The one decision on a file, for every hook: deny_inode, then deny_path (behind
 * the deny_name prefilter), then the provenance policy (vigil_marks unless
 * prov_allow or, for the exec's uid, prov_allow_uid). 1 = deny. The fast path
 * (no rule for this file) is one hash lookup, plus the name prefilter while path
 * rules exist and one lookup in vigil_marks while provenance is on (the allow maps
 * are read only for a marked file).
 */
static __always_inline int guard_file(struct file *file, __u32 hook, const struct vigil_guard_settings *st)
{
	__u32 zero = 0;
	struct vigil_guard_inode_key key;
	struct vigil_guard_rule *rule;
	__u32 match = VIGIL_MATCH_INODE;

	inode_key(file, &key);
	rule = bpf_map_lookup_elem(&deny_inode, &key);
	if (!rule && st->path_rules && path_may_be_denied(file)) {
		struct guard_scratch *s = bpf_map_lookup_elem(&guard_scratch, &zero);
		if (!s)
			return 0;
		bool trunc = false;
		__builtin_memset(s->path, 0, VIGIL_GUARD_PATH_KEY);
		struct path fpath = BPF_CORE_READ(file, f_path);
		/* as the process sees it (relative to its root: chroot), like d_path */
		struct task_struct *task = vigil_current_task();
		struct path root = BPF_CORE_READ(task, fs, root);
		__u32 len = vigil_path_resolve_at(&fpath, &root, s->path, &trunc);
		if (!trunc && len < VIGIL_GUARD_PATH_KEY) {
			/* the copy wrote len bytes: bytes [len, 256) are still zero */
			rule = bpf_map_lookup_elem(&deny_path, s->path);
			match = VIGIL_MATCH_PATH;
		}
	}
	if (rule && decide(file, hook, rule->rule_id, rule->mode, &key, match, st))
		return 1;
	if (!st->prov_mode)
		return 0;
	/* provenance: a marked file, unless an allow rule matched it */
	struct vigil_mark_key mk = { .dev = key.dev, ._pad0 = 0, .ino = key.ino };
	if (!bpf_map_lookup_elem(&vigil_marks, &mk))
		return 0;
	return guard_marked(file, hook, &key, st);
}

static __always_inline struct vigil_guard_settings *settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&guard_settings, &zero);
}

/*
 * Program entry points return `long`, not BPF_PROG's int: with alu32 an int -1 is
 * built in a 32-bit register (0xffffffff in R0), which the 6.12 verifier rejects as
 * outside [-4095, 0]. A long constant is a 64-bit -1. `prev` is the return value
 * of an earlier BPF program on the hook (the hook's last argument): its denial is kept.
 */
#define VERDICT(prev, deny)                                                      \
	do {                                                                     \
		if ((int)(prev) != 0 || (deny))                                  \
			return -EPERM;                                           \
		return 0;                                                        \
	} while (0)

#define PROT_EXEC 0x4
#define VM_EXEC 0x4
#define FMODE_READ 0x1
#define FMODE_EXEC 0x20 /* also __FMODE_EXEC in f_flags: the open of execve and of its ELF interpreter */

/* execve: the file run (a shebang script is checked itself, then its interpreter) */
SEC("lsm/bprm_check_security")
long vigil_guard_bprm(unsigned long long *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[0];
	if ((int)ctx[1] != 0)
		return -EPERM;
	struct vigil_guard_settings *st = settings();
	VERDICT(0, st && guard_file(BPF_CORE_READ(bprm, file), VIGIL_HOOK_BPRM, st));
}

/* mmap(PROT_EXEC) of a file: libraries (LD_PRELOAD, dlopen) and programs ld.so loads (`ld.so FILE`) */
SEC("lsm/mmap_file")
long vigil_guard_mmap(unsigned long long *ctx)
{
	struct file *file = (struct file *)ctx[0];
	if ((int)ctx[4] != 0)
		return -EPERM;
	if (!file || !(ctx[2] & PROT_EXEC)) /* anonymous, or not executable */
		return 0;
	struct vigil_guard_settings *st = settings();
	VERDICT(0, st && guard_file(file, VIGIL_HOOK_MMAP, st));
}

/* mprotect adding PROT_EXEC to a mapping of a file */
SEC("lsm/file_mprotect")
long vigil_guard_mprotect(unsigned long long *ctx)
{
	struct vm_area_struct *vma = (struct vm_area_struct *)ctx[0];
	if ((int)ctx[3] != 0)
		return -EPERM;
	if (!(ctx[2] & PROT_EXEC) || (BPF_CORE_READ(vma, vm_flags) & VM_EXEC))
		return 0;
	struct file *file = BPF_CORE_READ(vma, vm_file);
	if (!file)
		return 0;
	struct vigil_guard_settings *st = settings();
	VERDICT(0, st && guard_file(file, VIGIL_HOOK_MPROTECT, st));
}

/* interpreters (their executables' inodes, set by userspace from enforcement.interpreters) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct vigil_guard_inode_key);
	__type(value, __u32);
} interp_inode SEC(".maps");

/*
 * A file opened for reading by an interpreter (`sh SCRIPT`, `python3 x.py`, `. x`):
 * the same decision, reported, refused with script_mode ENFORCE. Runs on every
 * open: unchecked unless script_mode is set, then only for processes whose
 * executable is in interp_inode (one lookup), never for execve's own opens.
 */
SEC("lsm/file_open")
long vigil_guard_open(unsigned long long *ctx)
{
	struct file *file = (struct file *)ctx[0];
	struct vigil_guard_inode_key ik;
	if ((int)ctx[1] != 0)
		return -EPERM;
	struct vigil_guard_settings *st = settings();
	if (!st || !st->script_mode)
		return 0;
	__u32 fmode = BPF_CORE_READ(file, f_mode);
	__u32 fflags = BPF_CORE_READ(file, f_flags);
	if (!(fmode & FMODE_READ) || (fmode & FMODE_EXEC) || (fflags & FMODE_EXEC))
		return 0;
	struct task_struct *task = vigil_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe)
		return 0;
	inode_key(exe, &ik);
	if (!bpf_map_lookup_elem(&interp_inode, &ik))
		return 0;
	VERDICT(0, guard_file(file, VIGIL_HOOK_OPEN, st));
}

/* inode ctime in ns, across the three layouts (6.1: i_ctime, 6.6: __i_ctime, 6.11+: i_ctime_sec/nsec) */
struct inode___c61 {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));
struct inode___c66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

static __always_inline __s64 inode_ctime_ns(struct inode *inode)
{
	if (bpf_core_field_exists(inode->i_ctime_sec))
		return BPF_CORE_READ(inode, i_ctime_sec) * 1000000000LL + BPF_CORE_READ(inode, i_ctime_nsec);
	if (bpf_core_field_exists(struct inode___c66, __i_ctime)) {
		struct inode___c66 *i = (void *)inode;
		return BPF_CORE_READ(i, __i_ctime.tv_sec) * 1000000000LL + BPF_CORE_READ(i, __i_ctime.tv_nsec);
	}
	struct inode___c61 *i = (void *)inode;
	return BPF_CORE_READ(i, i_ctime.tv_sec) * 1000000000LL + BPF_CORE_READ(i, i_ctime.tv_nsec);
}

/*
 * Content rules: the sha256 of the file being executed or mapped executable,
 * from IMA (bpf_ima_file_hash, sleepable), computed once per inode and cached in
 * inode storage until the inode's ctime changes. Runs only while hash rules
 * exist. Loaded when the kernel takes it (userspace probes; 5.18+ with CONFIG_IMA).
 * file_mprotect and file_open are not sleepable hooks on every kernel we run:
 * there, sha256 rules match the inodes userspace resolved from the rules' paths.
 */
static __always_inline int guard_by_hash(struct file *file, __u32 hook)
{
	struct vigil_guard_inode_key key;
	__u8 digest[64];

	struct vigil_guard_settings *st = settings();
	if (!st || !st->hash_rules)
		return 0;

	struct inode *inode = file->f_inode;
	if (!inode)
		return 0;
	__s64 ctime = inode_ctime_ns(inode);
	struct vigil_guard_hash_cache *c = bpf_inode_storage_get(&hash_cache, inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c && c->valid && c->ctime_ns == ctime) {
		__builtin_memcpy(digest, c->digest, 32);
	} else {
		long algo = bpf_ima_file_hash(file, digest, sizeof(digest));
		if (algo != HASH_ALGO_SHA256)
			return 0; /* IMA off or another algorithm: userspace-resolved inodes still apply */
		if (c) {
			__builtin_memcpy(c->digest, digest, 32);
			c->ctime_ns = ctime;
			c->valid = 1;
		}
	}
	struct vigil_guard_rule *rule = bpf_map_lookup_elem(&deny_hash, digest);
	if (!rule)
		return 0;
	inode_key(file, &key);
	return decide(file, hook, rule->rule_id, rule->mode, &key, VIGIL_MATCH_HASH, st);
}

SEC("lsm.s/bprm_check_security")
long vigil_guard_bprm_hash(unsigned long long *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[0];
	VERDICT(ctx[1], guard_by_hash(bprm->file, VIGIL_HOOK_BPRM));
}

SEC("lsm.s/mmap_file")
long vigil_guard_mmap_hash(unsigned long long *ctx)
{
	struct file *file = (struct file *)ctx[0];
	if ((int)ctx[4] != 0)
		return -EPERM;
	if (!file || !(ctx[2] & PROT_EXEC))
		return 0;
	VERDICT(0, guard_by_hash(file, VIGIL_HOOK_MMAP));
}

/*
 * In-kernel origin (Linux 6.15+, docs/provenance.md IN-KERNEL ORIGIN): a file
 * missing from vigil_marks whose security.bpf.vigil.mark attribute is set is a
 * marked file all the same. The sleepable programs below read the attribute
 * (bpf_get_file_xattr reads security.bpf.* names from 6.15), put the mark back
 * in vigil_marks (marked_ns 0: re-armed) and take the provenance decision, so a
 * mark survives a lost store, a full map or a file carried with its attributes.
 * Userspace loads them only where the kernel reads those names (its BTF has the
 * 6.15 xattr kfuncs) and otherwise re-arms marks from its store. Checked per
 * inode once until its ctime changes (setting an attribute changes it): the
 * fast path of an unmarked file is one inode-storage lookup.
 */
#ifndef VIGIL_COMPAT /* the compat build is for kernels before 5.17 */
extern int bpf_get_file_xattr(struct file *file, const char *name__str, struct bpf_dynptr *value_p) __ksym __weak;

static const char mark_xattr_name[] = VIGIL_MARK_XATTR;

struct origin_cache {
	__s64 ctime_ns; /* the inode's ctime when its attribute was found absent */
	__u32 valid;
	__u32 _pad0;
	/*
	 * where the attribute is read to: bpf_dynptr_from_mem takes map memory, not the
	 * stack, and a per-CPU buffer is not safe in a program that sleeps (another exec
	 * on this CPU runs meanwhile); two execs of one inode read the same value
	 */
	struct vigil_mark_xattr value;
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct origin_cache);
} origin_cache SEC(".maps");

#define ENODATA 61
#define ERANGE 34

static __always_inline int guard_by_origin(struct file *file, __u32 hook)
{
	struct vigil_guard_inode_key key;
	struct bpf_dynptr dp;

	struct vigil_guard_settings *st = settings();
	if (!st || !st->prov_mode || !bpf_get_file_xattr)
		return 0;
	struct inode *inode = file->f_inode;
	if (!inode)
		return 0;
	inode_key(file, &key);
	struct vigil_mark_key mk = { .dev = key.dev, ._pad0 = 0, .ino = key.ino };
	if (bpf_map_lookup_elem(&vigil_marks, &mk))
		return 0; /* marked: the non-sleepable program has decided */
	__s64 ctime = inode_ctime_ns(inode);
	struct origin_cache *c = bpf_inode_storage_get(&origin_cache, inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		vigil_count(VIGIL_GUARD_STAT_PROV_XATTR_ERR); /* no memory for the inode's storage: not read */
		return 0;
	}
	if (c->valid && c->ctime_ns == ctime)
		return 0; /* read before, absent, unchanged since */
	__builtin_memset(&c->value, 0, sizeof(c->value));
	bpf_dynptr_from_mem(&c->value, sizeof(c->value), 0, &dp);
	int n = bpf_get_file_xattr(file, mark_xattr_name, &dp);
	if (n == -ENODATA) {
		c->ctime_ns = ctime;
		c->valid = 1;
		return 0;
	}
	/* present: a well-formed value gives depth and flags; any other value still marks the file */
	if (n < 0 && n != -ERANGE) {
		vigil_count(VIGIL_GUARD_STAT_PROV_XATTR_ERR);
		return 0;
	}
	struct vigil_mark m = { .marked_ns = 0, .depth = 0, .flags = 0 };
	if (n == sizeof(c->value) && c->value.magic == VIGIL_MARK_XATTR_MAGIC) {
		m.depth = c->value.depth;
		m.flags = c->value.flags;
	}
	c->valid = 0;
	bpf_map_update_elem(&vigil_marks, &mk, &m, BPF_NOEXIST);
	vigil_count(VIGIL_GUARD_STAT_PROV_XATTR);
	return guard_marked(file, hook, &key, st);
}

SEC("lsm.s/bprm_check_security")
long vigil_guard_bprm_origin(unsigned long long *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[0];
	VERDICT(ctx[1], guard_by_origin(bprm->file, VIGIL_HOOK_BPRM));
}

SEC("lsm.s/mmap_file")
long vigil_guard_mmap_origin(unsigned long long *ctx)
{
	struct file *file = (struct file *)ctx[0];
	if ((int)ctx[4] != 0)
		return -EPERM;
	if (!file || !(ctx[2] & PROT_EXEC))
		return 0;
	VERDICT(0, guard_by_origin(file, VIGIL_HOOK_MMAP));
}
#endif /* !VIGIL_COMPAT */
