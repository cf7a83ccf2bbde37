// SPDX-License-Identifier: GPL-2.0-only
/*
 * vigil watch's network guard (BPF LSM): with `network.action: deny`, a process
 * of the watched tree (vigil_scope_tgids, shared with the scope object) that
 * connects to an inet address outside the allow list (the LPM tries allow4 and
 * allow6, filled by userspace from `network.allow`) fails with EPERM. A sendmsg
 * that names a destination (UDP sendto without connect, TCP fast open) is
 * checked the same way. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is checked
 * against the IPv4 list. Other families (unix, netlink, ...) and processes
 * outside the tree are untouched. Records: struct vigil_net_denied (shell_guard.h).
 */
#include "vigil_bpf.h"
#include <bpf/bpf_endian.h>
#include "vigil_scope.h"
#include "shell_guard.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_net_denied);
VIGIL_BTF_KEEP(vigil_lpm4_key);
VIGIL_BTF_KEEP(vigil_lpm6_key);

#define EPERM 1
#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_lpm4_key);
	__type(value, __u32);
} allow4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_lpm6_key);
	__type(value, __u32);
} allow6 SEC(".maps");

static __always_inline int vigil_net_check(struct sockaddr *sa, int addrlen, __u32 op)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *depth = bpf_map_lookup_elem(&vigil_scope_tgids, &tgid);
	if (!depth || !sa)
		return 0;
	__u16 family = 0;
	bpf_probe_read_kernel(&family, sizeof(family), &sa->sa_family);
	struct vigil_net_denied r = {};
	if (family == AF_INET) {
		if (addrlen < (int)sizeof(struct sockaddr_in))
			return 0; /* the kernel refuses it with EINVAL */
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		struct vigil_lpm4_key k = { .prefixlen = 32 };
		bpf_probe_read_kernel(k.addr, 4, &in->sin_addr);
		if (bpf_map_lookup_elem(&allow4, &k))
			return 0;
		__builtin_memcpy(r.addr, k.addr, 4);
		__u16 port = 0;
		bpf_probe_read_kernel(&port, sizeof(port), &in->sin_port);
		r.port = bpf_ntohs(port);
	} else if (family == AF_INET6) {
		if (addrlen < (int)sizeof(struct sockaddr_in6))
			return 0;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		struct vigil_lpm6_key k = { .prefixlen = 128 };
		bpf_probe_read_kernel(k.addr, 16, &in6->sin6_addr);
		__u32 w[4];
		__builtin_memcpy(w, k.addr, 16);
		if (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff)) {
			/* ::ffff:a.b.c.d reaches an IPv4 host: the IPv4 list decides */
			struct vigil_lpm4_key k4 = { .prefixlen = 32 };
			__builtin_memcpy(k4.addr, &w[3], 4);
			if (bpf_map_lookup_elem(&allow4, &k4))
				return 0;
		} else if (bpf_map_lookup_elem(&allow6, &k)) {
			return 0;
		}
		__builtin_memcpy(r.addr, k.addr, 16);
		__u16 port = 0;
		bpf_probe_read_kernel(&port, sizeof(port), &in6->sin6_port);
		r.port = bpf_ntohs(port);
	} else {
		return 0;
	}
	r.family = family;
	r.depth = *depth;
	r.op = op;
	vigil_task_fill(&r.task, (struct task_struct *)bpf_get_current_task());
	vigil_hdr_init(&r.hdr, VIGIL_REC_NET_DENIED, sizeof(r));
	vigil_output(&r, sizeof(r));
	vigil_count(VIGIL_STAT_NET_DENIED);
	return -EPERM;
}

SEC("lsm/socket_connect")
int BPF_PROG(vigil_net_guard_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret != 0)
		return ret; /* an earlier program refused: keep its answer */
	return vigil_net_check(address, addrlen, 1);
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(vigil_net_guard_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	if (ret != 0)
		return ret;
	void *name = BPF_CORE_READ(msg, msg_name);
	if (!name)
		return 0; /* a connected socket: its connect was checked */
	return vigil_net_check((struct sockaddr *)name, BPF_CORE_READ(msg, msg_namelen), 2);
}
