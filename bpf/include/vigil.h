/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * vigil.h — the one definition of every record the kernel hands to userspace.
 *
 * Rules for changing this file:
 *  - Every record starts with struct vigil_hdr. Bump VIGIL_ABI_VERSION when a
 *    layout changes; userspace refuses records of another version.
 *  - Only fixed-width types. Keep 8-byte fields 8-byte aligned (no implicit padding).
 *  - Records of one sensor live in that sensor's header (bpf/<sensor>/<sensor>.h);
 *    this file holds what every object shares: header, task, counters, guard.
 *  - The TypeScript decoders (src/events/layouts.ts, src/sensors/<name>/layouts.ts) are checked against the BTF of
 *    the compiled objects at load time and by test/events/layouts.test.ts.
 *    A drift is an error, never a silent mis-decode.
 */
#ifndef VIGIL_H
#define VIGIL_H

#define VIGIL_ABI_VERSION 1

#define VIGIL_COMM_LEN 16
#define VIGIL_PATH_MAX 4096  /* exe and cwd, each, including the NUL */
#define VIGIL_ARGS_MAX 16384 /* argv bytes (NUL separated) kept per exec */
#define VIGIL_PATH_DEPTH 128 /* path components resolved in the kernel */

/*
 * Record types. Each sensor owns a range and names its types in its own header
 * (bpf/<sensor>/<sensor>.h), so adding a sensor does not edit this file:
 *   1..3 exec (bpf/exec/exec.h), 16..31 file, 32..47 network, 48..63 reserved (tls).
 */
enum vigil_record_type {
	VIGIL_REC_FLOOD = 4, /* benchmark records (bench/ringbuf) */
	VIGIL_REC_EXEC_DECISION = 5, /* exec guard (LSM): blocked or would block */
};

/* Counters in the per-CPU array "vigil_stats", summed by userspace. */
enum vigil_stat {
	VIGIL_STAT_RB_FULL = 0,    /* bpf_ringbuf_output/reserve failed: record lost */
	VIGIL_STAT_EXEC = 1,       /* exec records submitted */
	VIGIL_STAT_FORK = 2,
	VIGIL_STAT_EXIT = 3,
	VIGIL_STAT_ARGS_FAULT = 4,
	VIGIL_STAT_TRUNCATED = 5,  /* any truncation flag set */
	VIGIL_STAT_FLOOD = 6,
	VIGIL_STAT_DECISION = 7,
	VIGIL_STAT_WAKEUP = 8,     /* records submitted with BPF_RB_FORCE_WAKEUP (batched wake-ups) */
	VIGIL_STAT_WAKEUP_QUIET = 9, /* forced wake-ups of the first record after a quiet spell */
	VIGIL_STAT_COMMON_MAX = 10,
	/* 16..31: a sensor's own counters, named in its header (enum vigil_<sensor>_stat) */
	VIGIL_STAT_SENSOR = 16,
	VIGIL_STAT_MAX = 32,
};

/*
 * vigil_wakeup[0] (vigil_bpf.h): how the BPF side wakes the ring's reader.
 * Userspace writes every and quiet_ns before attaching; the programs keep last_ns.
 */
struct vigil_wakeup_cfg {
	__u64 every;      /* bytes: force a wake-up when the unread data crosses a multiple (0: the kernel's default) */
	__u64 quiet_ns;   /* force one for a record that follows this long without records (0: never) */
	__u64 last_ns;    /* bpf_ktime_get_ns() of a recent record: at most quiet_ns / 8 behind the latest */
};

struct vigil_hdr {
	__u16 type;       /* enum vigil_record_type */
	__u8 version;     /* VIGIL_ABI_VERSION */
	__u8 _pad0;
	__u32 size;       /* bytes in this record, header included */
	__u64 ktime_ns;   /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
};

/* Identity of the task a record is about. */
struct vigil_task {
	__u32 pid;        /* thread id */
	__u32 tgid;       /* process id */
	__u32 ppid;       /* real_parent->tgid */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 loginuid;   /* audit login uid, 4294967295 when unset */
	__u32 sessionid;
	__u64 start_ns;   /* task->start_boottime: (tgid, start_ns) is unique per boot */
	__u64 parent_start_ns;
	__u64 cgroup_id;
	char comm[VIGIL_COMM_LEN];
};

/* Benchmark record: a fixed 72-byte payload (bench/ringbuf). */
struct vigil_flood {
	struct vigil_hdr hdr;
	__u64 seq;
	__u32 pid;
	__u32 cpu;
	__u64 arg[5];
};

/*
 * Exec guard (bpf/exec_guard.bpf.c): deny rules looked up in the kernel at
 * lsm/bprm_check_security, lsm/mmap_file and lsm/file_mprotect (PROT_EXEC) and
 * lsm/file_open (a file read by an interpreter). Map keys and values below are shared with
 * src/enforcement/ (the CLI writes them into the pinned maps).
 */
#define VIGIL_GUARD_PATH_KEY 256 /* deny_path key: resolved path, NUL padded */
#define VIGIL_GUARD_ANCESTORS 4   /* ancestors carried in a decision record */
#define VIGIL_GUARD_NAME_KEY 64   /* deny_name key: final path component, truncated to 63 bytes, NUL padded */

enum vigil_guard_mode {
	VIGIL_MODE_MONITOR = 1, /* allow, report would_block */
	VIGIL_MODE_ENFORCE = 2, /* EPERM, report exec_blocked */
	VIGIL_MODE_SOAK = 3,    /* provenance only: allow, report would_block (userspace learns an allow rule) */
};

enum vigil_guard_match {
	VIGIL_MATCH_INODE = 1, /* deny_inode: (s_dev, ino) */
	VIGIL_MATCH_PATH = 2,  /* deny_path: resolved path of the file */
	VIGIL_MATCH_HASH = 3,  /* deny_hash: sha256 of the content (IMA in the kernel) */
	VIGIL_MATCH_PROVENANCE = 4, /* the file is in vigil_marks (vigil_taint.h) and no allow rule put it in prov_allow */
};

/* the exec guard's own counters, in the sensor range of vigil_stats */
enum vigil_guard_stat {
	VIGIL_GUARD_STAT_PROV_ALLOWED = 16, /* a marked file executed, allowed by an allow rule (prov_allow, or prov_allow_uid for the exec uid) */
	VIGIL_GUARD_STAT_PROV_XATTR = 17,   /* a mark read from a file's security.bpf.vigil.mark at exec (not in vigil_marks): re-armed */
	VIGIL_GUARD_STAT_PROV_XATTR_ERR = 18, /* that attribute could not be read (other than absent): the exec went on unmarked */
};

enum vigil_guard_action {
	VIGIL_ACT_WOULD_BLOCK = 1,
	VIGIL_ACT_BLOCKED = 2,
};

/* vigil_exec_decision.flags */
enum vigil_decision_flags {
	VIGIL_DF_PATH_TRUNCATED = 1 << 0,
	VIGIL_DF_EXEMPT = 1 << 1,         /* PID 1 or vigil itself: never blocked */
	VIGIL_DF_GLOBAL_MONITOR = 1 << 2, /* the global mode turned enforce into monitor */
	VIGIL_DF_REPORT_ONLY = 1 << 3,    /* file_open: scripts are reported, not refused (script_mode MONITOR) */
};

/* vigil_exec_decision.hook: where the guard decided */
enum vigil_guard_hook {
	VIGIL_HOOK_BPRM = 0,     /* bprm_check_security: the file execve runs (a shebang script, then its interpreter) */
	VIGIL_HOOK_MMAP = 1,     /* mmap_file with PROT_EXEC: a library, or a program mapped by ld.so */
	VIGIL_HOOK_MPROTECT = 2, /* file_mprotect adding PROT_EXEC to a file mapping */
	VIGIL_HOOK_OPEN = 3,     /* file_open by an interpreter (interp_inode): `sh SCRIPT`, `python3 x.py` */
};

struct vigil_guard_inode_key {
	__u64 ino;
	__u32 dev;        /* kernel s_dev: major << 20 | minor */
	__u32 _pad0;
};

/*
 * deny_name key: the final component (basename) of every path rule's path, so
 * the kernel walks the full path only for execs whose file name is in the set.
 * Longer names are truncated to VIGIL_GUARD_NAME_KEY - 1 bytes on both sides
 * (a prefilter: a collision only costs a walk).
 */
struct vigil_guard_name_key {
	char name[VIGIL_GUARD_NAME_KEY];
};

struct vigil_guard_rule {
	__u64 rule_id;
	__u32 mode;       /* enum vigil_guard_mode */
	__u32 _pad0;
};

/* Array "guard_settings", one entry. */
struct vigil_guard_settings {
	__u32 mode;       /* global enum vigil_guard_mode: MONITOR downgrades every rule */
	__u32 path_rules; /* > 0: resolve the path and look it up */
	__u32 hash_rules; /* > 0: hash the file (IMA) and look it up */
	__u32 prov_mode;  /* exec policy on marked files: 0 off, else enum vigil_guard_mode (MONITOR, ENFORCE, SOAK) */
	__u32 script_mode; /* files read by an interpreter (file_open): 0 unchecked, MONITOR report, ENFORCE refuse */
};

/* Value of the inode-storage hash cache (IMA digests, keyed by the inode). */
struct vigil_guard_hash_cache {
	__u8 digest[32];
	__s64 ctime_ns;   /* inode ctime when hashed: a change invalidates */
	__u32 valid;
	__u32 _pad0;
};

struct vigil_ancestor {
	__u32 tgid;
	__u32 _pad0;
	__u64 start_ns;
	char comm[VIGIL_COMM_LEN];
};

/* Exec decision: variable-length, path[] holds path_len bytes (no NUL). */
struct vigil_exec_decision {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u64 rule_id;
	__u64 file_ino;
	__u32 file_dev;
	__u32 match;      /* enum vigil_guard_match */
	__u32 action;     /* enum vigil_guard_action */
	__u32 mode;       /* the rule's enum vigil_guard_mode */
	__u32 flags;      /* enum vigil_decision_flags */
	__u32 path_len;
	__u32 n_ancestors;
	__u32 hook;       /* enum vigil_guard_hook */
	struct vigil_ancestor ancestors[VIGIL_GUARD_ANCESTORS]; /* parent first */
	char path[];
};

#endif /* VIGIL_H */
