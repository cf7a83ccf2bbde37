/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * vigil watch's guards (bpf/watch/shell_guard.bpf.c, file_guard.bpf.c): records
 * and keys shared with src/watch/shell-guard.ts. Record types 64..71.
 */
#ifndef VIGIL_SHELL_GUARD_H
#define VIGIL_SHELL_GUARD_H

#include "vigil.h"

enum vigil_shell_guard_record_type {
	VIGIL_REC_SHELL_DENIED = 64,
	VIGIL_REC_FILE_DENIED = 65, /* file_guard.bpf.c: same record layout (vigil_shell_denied) */
	VIGIL_REC_NET_DENIED = 66,  /* net_guard.bpf.c: struct vigil_net_denied */
};

enum vigil_shell_guard_stat {
	VIGIL_STAT_SHELL_DENIED = 16, /* shell execs refused inside the tree */
	VIGIL_STAT_FILE_DENIED = 17,  /* file opens refused inside the tree (file_guard.bpf.c) */
	VIGIL_STAT_NET_DENIED = 18,   /* connects/sends refused inside the tree (net_guard.bpf.c) */
};

/* Key of "shell_inodes": the shells' executables, filled by userspace. */
struct vigil_shell_key {
	__u64 ino;
	__u32 dev;  /* kernel s_dev: major << 20 | minor */
	__u32 _pad0;
};

/* A shell exec refused with EPERM inside the watched tree. */
struct vigil_shell_denied {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u64 ino;
	__u32 dev;
	__u32 depth; /* the process's depth below the watched root */
};

/*
 * A connect (or a sendmsg with a destination: UDP sendto, TCP fast open) by a
 * process of the watched tree to an address outside the allow list, refused
 * with EPERM. addr holds 4 bytes (AF_INET) or 16 (AF_INET6), network order.
 */
struct vigil_net_denied {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u8 addr[16];
	__u16 family;   /* AF_INET 2, AF_INET6 10 */
	__u16 port;     /* host order */
	__u32 depth;
	__u32 op;       /* 1 connect, 2 sendmsg */
	__u32 _pad0;
};

/* Keys of the allow tries "allow4" and "allow6" (BPF_MAP_TYPE_LPM_TRIE). */
struct vigil_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct vigil_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#endif
