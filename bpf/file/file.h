/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * file sensor records (bpf/file/file.bpf.c); decoded by src/sensors/file/.
 * Record types 16..31 and counters 16..31 of vigil_stats belong to this sensor.
 */
#ifndef VIGIL_FILE_H
#define VIGIL_FILE_H

#include "vigil.h"
#include "vigil_taint.h"

enum vigil_file_record_type {
	VIGIL_REC_FILE = 16,
	VIGIL_REC_FILE_MARK = 17, /* struct vigil_file_mark (provenance) */
};

/* What happened (struct vigil_file.op). */
enum vigil_file_op {
	VIGIL_FOP_OPEN_WRITE = 1, /* open/openat/openat2/creat with write access */
	VIGIL_FOP_OPEN_READ = 2,  /* read-only open under a read prefix (file_access) */
	VIGIL_FOP_UNLINK = 3,     /* unlink/unlinkat (AT_REMOVEDIR: a directory) */
	VIGIL_FOP_RENAME = 4,     /* rename/renameat/renameat2: path, then path2 */
	VIGIL_FOP_CHMOD = 5,      /* chmod/fchmodat/fchmod that sets an exec bit */
	VIGIL_FOP_TRUNCATE = 6,   /* truncate/ftruncate */
};

enum vigil_file_flags {
	VIGIL_FF_PATH_TRUNCATED = 1 << 0,  /* path longer than VIGIL_PATH_MAX or deeper than VIGIL_PATH_DEPTH */
	VIGIL_FF_PATH2_TRUNCATED = 1 << 1,
	VIGIL_FF_PATH_KERNEL = 1 << 2,     /* path of the opened file itself (symlinks resolved, exact) */
	VIGIL_FF_PATH_JOINED = 1 << 3,     /* directory resolved in the kernel + the name as the caller gave it */
	VIGIL_FF_PATH2_JOINED = 1 << 4,
	VIGIL_FF_PATH_FAULT = 1 << 5,      /* the caller's name could not be read */
	VIGIL_FF_CREATED = 1 << 6,         /* open created the file (FMODE_CREATED) */
	VIGIL_FF_DIR = 1 << 7,             /* unlinkat(AT_REMOVEDIR) */
	VIGIL_FF_OLD_MODE = 1 << 8,        /* old_mode is known (fchmod) */
};

/* Counters (vigil_stats slots from VIGIL_STAT_SENSOR). */
enum vigil_file_stat {
	VIGIL_STAT_FILE_EVENTS = 16,     /* file records submitted */
	VIGIL_STAT_FILE_FILTERED = 17,   /* left out by the include/exclude/read prefixes */
	VIGIL_STAT_FILE_DEDUP = 18,      /* repeat of the same (process, file, op) within the window */
	VIGIL_STAT_FILE_SELF = 19,       /* the agent's own file activity */
	VIGIL_STAT_FILE_PENDING_LOST = 20, /* enter not stashed (map full): the exit is not reported */
	VIGIL_STAT_FILE_FAILED_SKIPPED = 21, /* failed syscalls left out by settings.failed */
	VIGIL_STAT_FILE_TAIL_FAILED = 22, /* the exit could not reach the record builder: lost */
	VIGIL_STAT_FILE_MARK = 23,       /* provenance: a file marked at write time (mark record submitted) */
	VIGIL_STAT_FILE_MARK_LOST = 24,  /* provenance: vigil_marks full, a file not marked in the kernel (its record still goes out) */
	VIGIL_STAT_FILE_DERIVED = 25,    /* provenance: a process read a marked file (its writes are derived) */
	VIGIL_STAT_FILE_DEPTH = 26,      /* provenance: propagation stopped at the configured depth */
	VIGIL_STAT_FILE_MARK_DEDUP = 27, /* provenance: the same file marked again within the dedup window: no new record */
	VIGIL_STAT_FILE_TAINT_LOST = 28, /* provenance: vigil_taint full, a reader of a marked file not recorded */
	VIGIL_STAT_FILE_MARK_STALE = 29, /* provenance: a mark dropped because its inode number now holds a new file */
};

/* Prefix filter (LPM trie "file_prefixes"): value bits. The longest matching prefix decides. */
enum vigil_file_prefix_flags {
	VIGIL_FP_EXCLUDE = 1 << 0, /* report nothing under it */
	VIGIL_FP_INCLUDE = 1 << 1, /* when any include prefix exists, only these are reported */
	VIGIL_FP_READ = 1 << 2,    /* report read-only opens under it (file_access) */
};

#define VIGIL_FILE_PREFIX_MAX 256

struct vigil_file_prefix_key {
	__u32 prefixlen; /* in bits */
	__u8 data[VIGIL_FILE_PREFIX_MAX];
};

enum vigil_file_failed {
	VIGIL_FAILED_NONE = 0,   /* report only syscalls that succeeded */
	VIGIL_FAILED_DENIED = 1, /* also those refused with EPERM, EACCES or EROFS */
	VIGIL_FAILED_ALL = 2,    /* every result */
};

/* vigil_file_settings.prov_flags */
enum vigil_file_prov_flags {
	VIGIL_FPROV_ON = 1 << 0, /* mark files written by tainted processes; reads of marked files propagate */
};

/* Array "file_settings", one entry, written by userspace before the programs run. */
struct vigil_file_settings {
	__u32 self_tgid;    /* the agent: its file activity is not reported */
	__u32 has_include;  /* > 0: only paths under an INCLUDE prefix */
	__u32 read_prefixes; /* > 0: some prefix has VIGIL_FP_READ (reads are walked) */
	__u32 failed;       /* enum vigil_file_failed */
	__u64 dedup_ns;     /* same (process, inode, op) within this window: reported once (0 = off) */
	__u32 prov_flags;   /* enum vigil_file_prov_flags */
	__u32 prov_max_depth; /* a mark propagates through at most this many derived writes */
};

/*
 * One file operation: variable-length; data[] holds path (path_len bytes),
 * then path2 (path2_len bytes, rename target), no NULs.
 */
struct vigil_file {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__s64 result;     /* the syscall's return: fd or 0, or -errno */
	__u32 op;         /* enum vigil_file_op */
	__u32 flags;      /* enum vigil_file_flags */
	__u32 open_flags; /* O_* flags of an open; AT_* flags of unlinkat/renameat2 */
	__u32 mode;       /* create mode of an open, new mode of a chmod */
	__u32 old_mode;   /* mode before a chmod (VIGIL_FF_OLD_MODE) */
	__u32 dev;        /* kernel s_dev of the file (0 when not known) */
	__u64 ino;        /* inode number (0 when not known) */
	__u32 path_len;
	__u32 path2_len;
	char data[];
};

/*
 * Provenance: a tainted process (vigil_taint.h) opened a regular file for
 * writing; the kernel marked the inode in vigil_marks. data[] holds the path
 * (path_len bytes, the file itself, walked from its descriptor).
 */
struct vigil_file_mark {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u64 ino;
	__u32 dev;        /* kernel s_dev */
	__u32 path_len;
	__u32 flags;      /* enum vigil_file_flags (PATH_TRUNCATED, CREATED) */
	__u32 depth;      /* the mark's depth: 0 network, n derived */
	struct vigil_taint taint; /* the writer's taint at the open */
	char data[];
};

#endif /* VIGIL_FILE_H */
