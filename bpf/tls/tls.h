/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * TLS plaintext sensor records (bpf/tls/tls.bpf.c); decoded by src/sensors/tls/.
 * Record types 48..63 and counters 16..31 of vigil_stats belong to this sensor.
 */
#ifndef VIGIL_TLS_H
#define VIGIL_TLS_H

#include "vigil.h"

#define VIGIL_TLS_DATA_MAX 16384 /* the most bytes kept per call (settings.capture is at most this) */

enum vigil_tls_record_type {
	VIGIL_REC_TLS_DATA = 48,
};

/* Which function was called (struct vigil_tls_data.func) */
enum vigil_tls_func {
	VIGIL_TLS_SSL_WRITE = 1,
	VIGIL_TLS_SSL_READ = 2,
	VIGIL_TLS_SSL_WRITE_EX = 3,
	VIGIL_TLS_SSL_READ_EX = 4,
};

enum vigil_tls_flags {
	VIGIL_TF_TRUNCATED = 1 << 0, /* the call moved more bytes than were captured */
	VIGIL_TF_FAULT = 1 << 1,     /* the buffer could not be read: no data */
};

enum vigil_tls_stat {
	VIGIL_STAT_TLS_EVENTS = 16,       /* records submitted */
	VIGIL_STAT_TLS_TRUNCATED = 17,    /* records whose data was cut at settings.capture */
	VIGIL_STAT_TLS_PENDING_LOST = 18, /* entry not stashed (map full): the call is not reported */
	VIGIL_STAT_TLS_FAULT = 19,        /* buffer unreadable at return */
};

/* Array "tls_settings", one entry, written by userspace before attach. */
struct vigil_tls_settings {
	__u32 self_tgid; /* the agent: its own TLS is not reported */
	__u32 capture;   /* bytes kept per call, at most VIGIL_TLS_DATA_MAX */
};

/*
 * One SSL_read/SSL_write(_ex) call that moved bytes: variable-length; data[]
 * holds data_len bytes of plaintext (the first ones of the call).
 */
struct vigil_tls_data {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u64 ssl;       /* the SSL * (joins the calls of one TLS connection in a process) */
	__u32 func;      /* enum vigil_tls_func */
	__u32 flags;     /* enum vigil_tls_flags */
	__u32 len;       /* bytes the call read or wrote */
	__u32 data_len;  /* bytes captured in data[] */
	__u64 cookie;    /* which attached binary (userspace's index, the uprobe's bpf_cookie) */
	__s32 fd;        /* the socket the call wrote to or read from (its first write/send/read/recv syscall), -1 when none was seen (a memory BIO: node) */
	__u32 _pad0;
	char data[];
};

#endif /* VIGIL_TLS_H */
