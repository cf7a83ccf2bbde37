// File workload for bench/pipeline/record.mjs: N rounds in DIR of
// create+write, chmod +x, rename, truncate, unlink (what the file sensor reports).
//   fileops N DIR
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: fileops N DIR\n"); return 2; }
	long n = atol(argv[1]);
	char a[4096], b[4096];
	const char line[] = "2026-11-29T10:00:00Z,checkout,200,0.031,eu-west-1,build-7f3a\n";
	for (long i = 0; i < n; i++) {
		snprintf(a, sizeof a, "%s/report-%ld.csv", argv[2], i);
		snprintf(b, sizeof b, "%s/report-%ld.done", argv[2], i);
		int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) { perror("open"); return 1; }
		if (write(fd, line, sizeof line - 1) < 0) { perror("write"); return 1; }
		close(fd);
		if (chmod(a, 0755) || rename(a, b) || truncate(b, 0) || unlink(b)) { perror("op"); return 1; }
	}
	return 0;
}
