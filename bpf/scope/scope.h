/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* scope object counters (bpf/scope/scope.bpf.c): vigil_stats slots from VIGIL_STAT_SENSOR. */
#ifndef VIGIL_SCOPE_OBJ_H
#define VIGIL_SCOPE_OBJ_H

enum vigil_scope_stat {
	VIGIL_STAT_SCOPE_ADDED = 16,   /* children added at fork */
	VIGIL_STAT_SCOPE_REMOVED = 17, /* processes removed when freed */
	VIGIL_STAT_SCOPE_FULL = 18,    /* map full: a child was not added (it escapes the watch) */
};

#endif
