/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* exec sensor records (bpf/exec/exec.bpf.c); decoded by src/sensors/exec/. */
#ifndef VIGIL_EXEC_H
#define VIGIL_EXEC_H

#include "vigil.h"

enum vigil_exec_record_type {
	VIGIL_REC_EXEC = 1,
	VIGIL_REC_FORK = 2,
	VIGIL_REC_EXIT = 3,
};

/* vigil_hdr.flags / vigil_exec.flags bits */
enum vigil_exec_flags {
	VIGIL_F_ARGS_TRUNCATED = 1 << 0, /* argv longer than VIGIL_ARGS_MAX */
	VIGIL_F_ARGS_FAULT = 1 << 1,     /* argv pages could not be read */
	VIGIL_F_EXE_TRUNCATED = 1 << 2,  /* exe path deeper than VIGIL_PATH_DEPTH or longer than PATH_MAX */
	VIGIL_F_CWD_TRUNCATED = 1 << 3,
	VIGIL_F_EXE_MISSING = 1 << 4,    /* no mm->exe_file */
};

/*
 * Exec: variable-length. data[] holds exe path, cwd, then argv (NUL separated),
 * of exe_len, cwd_len and args_len bytes (no terminating NUL counted).
 */
struct vigil_exec {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__u32 flags;      /* enum vigil_exec_flags */
	__u32 argc;
	__u32 exe_len;
	__u32 cwd_len;
	__u32 args_len;
	__u32 exe_dev;    /* kernel s_dev of the exe's super block */
	__u64 exe_ino;
	char data[];
};

struct vigil_fork {
	struct vigil_hdr hdr;
	struct vigil_task task; /* the child */
};

struct vigil_exit {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__s32 exit_code;  /* task->exit_code: (status << 8) | signal */
	__u32 _pad0;
};

#endif /* VIGIL_EXEC_H */
