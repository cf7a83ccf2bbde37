/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Tamper protection of vigil's origin records (bpf/provenance/tamper.bpf.c,
 * docs/provenance.md TAMPERING): records and keys shared with
 * src/provenance/tamper.ts. Record types 72..79; counters 16..31 of this
 * object's own vigil_stats.
 */
#ifndef VIGIL_TAMPER_H
#define VIGIL_TAMPER_H

#include "vigil.h"

/* the attributes vigil owns: every name that starts with this prefix */
#define VIGIL_XATTR_PREFIX "trusted.vigil."
#define VIGIL_XATTR_PREFIX_LEN 14
/* the mark the exec guard reads on 6.15+ (VIGIL_MARK_XATTR, vigil_taint.h) lives under this one */
#define VIGIL_XATTR_BPF_PREFIX "security.bpf.vigil."
#define VIGIL_XATTR_BPF_PREFIX_LEN 19
#define VIGIL_XATTR_NAME_MAX 32

enum vigil_tamper_record_type {
	VIGIL_REC_XATTR_TAMPER = 72, /* struct vigil_xattr_tamper */
};

enum vigil_tamper_stat {
	VIGIL_STAT_TAMPER_SET = 16,    /* setxattr of a vigil attribute refused */
	VIGIL_STAT_TAMPER_REMOVE = 17, /* removexattr of a vigil attribute refused */
};

enum vigil_tamper_op {
	VIGIL_TAMPER_SET = 1,
	VIGIL_TAMPER_REMOVE = 2,
};

/*
 * Value of tamper_exempt (key: __u32 tgid): the process's start time in clock
 * ticks (/proc/PID/stat field 22), so a reused pid is not exempt.
 */
struct vigil_tamper_exempt {
	__u64 start_ticks;
};

/* A write or removal of a vigil attribute by a process that is not vigil, refused with EPERM. */
struct vigil_xattr_tamper {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u64 ino;
	__u32 dev;     /* kernel s_dev */
	__u32 owner;   /* the file's owner (i_uid) */
	__u32 op;      /* enum vigil_tamper_op */
	__u32 _pad0;
	char name[VIGIL_XATTR_NAME_MAX]; /* the attribute's name, NUL-terminated (cut) */
};

#endif
