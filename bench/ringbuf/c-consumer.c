/*
 * Baseline: a C libbpf consumer of the same flood (ring_buffer__poll with a
 * callback per record), run by bench/ringbuf/run.mjs in the same run as the
 * TypeScript consumer. Prints one JSON line with its results.
 * usage: c-consumer OBJ GEN N RINGBYTES [live|drain]
 *   live:  consume while the generator runs (losses show as kernel_drops)
 *   drain: let the generator fill the ring first, then time consuming it
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static unsigned long long received, seqsum;

static int on_record(void *ctx, void *data, size_t len)
{
	(void)ctx;
	if (len >= 24)
		seqsum += *(unsigned long long *)((char *)data + 16);
	received++;
	return 0;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s OBJ GEN N RINGBYTES [live|drain]\n", argv[0]);
		return 2;
	}
	int drain = argc > 5 && !strcmp(argv[5], "drain");
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) return 1;
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"), atoi(argv[4]));
	if (bpf_object__load(obj)) return 1;
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "vigil_flood");
	if (!bpf_program__attach(prog)) return 1;
	int target_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "flood_target"));
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), on_record, NULL, NULL);
	if (!rb) return 1;

	int in[2], out[2];
	if (pipe(in) || pipe(out)) return 1;
	pid_t child = fork();
	if (child == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(argv[2], argv[2], argv[3], (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	__u32 zero = 0, pid = child;
	bpf_map_update_elem(target_fd, &zero, &pid, 0);
	double t0 = now();
	if (write(in[1], "go\n", 3) != 3) return 1;
	int status;
	if (drain) {
		waitpid(child, &status, 0);
		t0 = now();
	} else {
		for (;;) {
			ring_buffer__poll(rb, 10);
			if (waitpid(child, &status, WNOHANG) == child) break;
		}
	}
	while (ring_buffer__consume(rb) > 0)
		;
	double t1 = now();
	char buf[64] = {0};
	if (read(out[0], buf, sizeof buf - 1) < 0) buf[0] = 0;

	/* kernel-side losses: vigil_stats[RB_FULL] summed over CPUs */
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long vals[ncpu];
	__u32 key = 0;
	unsigned long long drops = 0;
	memset(vals, 0, sizeof vals);
	if (!bpf_map_lookup_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "vigil_stats")), &key, vals))
		for (int i = 0; i < ncpu; i++) drops += vals[i];
	printf("{\"consumer\":\"c-libbpf\",\"mode\":\"%s\",\"received\":%llu,\"kernel_drops\":%llu,\"seconds\":%.6f,\"gen_seconds\":%s}\n",
	       drain ? "drain" : "live", received, drops, t1 - t0, buf[0] ? strtok(buf, "\n") : "null");
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
