// File-heavy workload for bench/watch/run.mjs: ROUNDS rounds over DIR, each
// reading every one of the FILES files (open, read 4 KiB, close) and writing one
// new file (create, write, close, unlink). Prints the CPU time of its loop in ns
// (CLOCK_PROCESS_CPUTIME_ID: user + system, BPF programs that run in its syscalls
// included; other programs competing for the CPU are not; vigil's start-up is not counted).
//   filework ROUNDS FILES DIR
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) { fprintf(stderr, "usage: filework ROUNDS FILES DIR\n"); return 2; }
	long rounds = atol(argv[1]), files = atol(argv[2]);
	char p[4096], buf[4096];
	struct timespec a, b;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	for (long r = 0; r < rounds; r++) {
		for (long i = 0; i < files; i++) {
			snprintf(p, sizeof p, "%s/src-%ld.txt", argv[3], i);
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0) { perror("open"); return 1; }
			if (read(fd, buf, sizeof buf) < 0) { perror("read"); return 1; }
			close(fd);
		}
		snprintf(p, sizeof p, "%s/out-%ld.txt", argv[3], r);
		int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, 100) < 0) { perror("write"); return 1; }
		close(fd);
		unlink(p);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	return 0;
}
