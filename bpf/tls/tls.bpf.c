// SPDX-License-Identifier: GPL-2.0-only
/*
 * TLS plaintext sensor: uprobes on OpenSSL's SSL_write, SSL_read, SSL_write_ex
 * and SSL_read_ex, attached by userspace (bare SEC("uprobe"): the binary and
 * the symbol are given at attach) in libssl.so.3 and in binaries that carry
 * OpenSSL and export those symbols (node). At entry the buffer pointer is kept
 * per thread; at return the bytes the call moved are known and the first
 * settings.capture of them are copied (the rest is flagged as truncated).
 * Only processes in scope (vigil_scope.h) are stashed: outside a watched tree
 * every call costs one lookup. Records: struct vigil_tls_data in tls.h.
 */
#include "vigil_bpf.h"
#include "vigil_scope.h"
#include "tls.h"

char LICENSE[] SEC("license") = "GPL";

VIGIL_BTF_KEEP(vigil_tls_data);
VIGIL_BTF_KEEP(vigil_tls_settings);
VIGIL_BTF_KEEP_ENUM(vigil_tls_record_type);
VIGIL_BTF_KEEP_ENUM(vigil_tls_func);
VIGIL_BTF_KEEP_ENUM(vigil_tls_flags);
VIGIL_BTF_KEEP_ENUM(vigil_tls_stat);

struct tls_pending {
	__u64 ssl;
	__u64 buf;
	__u64 done_ptr; /* _ex: size_t *written / *readbytes */
	__u32 func;
	__s32 fd;       /* the first socket syscall inside the call, -1 until then */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_pending);
} tls_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_tls_settings);
} tls_settings SEC(".maps");

struct tls_scratch {
	struct vigil_tls_data rec;
	char data[VIGIL_TLS_DATA_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_scratch);
} tls_scratch SEC(".maps");

static __always_inline int enter(struct pt_regs *ctx, __u32 func, bool ex)
{
	__u32 zero = 0;
	struct vigil_tls_settings *s = bpf_map_lookup_elem(&tls_settings, &zero);
	__u64 id = bpf_get_current_pid_tgid();
	if (!s || (__u32)(id >> 32) == s->self_tgid || !vigil_in_scope_tgid(id >> 32))
		return 0;
	struct tls_pending p = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.done_ptr = ex ? PT_REGS_PARM4(ctx) : 0,
		.func = func,
		.fd = -1,
	};
	if (bpf_map_update_elem(&tls_pending, &id, &p, BPF_ANY))
		vigil_count(VIGIL_STAT_TLS_PENDING_LOST);
	return 0;
}

static __always_inline int leave(struct pt_regs *ctx, __u32 func)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_pending *pp = bpf_map_lookup_elem(&tls_pending, &id);
	if (!pp)
		return 0;
	struct tls_pending p = *pp;
	bpf_map_delete_elem(&tls_pending, &id);
	if (p.func != func)
		return 0; /* a nested call of another of the four: the outer one reports */
	long ret = PT_REGS_RC(ctx);
	__u64 len;
	if (p.done_ptr) {
		if (ret != 1)
			return 0;
		__u64 done = 0;
		if (bpf_probe_read_user(&done, sizeof(done), (void *)p.done_ptr))
			return 0;
		len = done;
	} else {
		if ((int)ret <= 0)
			return 0;
		len = (__u32)(int)ret;
	}
	if (!len)
		return 0;

	__u32 zero = 0;
	struct vigil_tls_settings *s = bpf_map_lookup_elem(&tls_settings, &zero);
	struct tls_scratch *sc = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!s || !sc)
		return 0;
	struct vigil_tls_data *r = &sc->rec;
	__u32 cap = s->capture;
	if (cap > VIGIL_TLS_DATA_MAX)
		cap = VIGIL_TLS_DATA_MAX;
	__u32 n = len < cap ? len : cap;
	__u32 flags = 0;
	if (len > n) {
		flags |= VIGIL_TF_TRUNCATED;
		vigil_count(VIGIL_STAT_TLS_TRUNCATED);
	}
	if (n > VIGIL_TLS_DATA_MAX)
		n = VIGIL_TLS_DATA_MAX;
	if (n) {
		/* n is 1..VIGIL_TLS_DATA_MAX (a power of two): the mask keeps it and gives older
		 * verifiers (6.1, 5.10) a bound they can track ('R2 unbounded memory access') */
		__u32 sz = ((n - 1) & (VIGIL_TLS_DATA_MAX - 1)) + 1;
		if (bpf_probe_read_user(sc->data, sz, (void *)p.buf)) {
			flags |= VIGIL_TF_FAULT;
			vigil_count(VIGIL_STAT_TLS_FAULT);
			n = 0;
		}
	}
	vigil_task_fill(&r->task, (struct task_struct *)bpf_get_current_task());
	r->ssl = p.ssl;
	r->func = func;
	r->flags = flags;
	r->len = len > 0xffffffffULL ? 0xffffffff : (__u32)len;
	r->data_len = n;
#ifdef VIGIL_COMPAT
	r->cookie = 0; /* bpf_get_attach_cookie is 5.15+ */
#else
	r->cookie = bpf_get_attach_cookie(ctx);
#endif
	r->fd = p.fd;
	r->_pad0 = 0;
	/* the record's size, bounded where the verifier sees it (6.1 and 5.10 lose n's bound
	 * across the fault branch: 'R3 unbounded memory access' at the ring buffer output);
	 * the empty asm keeps clang from dropping a check it knows to be redundant */
	__u64 dlen = n;
	asm volatile("" : "+r"(dlen));
	if (dlen > VIGIL_TLS_DATA_MAX)
		dlen = VIGIL_TLS_DATA_MAX;
	__u64 size = sizeof(*r) + dlen;
	vigil_hdr_init(&r->hdr, VIGIL_REC_TLS_DATA, size);
	if (!vigil_output(r, size))
		vigil_count(VIGIL_STAT_TLS_EVENTS);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(vigil_tls_write_enter)
{
	return enter(ctx, VIGIL_TLS_SSL_WRITE, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(vigil_tls_write_exit)
{
	return leave(ctx, VIGIL_TLS_SSL_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(vigil_tls_read_enter)
{
	return enter(ctx, VIGIL_TLS_SSL_READ, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(vigil_tls_read_exit)
{
	return leave(ctx, VIGIL_TLS_SSL_READ);
}

SEC("uprobe")
int BPF_KPROBE(vigil_tls_write_ex_enter)
{
	return enter(ctx, VIGIL_TLS_SSL_WRITE_EX, true);
}

SEC("uretprobe")
int BPF_KRETPROBE(vigil_tls_write_ex_exit)
{
	return leave(ctx, VIGIL_TLS_SSL_WRITE_EX);
}

SEC("uprobe")
int BPF_KPROBE(vigil_tls_read_ex_enter)
{
	return enter(ctx, VIGIL_TLS_SSL_READ_EX, true);
}

SEC("uretprobe")
int BPF_KRETPROBE(vigil_tls_read_ex_exit)
{
	return leave(ctx, VIGIL_TLS_SSL_READ_EX);
}

/*
 * The socket behind an SSL call: OpenSSL's socket BIO does its I/O with
 * write/sendto/read/recvfrom inside SSL_write/SSL_read, on the same thread. The
 * first such syscall during a pending call names the fd (one hash lookup per
 * syscall of every process while the sensor is loaded; a memory BIO, as node
 * uses, makes no syscall inside the call: fd stays -1).
 */
static __always_inline int note_fd(long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_pending *p = bpf_map_lookup_elem(&tls_pending, &id);
	if (p && p->fd < 0)
		p->fd = (__s32)fd;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int vigil_tls_write_fd(struct trace_event_raw_sys_enter *ctx)
{
	return note_fd(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int vigil_tls_sendto_fd(struct trace_event_raw_sys_enter *ctx)
{
	return note_fd(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_read")
int vigil_tls_read_fd(struct trace_event_raw_sys_enter *ctx)
{
	return note_fd(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int vigil_tls_recvfrom_fd(struct trace_event_raw_sys_enter *ctx)
{
	return note_fd(ctx->args[0]);
}
