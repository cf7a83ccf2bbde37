// Write + read + exec storm for the provenance bench (bench/provenance/run.mjs).
//   storm N DIR PORT   PORT > 0: connect to 127.0.0.1:PORT first (the storm is then
//                      network-touched: with --provenance-loopback every file it writes is marked)
// Each round: create and write DIR/f<i> (4 KiB), read it back, fork + execve /usr/bin/true.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int n = atoi(argv[1]);
	const char *dir = argv[2];
	int port = atoi(argv[3]);
	if (port > 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
			perror("connect");
			return 1;
		}
		close(s);
	}
	static char buf[4096];
	char path[4096];
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf))
			return 1;
		close(fd);
		fd = open(path, O_RDONLY);
		if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
			return 1;
		close(fd);
		pid_t p = fork();
		if (p == 0) {
			char *args[] = { "/usr/bin/true", NULL };
			execv(args[0], args);
			_exit(127);
		}
		int st;
		waitpid(p, &st, 0);
	}
	return 0;
}
