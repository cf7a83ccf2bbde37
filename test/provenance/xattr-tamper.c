/*
 * Tries to change a file's origin record as a process that is not vigil
 * (test/provenance/provenance.vm.test.ts, docs/provenance.md TAMPERING):
 * first as UID (the file's owner, not root) in a child, then as root: rewrite
 * (setxattr) and remove (removexattr). Prints one line:
 *   owner_set=E owner_remove=E root_set=E root_remove=E
 * where E is OK or the errno name.
 * usage: xattr-tamper FILE NAME UID
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *res(int rc)
{
	return rc == 0 ? "OK" : strerrorname_np(errno);
}

static void attempt(const char *who, const char *file, const char *name)
{
	static const char junk[] = "{\"v\":1,\"kind\":\"manual\"}";
	int set = setxattr(file, name, junk, sizeof(junk) - 1, 0);
	const char *s = res(set);
	int rm = removexattr(file, name);
	printf("%s_set=%s %s_remove=%s", who, s, who, res(rm));
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE NAME UID\n", argv[0]);
		return 2;
	}
	uid_t uid = (uid_t)atoi(argv[3]);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) {
			perror("setresuid");
			_exit(3);
		}
		attempt("owner", argv[1], argv[2]);
		printf(" ");
		fflush(stdout);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 3;
	attempt("root", argv[1], argv[2]);
	printf("\n");
	return 0;
}
