// SPDX-License-Identifier: GPL-2.0-only
/*
 * Ring-buffer flood for bench/ringbuf: every getppid() of the target process
 * emits one 72-byte struct vigil_flood. Losses are counted in vigil_stats.
 * seq is the per-CPU count of records so far (vigil_stats is per CPU): (cpu, seq)
 * names a record once.
 */
#include "vigil_bpf.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_flood);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} flood_target SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int vigil_flood(void *ctx)
{
	__u32 zero = 0;
	__u32 *target = bpf_map_lookup_elem(&flood_target, &zero);
	__u64 id = bpf_get_current_pid_tgid();
	if (!target || *target != (__u32)(id >> 32))
		return 0;

	struct vigil_flood *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		vigil_count(VIGIL_STAT_RB_FULL);
		return 0;
	}
	vigil_hdr_init(&r->hdr, VIGIL_REC_FLOOD, sizeof(*r));
	__u32 stat = VIGIL_STAT_FLOOD;
	__u64 *n = bpf_map_lookup_elem(&vigil_stats, &stat);
	r->seq = n ? (*n)++ : 0;
	r->pid = (__u32)id;
	r->cpu = bpf_get_smp_processor_id();
	for (int i = 0; i < 5; i++)
		r->arg[i] = i;
	bpf_ringbuf_submit(r, 0);
	return 0;
}
