// Exec storm: N times fork + execve(BIN, [BIN, ARGS...]) + wait, sequentially,
// with an empty environment. Prints elapsed ns on stdout; with STORM_CPU set in its
// environment, a second line: the CPU ns of the storm and its children (user + system:
// fork, exec and whatever a monitor does in their context: BPF programs, audit's
// syscall-exit records).
//   storm N BIN [ARGS...]
// Static C on purpose: a shell loop would spend more in the shell than in exec.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: storm N BIN [ARGS...]\n"); return 2; }
	long n = atol(argv[1]);
	char **args = &argv[2];
	char *const envp[] = { NULL };
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0) { perror("fork"); return 1; }
		if (p == 0) { execve(args[0], args, envp); _exit(127); }
		int st;
		if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "child failed\n"); return 1; }
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	if (getenv("STORM_CPU")) {
		struct rusage self, kids;
		getrusage(RUSAGE_SELF, &self);
		getrusage(RUSAGE_CHILDREN, &kids);
		long long us = 0;
		struct timeval *tv[] = { &self.ru_utime, &self.ru_stime, &kids.ru_utime, &kids.ru_stime };
		for (int i = 0; i < 4; i++) us += (long long)tv[i]->tv_sec * 1000000LL + tv[i]->tv_usec;
		printf("%lld\n", us * 1000LL);
	}
	return 0;
}
