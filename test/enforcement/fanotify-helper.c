/*
 * Static helper for the fanotify exec guard tests (test/enforcement/fanotify*.test.ts).
 *
 *   helper par N PATH        fork N children at once, each execve(PATH); print one line per
 *                            child: "<errno or 0> <microseconds from fork to reap>", then
 *                            "max <us>" (the slowest exec: fork, the permission answer, exit).
 *                            A PATH with "%d" names one file per child (PATH with 0..N-1)
 *   helper memfd PATH        copy PATH into a memfd and fexecve it; on failure print
 *                            "fexecve: <errno>" and exit 126
 *   helper exec PATH         execve(PATH); on failure print "execve: <errno>" and exit 126
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "par")) {
    int n = atoi(argv[2]);
    char *path = argv[3];
    pid_t *pids = calloc(n, sizeof *pids);
    long long *start = calloc(n, sizeof *start);
    int p[2];
    if (pipe(p)) return 2;
    for (int i = 0; i < n; i++) {
      char file[4096];
      if (strstr(path, "%d")) snprintf(file, sizeof file, path, i);
      else snprintf(file, sizeof file, "%s", path);
      start[i] = now_us();
      pid_t c = fork();
      if (c == 0) {
        char *av[] = {file, NULL};
        execve(file, av, environ);
        int e = errno;
        _exit(e > 0 && e < 126 ? e : 125);
      }
      pids[i] = c;
    }
    long long max = 0;
    for (int done = 0; done < n; done++) {
      int st;
      pid_t c = waitpid(-1, &st, 0);
      long long t = now_us();
      for (int i = 0; i < n; i++) {
        if (pids[i] == c) {
          long long us = t - start[i];
          if (us > max) max = us;
          printf("%d %lld\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), us);
        }
      }
    }
    printf("max %lld\n", max);
    return 0;
  }
  if (argc >= 3 && !strcmp(argv[1], "memfd")) {
    int src = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (src < 0) { printf("open: %d\n", errno); return 2; }
    int m = memfd_create("vigil-test", MFD_CLOEXEC);
    if (m < 0) { printf("memfd_create: %d\n", errno); return 2; }
    char buf[65536];
    ssize_t r;
    while ((r = read(src, buf, sizeof buf)) > 0) {
      if (write(m, buf, r) != r) return 2;
    }
    char *av[] = {argv[2], NULL};
    fexecve(m, av, environ);
    printf("fexecve: %d\n", errno);
    fflush(stdout);
    return 126;
  }
  if (argc >= 3 && !strcmp(argv[1], "exec")) {
    char *av[] = {argv[2], NULL};
    execve(argv[2], av, environ);
    printf("execve: %d\n", errno);
    fflush(stdout);
    return 126;
  }
  fprintf(stderr, "usage: helper par N PATH | memfd PATH | exec PATH\n");
  return 2;
}
