/*
 * The exec guard's mapping routes, for test/enforcement/exec-guard.vm.test.ts:
 * maps FILE with PROT_EXEC (mmap_file), maps it read-only and adds PROT_EXEC
 * (file_mprotect), and maps anonymous memory executable (never checked).
 * Prints "mmap_exec=E mprotect_exec=E anon_exec=E" (errno, 0 = allowed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		printf("open=%d\n", errno);
		return 1;
	}
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	int e1 = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 4096);
	void *q = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (q == MAP_FAILED) {
		printf("mmap_read=%d\n", errno);
		return 1;
	}
	int e2 = mprotect(q, 4096, PROT_READ | PROT_EXEC) ? errno : 0;
	void *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int e3 = a == MAP_FAILED ? errno : 0;
	printf("mmap_exec=%d mprotect_exec=%d anon_exec=%d\n", e1, e2, e3);
	return 0;
}
