/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * network sensor records (bpf/net/net.bpf.c); decoded by src/sensors/net/.
 * Record types 32..47 and counters 16..31 belong to this sensor (see vigil.h).
 */
#ifndef VIGIL_NET_H
#define VIGIL_NET_H

#include "vigil.h"

#define VIGIL_DNS_MAX 512 /* DNS message bytes kept per send/receive */

enum vigil_net_record_type {
	VIGIL_REC_NET_CONN = 32, /* struct vigil_net_conn */
	VIGIL_REC_NET_DNS = 33,  /* struct vigil_net_dns */
};

/* What the task did (vigil_net_conn.op, vigil_net_dns.op). */
enum vigil_net_op {
	VIGIL_NET_CONNECT = 1,
	VIGIL_NET_ACCEPT = 2,
	VIGIL_NET_BIND = 3,
	VIGIL_NET_LISTEN = 4,
	VIGIL_NET_SEND = 5, /* a DNS message sent (query) */
	VIGIL_NET_RECV = 6, /* a DNS message received (response) */
};

enum vigil_net_flags {
	VIGIL_NF_ADDR = 1 << 0,          /* addr/addr_port/addr_family hold the caller's sockaddr (connect, bind) */
	VIGIL_NF_DNS_TRUNCATED = 1 << 1, /* the message was longer than VIGIL_DNS_MAX: data[] holds its head */
	VIGIL_NF_LOCAL_UNSET = 1 << 2,   /* the socket had no local address yet (failed connect: port released) */
};

/* Counters in vigil_stats (slots 16..31), named in src/sensors/net/layouts.ts. */
enum vigil_net_stat {
	VIGIL_NET_STAT_CONNECT = 16,       /* connect records submitted */
	VIGIL_NET_STAT_ACCEPT = 17,
	VIGIL_NET_STAT_BIND = 18,
	VIGIL_NET_STAT_LISTEN = 19,
	VIGIL_NET_STAT_DNS = 20,           /* DNS message records submitted */
	VIGIL_NET_STAT_DNS_TRUNCATED = 21, /* DNS message cut to VIGIL_DNS_MAX bytes */
	VIGIL_NET_STAT_DNS_FAULT = 22,     /* DNS payload unreadable in user memory: message lost */
	VIGIL_NET_STAT_PENDING_FULL = 23,  /* per-thread syscall state not stored: that syscall lost */
	VIGIL_NET_STAT_LOOPBACK = 24,      /* loopback connections left out by config (not a loss) */
	VIGIL_NET_STAT_NO_SOCK = 25,       /* the fd did not lead to an inet socket at exit: syscall lost */
	VIGIL_NET_STAT_OTHER_PROTO = 26,   /* inet sockets neither TCP nor UDP (raw, ICMP, SCTP): left out */
	VIGIL_NET_STAT_DNS_STALE = 27,     /* a socket remembered as DNS no longer talks to port 53 (fd reused) */
	VIGIL_NET_STAT_UDP_PORT0 = 28,     /* UDP connects to port 0 left out: a route probe (glibc's getaddrinfo sorting), nothing is sent */
	VIGIL_NET_STAT_TAINT = 29,         /* provenance: a process marked network-touched (connect/accept) */
	VIGIL_NET_STAT_TAINT_LOST = 30,    /* provenance: vigil_taint full, a process not marked (its writes go unmarked) */
	VIGIL_NET_STAT_TAINT_FORK = 31,    /* provenance: a child inherited its parent's taint at fork */
};

/* vigil_net_settings.flags */
enum vigil_net_setting_flags {
	VIGIL_NS_LOOPBACK = 1 << 0,       /* report connections whose peer is a loopback address */
	VIGIL_NS_TAINT = 1 << 1,          /* provenance: record network-touched processes in vigil_taint (vigil_taint.h) */
	VIGIL_NS_TAINT_LOOPBACK = 1 << 2, /* provenance: loopback peers count as network */
};

/* Array "net_settings", one entry, written by userspace after load. */
struct vigil_net_settings {
	__u32 self_pid; /* the agent: its own sockets are left out */
	__u32 flags;    /* enum vigil_net_setting_flags */
};

/*
 * A connect, accept, bind or listen on an AF_INET/AF_INET6 TCP or UDP socket.
 * Addresses are 16 bytes: IPv4 in the first 4 (family AF_INET), IPv6 in all 16
 * (an IPv6 socket talking IPv4 holds ::ffff:a.b.c.d). Ports in host order.
 * local_* and remote_* are read from the socket at syscall exit; addr* is the
 * sockaddr the caller passed (connect, bind).
 */
struct vigil_net_conn {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__s32 result;       /* 0 or -errno (accept: 0; failed accepts are not reported) */
	__s32 fd;           /* the socket's fd (accept: the new connection's) */
	__u16 op;           /* enum vigil_net_op */
	__u16 family;       /* the socket's: AF_INET or AF_INET6 */
	__u16 sock_type;    /* SOCK_STREAM or SOCK_DGRAM */
	__u16 protocol;     /* sk_protocol: IPPROTO_TCP, IPPROTO_UDP, ... */
	__u16 local_port;
	__u16 remote_port;
	__u16 addr_port;
	__u16 addr_family;
	__u32 flags;        /* enum vigil_net_flags */
	__u32 _pad0;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u8 addr[16];
};

/*
 * A DNS message sent to or received from port 53: data[] holds data_len bytes
 * of the msg_len the syscall moved (at most VIGIL_DNS_MAX). The peer is the
 * name server (sendto/recvfrom address, else the socket's peer).
 */
struct vigil_net_dns {
	struct vigil_hdr hdr;
	struct vigil_task task;
	__s32 fd;
	__u32 msg_len;      /* bytes the syscall sent or received */
	__u32 data_len;     /* bytes in data[] */
	__u16 op;           /* VIGIL_NET_SEND or VIGIL_NET_RECV */
	__u16 family;       /* the peer's: AF_INET or AF_INET6 */
	__u16 peer_port;
	__u16 flags;        /* enum vigil_net_flags */
	__u16 protocol;     /* IPPROTO_UDP, IPPROTO_TCP (a 2-byte length prefix precedes the message) */
	__u16 _pad0;
	__u8 peer_addr[16];
	__u8 data[];
};

#endif /* VIGIL_NET_H */
