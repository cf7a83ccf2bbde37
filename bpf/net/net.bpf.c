// SPDX-License-Identifier: GPL-2.0-only
/*
 * network sensor: connect, accept, bind and listen on TCP/UDP over IPv4/IPv6,
 * and plaintext DNS messages to and from port 53, from syscall tracepoints
 * only (no kprobes, fentry or LSM; loads on 5.10 and later: no bpf_loop, no
 * kfuncs, no BTF-typed task pointers).
 *
 * The enter handler keeps what the exit handler needs (the caller's sockaddr,
 * user buffer pointers) in a per-thread hash keyed by pid_tgid; the exit
 * handler reads the socket behind the fd (task->files->fdt->fd[fd] →
 * file->private_data → sk) for the local and remote ends and the protocol.
 *
 * DNS: a socket that connects to port 53 (glibc's resolver) or sends to port
 * 53 is remembered in dns_socks by (tgid, fd); sends and receives on it are
 * captured (the first VIGIL_DNS_MAX bytes). Every other sendto/recvfrom costs
 * one hash lookup (plus a 4-byte user read when sendto names an address).
 * A hit is checked against the socket at exit, so a reused fd is dropped.
 *
 * Records: struct vigil_net_conn / vigil_net_dns in net.h.
 */
#include "vigil_bpf.h"
#include <bpf/bpf_endian.h>
#include "net.h"
#include "vigil_taint.h"
#include "vigil_scope.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_net_conn);
VIGIL_BTF_KEEP(vigil_net_dns);
VIGIL_BTF_KEEP(vigil_net_settings);
VIGIL_BTF_KEEP_ENUM(vigil_net_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_net_op);
VIGIL_BTF_KEEP_ENUM(vigil_net_flags);
VIGIL_BTF_KEEP_ENUM(vigil_net_stat);
VIGIL_BTF_KEEP_ENUM(vigil_net_setting_flags);
VIGIL_BTF_KEEP(vigil_taint);
VIGIL_BTF_KEEP(vigil_mark_key);
VIGIL_BTF_KEEP(vigil_mark);
VIGIL_BTF_KEEP_ENUM(vigil_taint_flags);

#define V_AF_INET 2
#define V_AF_INET6 10
#define V_SOCK_STREAM 1
#define V_SOCK_DGRAM 2
#define V_IPPROTO_TCP 6
#define V_IPPROTO_UDP 17
#define V_IPPROTO_UDPLITE 136
#define V_IPPROTO_MPTCP 262
#define V_S_IFMT 0170000
#define V_S_IFSOCK 0140000
#define V_EINPROGRESS 115
#define DNS_PORT 53
#define DNS_MMSG_MAX 2 /* messages of one sendmmsg captured (glibc sends A and AAAA together) */

/* What an exit handler finds from its enter handler. */
enum pending_kind {
	P_CONNECT = 1,
	P_BIND,
	P_LISTEN,
	P_SENDTO,
	P_SENDMSG,
	P_SENDMMSG,
	P_RECVFROM,
	P_RECVMSG,
};

struct net_pending {
	__u64 ptr; /* user buffer, msghdr or mmsghdr vector */
	__u64 aux; /* recvfrom: the sockaddr it fills */
	__s32 fd;
	__u16 kind; /* enum pending_kind */
	__u16 addr_family;
	__u16 addr_port;
	__u16 _pad[3];
	__u8 addr[16];
};

/*
 * Contexts of the syscall tracepoints (their format files: 8 bytes of common
 * fields, __syscall_nr, then the arguments or the return value, each 8 bytes).
 * Fixed ABI: declared here without CO-RE relocation, so ctx offsets stay constants.
 */
struct sys_enter_ctx {
	__u64 _common;
	__s64 nr;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 _common;
	__s64 nr;
	__s64 ret;
};

/* User-space ABI structs (x86-64 layout; not relocated: they are not kernel types). */
struct u_iovec {
	__u64 base;
	__u64 len;
};

struct u_msghdr {
	__u64 name;
	__s32 namelen;
	__s32 _pad0;
	__u64 iov;
	__u64 iovlen;
	__u64 control;
	__u64 controllen;
	__u32 flags;
	__u32 _pad1;
};

struct u_mmsghdr {
	struct u_msghdr hdr;
	__u32 len;
	__u32 _pad0;
};

/* A thread is in one syscall at a time: pid_tgid is a unique key. LRU: an exit never seen cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct net_pending);
} net_pending SEC(".maps");

/* Sockets that talk to port 53: key tgid << 32 | fd. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} dns_socks SEC(".maps");

/*
 * Prefilter of dns_socks by process: one byte per tgid modulo 262,144, set when
 * a socket of that process is remembered as DNS (never cleared: a collision or a
 * stale mark only costs the hash lookup it saves). Processes that never talked
 * to port 53 pay an inlined array load on send/recv, not two hash lookups.
 */
#define DNS_PROC_WORDS 32768

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DNS_PROC_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} dns_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_net_settings);
} net_settings SEC(".maps");

struct dns_scratch {
	struct vigil_net_dns d;
	__u8 data[VIGIL_DNS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dns_scratch SEC(".maps");

static __always_inline struct vigil_net_settings *settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&net_settings, &zero);
}

static __always_inline bool is_self(__u64 pid_tgid)
{
	struct vigil_net_settings *s = settings();
	/* outside a watched tree (vigil_scope.h) counts as not ours to report */
	return (s && s->self_pid == (__u32)(pid_tgid >> 32)) || !vigil_in_scope_tgid(pid_tgid >> 32);
}

static __always_inline __u64 sock_key(__u64 pid_tgid, int fd)
{
	return (pid_tgid & 0xffffffff00000000ULL) | (__u32)fd;
}

static __always_inline __u8 *dns_proc_slot(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	__u32 idx = (tgid >> 3) & (DNS_PROC_WORDS - 1);
	__u8 *w = bpf_map_lookup_elem(&dns_procs, &idx);
	if (!w)
		return NULL;
	return w + (tgid & 7);
}

/* Has this process (or one sharing its slot) ever had a DNS socket? */
static __always_inline bool dns_proc(__u64 pid_tgid)
{
	__u8 *b = dns_proc_slot(pid_tgid);
	return b && *b;
}

static __always_inline void mark_dns_proc(__u64 pid_tgid)
{
	__u8 *b = dns_proc_slot(pid_tgid);
	if (b && !*b)
		*b = 1; /* a byte store: no lost update between CPUs, no atomics (5.10) */
}

/* Remember a socket as talking to port 53 (and its process in the prefilter). */
static __always_inline void remember_dns_sock(__u64 pid_tgid, int fd)
{
	__u64 key = sock_key(pid_tgid, fd);
	__u32 one = 1;
	mark_dns_proc(pid_tgid);
	bpf_map_update_elem(&dns_socks, &key, &one, BPF_ANY);
}

/*
 * Read a user sockaddr: family, port (host order) and address. Returns false
 * when unreadable, not AF_INET/AF_INET6, or its port is not `want_port`
 * (0: any). The address is read only when the rest matched.
 */
static __always_inline bool read_user_sockaddr(__u64 uaddr, __u16 want_port, __u16 *family, __u16 *port, __u8 *addr)
{
	__u16 hdr[2];
	if (!uaddr || bpf_probe_read_user(hdr, sizeof(hdr), (void *)uaddr))
		return false;
	if (hdr[0] != V_AF_INET && hdr[0] != V_AF_INET6)
		return false;
	__u16 p = bpf_ntohs(hdr[1]);
	if (want_port && p != want_port)
		return false;
	if (hdr[0] == V_AF_INET) {
		if (bpf_probe_read_user(addr, 4, (void *)(uaddr + 4)))
			return false;
	} else {
		if (bpf_probe_read_user(addr, 16, (void *)(uaddr + 8)))
			return false;
	}
	*family = hdr[0];
	*port = p;
	return true;
}

/* The socket behind fd in the current task (NULL when the fd is not a socket). */
static __always_inline struct sock *sock_of_fd(int fd, __u16 *type)
{
	if (fd < 0)
		return NULL;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & V_S_IFMT) != V_S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	*type = BPF_CORE_READ(sock, type);
	return BPF_CORE_READ(sock, sk);
}

/* Local and remote ends of an inet socket. */
static __always_inline void read_ends(struct sock *sk, __u16 family, __u8 *local, __u16 *lport, __u8 *remote, __u16 *rport)
{
	*lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == V_AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(local, &l, 4);
		__builtin_memcpy(remote, &r, 4);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)local, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)remote, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline bool is_loopback(__u16 family, const __u8 *a)
{
	if (family == V_AF_INET)
		return a[0] == 127;
	/* ::1 */
	bool zero10 = true;
	for (int i = 0; i < 10; i++)
		if (a[i])
			zero10 = false;
	if (!zero10)
		return false;
	if (a[10] == 0 && a[11] == 0 && a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 1)
		return true;
	/* ::ffff:127.x.y.z */
	return a[10] == 0xff && a[11] == 0xff && a[12] == 127;
}

static __always_inline bool tcp_or_udp(__u16 type, __u16 protocol)
{
	if (type == V_SOCK_STREAM)
		return protocol == V_IPPROTO_TCP || protocol == V_IPPROTO_MPTCP;
	if (type == V_SOCK_DGRAM)
		return protocol == V_IPPROTO_UDP || protocol == V_IPPROTO_UDPLITE;
	return false;
}

static __always_inline void store_pending(__u64 id, struct net_pending *p)
{
	if (bpf_map_update_elem(&net_pending, &id, p, BPF_ANY))
		vigil_count(VIGIL_NET_STAT_PENDING_FULL);
}

/* Take (and remove) this thread's pending state of the given kind. */
static __always_inline bool take_pending(__u64 id, __u16 kind, struct net_pending *out)
{
	struct net_pending *p = bpf_map_lookup_elem(&net_pending, &id);
	if (!p)
		return false;
	__builtin_memcpy(out, p, sizeof(*out));
	bpf_map_delete_elem(&net_pending, &id);
	return out->kind == kind;
}

/*
 * Provenance: the process talked to a peer over an inet socket (connect that
 * succeeded or is in progress, accept). DNS (port 53) does not count: a name
 * lookup brings no content. Loopback peers count only when configured.
 */
static __always_inline void taint_net(struct vigil_net_settings *s, __u16 family, __u16 port, const __u8 *addr)
{
	if (!s || !(s->flags & VIGIL_NS_TAINT) || port == DNS_PORT)
		return;
	if (!(s->flags & VIGIL_NS_TAINT_LOOPBACK) && is_loopback(family, addr))
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct vigil_taint *t = bpf_map_lookup_elem(&vigil_taint, &tgid);
	if (t) {
		/* fields of a live entry: a reader may see a mix of two peers, never a torn record header */
		t->net_ns = bpf_ktime_get_boot_ns();
		t->family = family;
		t->port = port;
		__builtin_memcpy(t->addr, addr, 16);
		t->flags = (t->flags | VIGIL_TAINT_NET) & ~VIGIL_TAINT_INHERIT;
		return;
	}
	struct vigil_taint n = {};
	n.net_ns = bpf_ktime_get_boot_ns();
	n.family = family;
	n.port = port;
	n.flags = VIGIL_TAINT_NET;
	__builtin_memcpy(n.addr, addr, 16);
	if (bpf_map_update_elem(&vigil_taint, &tgid, &n, BPF_ANY))
		vigil_count(VIGIL_NET_STAT_TAINT_LOST);
	else
		vigil_count(VIGIL_NET_STAT_TAINT);
}

/* Build and submit a connection record for the socket at fd. */
static __always_inline void emit_conn(__u16 op, int fd, long result, struct net_pending *p)
{
	struct vigil_net_conn r = {};
	__u16 type = 0;
	struct sock *sk = sock_of_fd(fd, &type);
	if (!sk) {
		vigil_count(VIGIL_NET_STAT_NO_SOCK);
		return;
	}
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != V_AF_INET && family != V_AF_INET6)
		return; /* AF_UNIX, netlink, ...: not ours */
	__u16 protocol = BPF_CORE_READ(sk, sk_protocol);
	if (!tcp_or_udp(type, protocol)) {
		vigil_count(VIGIL_NET_STAT_OTHER_PROTO);
		return;
	}
	/* connect(2) of a UDP socket to port 0 only asks for a route and source address: nothing can be sent there */
	if (op == VIGIL_NET_CONNECT && p && type == V_SOCK_DGRAM && p->addr_port == 0) {
		vigil_count(VIGIL_NET_STAT_UDP_PORT0);
		return;
	}
	r.result = result;
	r.fd = fd;
	r.op = op;
	r.family = family;
	r.sock_type = type;
	r.protocol = protocol;
	read_ends(sk, family, r.local_addr, &r.local_port, r.remote_addr, &r.remote_port);
	if (p) {
		r.flags |= VIGIL_NF_ADDR;
		r.addr_family = p->addr_family;
		r.addr_port = p->addr_port;
		__builtin_memcpy(r.addr, p->addr, 16);
	}
	if (r.local_port == 0)
		r.flags |= VIGIL_NF_LOCAL_UNSET;

	/* a resolver's socket: its sends and receives are DNS (kept even when loopback is left out) */
	if (op == VIGIL_NET_CONNECT && p && p->addr_port == DNS_PORT && (result == 0 || result == -V_EINPROGRESS))
		remember_dns_sock(bpf_get_current_pid_tgid(), fd);

	struct vigil_net_settings *s = settings();
	if (op == VIGIL_NET_CONNECT && p && (result == 0 || result == -V_EINPROGRESS))
		taint_net(s, p->addr_family, p->addr_port, p->addr);
	else if (op == VIGIL_NET_ACCEPT)
		taint_net(s, family, r.remote_port, r.remote_addr);
	if (s && !(s->flags & VIGIL_NS_LOOPBACK)) {
		bool lo;
		if (op == VIGIL_NET_CONNECT && p)
			lo = is_loopback(p->addr_family, p->addr);
		else if (op == VIGIL_NET_ACCEPT)
			lo = is_loopback(family, r.remote_addr);
		else
			lo = is_loopback(family, r.local_addr);
		if (lo) {
			vigil_count(VIGIL_NET_STAT_LOOPBACK);
			return;
		}
	}

	vigil_task_fill(&r.task, (struct task_struct *)bpf_get_current_task());
	vigil_hdr_init(&r.hdr, VIGIL_REC_NET_CONN, sizeof(r));
	if (!vigil_output(&r, sizeof(r)))
		vigil_count(VIGIL_NET_STAT_CONNECT + op - VIGIL_NET_CONNECT);
}

/* connect(fd, uservaddr, addrlen) and bind(fd, umyaddr, addrlen): keep the sockaddr */
static __always_inline int enter_addr(struct sys_enter_ctx *ctx, __u16 kind)
{
	struct net_pending p = {};
	if (!read_user_sockaddr(ctx->args[1], 0, &p.addr_family, &p.addr_port, p.addr))
		return 0; /* AF_UNIX, AF_UNSPEC, ...: nothing kept */
	__u64 id = bpf_get_current_pid_tgid();
	if (is_self(id))
		return 0;
	p.kind = kind;
	p.fd = (int)ctx->args[0];
	store_pending(id, &p);
	return 0;
}

static __always_inline int exit_addr(struct sys_exit_ctx *ctx, __u16 kind, __u16 op)
{
	struct net_pending p;
	if (!take_pending(bpf_get_current_pid_tgid(), kind, &p))
		return 0;
	emit_conn(op, p.fd, ctx->ret, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int vigil_net_connect_enter(struct sys_enter_ctx *ctx)
{
	return enter_addr(ctx, P_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int vigil_net_connect_exit(struct sys_exit_ctx *ctx)
{
	return exit_addr(ctx, P_CONNECT, VIGIL_NET_CONNECT);
}

SEC("tracepoint/syscalls/sys_enter_bind")
int vigil_net_bind_enter(struct sys_enter_ctx *ctx)
{
	return enter_addr(ctx, P_BIND);
}

SEC("tracepoint/syscalls/sys_exit_bind")
int vigil_net_bind_exit(struct sys_exit_ctx *ctx)
{
	return exit_addr(ctx, P_BIND, VIGIL_NET_BIND);
}

SEC("tracepoint/syscalls/sys_enter_listen")
int vigil_net_listen_enter(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (is_self(id))
		return 0;
	struct net_pending p = {};
	p.kind = P_LISTEN;
	p.fd = (int)ctx->args[0];
	store_pending(id, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int vigil_net_listen_exit(struct sys_exit_ctx *ctx)
{
	struct net_pending p;
	if (!take_pending(bpf_get_current_pid_tgid(), P_LISTEN, &p))
		return 0;
	emit_conn(VIGIL_NET_LISTEN, p.fd, ctx->ret, NULL);
	return 0;
}

/* accept/accept4: only the exit matters, the new fd is the connection (failures are not reported) */
static __always_inline int exit_accept(struct sys_exit_ctx *ctx)
{
	long ret = ctx->ret;
	if (ret < 0)
		return 0;
	if (is_self(bpf_get_current_pid_tgid()))
		return 0;
	emit_conn(VIGIL_NET_ACCEPT, (int)ret, 0, NULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int vigil_net_accept_exit(struct sys_exit_ctx *ctx)
{
	return exit_accept(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int vigil_net_accept4_exit(struct sys_exit_ctx *ctx)
{
	return exit_accept(ctx);
}

/* ---- provenance: children inherit the taint, a gone process leaves none behind ---- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_taint_fork, struct task_struct *parent, struct task_struct *child)
{
	struct vigil_net_settings *s = settings();
	if (!s || !(s->flags & VIGIL_NS_TAINT))
		return 0;
	/* threads share their process's entry */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	struct vigil_taint *t = bpf_map_lookup_elem(&vigil_taint, &ptgid);
	if (!t)
		return 0;
	struct vigil_taint c = *t;
	c.flags |= VIGIL_TAINT_INHERIT;
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (bpf_map_update_elem(&vigil_taint, &ctgid, &c, BPF_ANY))
		vigil_count(VIGIL_NET_STAT_TAINT_LOST);
	else
		vigil_count(VIGIL_NET_STAT_TAINT_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_taint_exit, struct task_struct *p)
{
	struct vigil_net_settings *s = settings();
	if (!s || !(s->flags & VIGIL_NS_TAINT))
		return 0;
	/* only when the whole thread group is gone (its tgid may be reused next) */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	bpf_map_delete_elem(&vigil_taint, &tgid);
	return 0;
}

/* ---- DNS ---- */

/*
 * Submit one DNS message: buf holds msg_len bytes of which at most cap are in
 * this buffer. The peer comes from uaddr (the sendto/recvfrom sockaddr) when
 * given, else from the socket, and must be port 53.
 */
static __always_inline void emit_dns(__u16 op, int fd, __u64 buf, __u64 cap, __u64 msg_len, __u64 uaddr)
{
	__u32 zero = 0;
	struct dns_scratch *s = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!s)
		return;
	struct vigil_net_dns *d = &s->d;
	__u16 type = 0;
	struct sock *sk = sock_of_fd(fd, &type);
	d->flags = 0;
	d->_pad0 = 0;
	d->protocol = V_IPPROTO_UDP;
	if (sk)
		d->protocol = BPF_CORE_READ(sk, sk_protocol);
	__builtin_memset(d->peer_addr, 0, sizeof(d->peer_addr));
	if (uaddr) {
		__u16 fam = 0, port = 0;
		if (!read_user_sockaddr(uaddr, DNS_PORT, &fam, &port, d->peer_addr))
			return; /* a datagram from elsewhere */
		d->family = fam;
		d->peer_port = port;
	} else {
		if (!sk) {
			vigil_count(VIGIL_NET_STAT_NO_SOCK);
			return;
		}
		__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
		__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if ((family != V_AF_INET && family != V_AF_INET6) || rport != DNS_PORT) {
			/* the fd now names another socket */
			__u64 key = sock_key(bpf_get_current_pid_tgid(), fd);
			bpf_map_delete_elem(&dns_socks, &key);
			vigil_count(VIGIL_NET_STAT_DNS_STALE);
			return;
		}
		d->family = family;
		d->peer_port = rport;
		if (family == V_AF_INET) {
			__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
			__builtin_memcpy(d->peer_addr, &r, 4);
		} else {
			BPF_CORE_READ_INTO((struct in6_addr *)d->peer_addr, sk, __sk_common.skc_v6_daddr);
		}
	}

	__u64 n = msg_len;
	if (n > cap)
		n = cap;
	if (n > VIGIL_DNS_MAX) {
		n = VIGIL_DNS_MAX;
		d->flags |= VIGIL_NF_DNS_TRUNCATED;
	}
	if (n < msg_len && !(d->flags & VIGIL_NF_DNS_TRUNCATED)) {
		d->flags |= VIGIL_NF_DNS_TRUNCATED; /* more than one iovec: only the first is read */
	}
	if (d->flags & VIGIL_NF_DNS_TRUNCATED)
		vigil_count(VIGIL_NET_STAT_DNS_TRUNCATED);
	n &= 0x3ff; /* n <= VIGIL_DNS_MAX already: the mask tells the verifier */
	if (n > VIGIL_DNS_MAX)
		return;
	if (n && bpf_probe_read_user(s->data, n, (void *)buf)) {
		vigil_count(VIGIL_NET_STAT_DNS_FAULT);
		return;
	}
	d->fd = fd;
	d->msg_len = msg_len;
	d->data_len = n;
	d->op = op;
	vigil_task_fill(&d->task, (struct task_struct *)bpf_get_current_task());
	__u64 size = sizeof(*d) + n;
	vigil_hdr_init(&d->hdr, VIGIL_REC_NET_DNS, size);
	if (!vigil_output(d, size))
		vigil_count(VIGIL_NET_STAT_DNS);
}

/* A socket remembered as DNS (the prefilter first: most processes never were). */
static __always_inline bool dns_sock(__u64 id, int fd)
{
	if (!dns_proc(id))
		return false;
	__u64 key = sock_key(id, fd);
	return bpf_map_lookup_elem(&dns_socks, &key) != NULL;
}

/* sendto(fd, buff, len, flags, addr, addr_len); send() is sendto with no address */
SEC("tracepoint/syscalls/sys_enter_sendto")
int vigil_dns_sendto_enter(struct sys_enter_ctx *ctx)
{
	int fd = (int)ctx->args[0];
	__u64 id = bpf_get_current_pid_tgid();
	struct net_pending p = {};
	__u64 uaddr = ctx->args[4];
	if (uaddr) {
		if (!read_user_sockaddr(uaddr, DNS_PORT, &p.addr_family, &p.addr_port, p.addr))
			return 0;
	} else if (!dns_sock(id, fd)) {
		return 0;
	}
	if (is_self(id))
		return 0;
	mark_dns_proc(id);
	p.kind = P_SENDTO;
	p.fd = fd;
	p.ptr = ctx->args[1];
	p.aux = uaddr;
	store_pending(id, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int vigil_dns_sendto_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct net_pending p;
	if (!dns_proc(id) || !take_pending(id, P_SENDTO, &p) || ctx->ret <= 0)
		return 0;
	/* an unconnected socket: its answer comes back by recvfrom on the same fd */
	if (p.aux)
		remember_dns_sock(id, p.fd);
	emit_dns(VIGIL_NET_SEND, p.fd, p.ptr, ctx->ret, ctx->ret, p.aux);
	return 0;
}

/* sendmsg(fd, msg, flags) */
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int vigil_dns_sendmsg_enter(struct sys_enter_ctx *ctx)
{
	int fd = (int)ctx->args[0];
	__u64 id = bpf_get_current_pid_tgid();
	__u64 msg = ctx->args[1];
	__u64 name = 0;
	if (!dns_sock(id, fd)) {
		struct net_pending tmp = {};
		if (bpf_probe_read_user(&name, sizeof(name), (void *)msg) || !name)
			return 0;
		if (!read_user_sockaddr(name, DNS_PORT, &tmp.addr_family, &tmp.addr_port, tmp.addr))
			return 0;
	}
	if (is_self(id))
		return 0;
	mark_dns_proc(id);
	struct net_pending p = {};
	p.kind = P_SENDMSG;
	p.fd = fd;
	p.ptr = msg;
	store_pending(id, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int vigil_dns_sendmsg_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct net_pending p;
	if (!dns_proc(id) || !take_pending(id, P_SENDMSG, &p) || ctx->ret <= 0)
		return 0;
	struct u_msghdr m;
	struct u_iovec iov;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)p.ptr) || !m.iov || !m.iovlen ||
	    bpf_probe_read_user(&iov, sizeof(iov), (void *)m.iov)) {
		vigil_count(VIGIL_NET_STAT_DNS_FAULT);
		return 0;
	}
	if (m.name)
		remember_dns_sock(id, p.fd);
	emit_dns(VIGIL_NET_SEND, p.fd, iov.base, iov.len, ctx->ret, m.name);
	return 0;
}

/* sendmmsg(fd, mmsg, vlen, flags): glibc's resolver sends the A and AAAA queries in one call */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int vigil_dns_sendmmsg_enter(struct sys_enter_ctx *ctx)
{
	int fd = (int)ctx->args[0];
	__u64 id = bpf_get_current_pid_tgid();
	__u64 vec = ctx->args[1];
	if (!dns_sock(id, fd)) {
		struct net_pending tmp = {};
		__u64 name = 0;
		if (bpf_probe_read_user(&name, sizeof(name), (void *)vec) || !name)
			return 0;
		if (!read_user_sockaddr(name, DNS_PORT, &tmp.addr_family, &tmp.addr_port, tmp.addr))
			return 0;
	}
	if (is_self(id))
		return 0;
	mark_dns_proc(id);
	struct net_pending p = {};
	p.kind = P_SENDMMSG;
	p.fd = fd;
	p.ptr = vec;
	store_pending(id, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int vigil_dns_sendmmsg_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct net_pending p;
	long sent = ctx->ret;
	if (!dns_proc(id) || !take_pending(id, P_SENDMMSG, &p) || sent <= 0)
		return 0;
#pragma unroll
	for (int i = 0; i < DNS_MMSG_MAX; i++) {
		if (i >= sent)
			break;
		struct u_mmsghdr m;
		struct u_iovec iov;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)(p.ptr + i * sizeof(struct u_mmsghdr))) || !m.hdr.iov ||
		    !m.hdr.iovlen || bpf_probe_read_user(&iov, sizeof(iov), (void *)m.hdr.iov)) {
			vigil_count(VIGIL_NET_STAT_DNS_FAULT);
			continue;
		}
		if (m.hdr.name)
			remember_dns_sock(id, p.fd);
		emit_dns(VIGIL_NET_SEND, p.fd, iov.base, iov.len, m.len, m.hdr.name);
	}
	return 0;
}

/* recvfrom(fd, ubuf, size, flags, addr, addr_len); recv() is recvfrom with no address */
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int vigil_dns_recvfrom_enter(struct sys_enter_ctx *ctx)
{
	int fd = (int)ctx->args[0];
	__u64 id = bpf_get_current_pid_tgid();
	if (!dns_sock(id, fd) || is_self(id))
		return 0;
	struct net_pending p = {};
	p.kind = P_RECVFROM;
	p.fd = fd;
	p.ptr = ctx->args[1];
	p.aux = ctx->args[4];
	store_pending(id, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int vigil_dns_recvfrom_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct net_pending p;
	if (!dns_proc(id) || !take_pending(id, P_RECVFROM, &p) || ctx->ret <= 0)
		return 0;
	emit_dns(VIGIL_NET_RECV, p.fd, p.ptr, ctx->ret, ctx->ret, p.aux);
	return 0;
}

/* recvmsg(fd, msg, flags) */
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int vigil_dns_recvmsg_enter(struct sys_enter_ctx *ctx)
{
	int fd = (int)ctx->args[0];
	__u64 id = bpf_get_current_pid_tgid();
	if (!dns_sock(id, fd) || is_self(id))
		return 0;
	struct net_pending p = {};
	p.kind = P_RECVMSG;
	p.fd = fd;
	p.ptr = ctx->args[1];
	store_pending(id, &p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int vigil_dns_recvmsg_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct net_pending p;
	if (!dns_proc(id) || !take_pending(id, P_RECVMSG, &p) || ctx->ret <= 0)
		return 0;
	struct u_msghdr m;
	struct u_iovec iov;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)p.ptr) || !m.iov || !m.iovlen ||
	    bpf_probe_read_user(&iov, sizeof(iov), (void *)m.iov)) {
		vigil_count(VIGIL_NET_STAT_DNS_FAULT);
		return 0;
	}
	emit_dns(VIGIL_NET_RECV, p.fd, iov.base, iov.len, ctx->ret, m.name);
	return 0;
}
