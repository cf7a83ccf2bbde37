/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Provenance state shared between BPF objects (docs/provenance.md).
 *
 *  vigil_taint  tgid → what made the process "network-touched" (written by
 *               net.bpf.c at connect/accept, copied to children at fork) or
 *               "derived" (written by file.bpf.c when it opens a marked file
 *               for reading). Read by file.bpf.c when the process opens a
 *               regular file for writing.
 *  vigil_marks  (dev, ino) → mark: set by file.bpf.c at write time (no
 *               userspace race) and re-armed by userspace from its store.
 *
 * One instance per agent: the first object to load creates a map, the others
 * reuse its fd (BpfSensorOptions.sharedMaps, src/sensors/shared-maps.ts).
 * Without an agent (a sensor tested alone) each object has its own.
 */
#ifndef VIGIL_TAINT_H
#define VIGIL_TAINT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define VIGIL_TAINT_MAX 16384
#define VIGIL_MARKS_MAX 65536

enum vigil_taint_flags {
	VIGIL_TAINT_NET = 1 << 0,     /* connected/accepted on an inet socket: addr/port/net_ns hold the last peer */
	VIGIL_TAINT_FILE = 1 << 1,    /* read a marked file: src_dev/src_ino/depth name the last one */
	VIGIL_TAINT_INHERIT = 1 << 2, /* copied from the parent at fork */
};

/* Value of vigil_taint (key: __u32 tgid). */
struct vigil_taint {
	__u64 net_ns;    /* boot-time ns of the last connection (VIGIL_TAINT_NET) */
	__u64 file_ns;   /* boot-time ns of the last marked read (VIGIL_TAINT_FILE) */
	__u64 src_ino;   /* the marked file read last */
	__u32 src_dev;   /* kernel s_dev */
	__u32 depth;     /* the source's depth + 1 (a network mark has depth 0) */
	__u32 flags;     /* enum vigil_taint_flags */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u16 port;      /* remote port, host order */
	__u8 addr[16];   /* remote address (IPv4 in the first 4 bytes) */
};

struct vigil_mark_key {
	__u32 dev;       /* kernel s_dev */
	__u32 _pad0;
	__u64 ino;
};

/*
 * Key of the exec guard's prov_allow_uid (bpf/exec_guard.bpf.c): a marked inode an
 * allow rule with an exec uid matched, for that uid only (docs/provenance.md ALLOW RULES).
 */
struct vigil_mark_uid_key {
	__u32 dev;       /* kernel s_dev */
	__u32 uid;       /* the exec's uid: the real uid of the task calling execve (current_uid()) */
	__u64 ino;
};

/* Value of vigil_marks. */
struct vigil_mark {
	__u64 marked_ns; /* boot-time ns when the kernel marked it (0: re-armed from the store) */
	__u32 depth;     /* 0: written by a network-touched process; n: derived n times */
	__u32 flags;     /* enum vigil_taint_flags of the writer */
};

/*
 * The mark as an extended attribute, for kernels whose BPF programs can read
 * security.bpf.* attributes (bpf_get_file_xattr, Linux 6.15+): userspace writes
 * it next to the origin record (trusted.vigil.origin) where the exec guard's
 * origin programs load, and the guard reads it at exec for a file missing from
 * vigil_marks (a mark the store lost, a file brought with its attributes, a
 * full map) and re-arms the mark (docs/provenance.md IN-KERNEL ORIGIN). Setting
 * a security.* attribute needs CAP_SYS_ADMIN; while vigil runs, only vigil may
 * (bpf/provenance/tamper.bpf.c).
 */
#define VIGIL_MARK_XATTR "security.bpf.vigil.mark"
#define VIGIL_MARK_XATTR_MAGIC 0x314d4756 /* "VGM1" read as a little-endian __u32 */

/* Value of the security.bpf.vigil.mark attribute (little endian). */
struct vigil_mark_xattr {
	__u32 magic;     /* VIGIL_MARK_XATTR_MAGIC */
	__u32 depth;     /* as struct vigil_mark */
	__u32 flags;     /* as struct vigil_mark */
	__u32 _pad0;
};

#ifdef __VMLINUX_H__
/*
 * The maps, defined in every object that includes this header (one per agent: see above).
 * An object that only reads marks (the exec guard) defines VIGIL_MARKS_ONLY first.
 */
#ifndef VIGIL_MARKS_ONLY
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_TAINT_MAX);
	__type(key, __u32);
	__type(value, struct vigil_taint);
} vigil_taint SEC(".maps");
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MARKS_MAX);
	__type(key, struct vigil_mark_key);
	__type(value, struct vigil_mark);
} vigil_marks SEC(".maps");
#endif

#endif /* VIGIL_TAINT_H */
