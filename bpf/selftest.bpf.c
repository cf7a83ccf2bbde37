// SPDX-License-Identifier: GPL-2.0-only
/*
 * Objects for the binding's own tests (test/kernel): a hash map to iterate and
 * pin, and a program the verifier must reject (its log has to reach the error).
 * Never loaded by the agent.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} selftest_hash SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int selftest_ok(void *ctx)
{
	__u32 k = 1;
	__u64 *v = bpf_map_lookup_elem(&selftest_hash, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

/* Rejected on purpose: dereferences a map value without the NULL check. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int selftest_rejected(void *ctx)
{
	__u32 k = 2;
	__u64 *v = bpf_map_lookup_elem(&selftest_hash, &k);
	return *(volatile __u64 *)v;
}
