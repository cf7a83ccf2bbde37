// Network workload for bench/pipeline/record.mjs: N rounds of a TCP connection
// over loopback (connect, accept, a request line each way, close) and a UDP
// datagram to a bound port: what the network sensor reports (connect, accept,
// bind, listen; TCP and UDP).
//   netops N
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: netops N\n"); return 2; }
	long n = atol(argv[1]);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64) ||
	    getsockname(ls, (struct sockaddr *)&a, &al)) { perror("listen"); return 1; }
	struct sockaddr_in u = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t ul = sizeof u;
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (us < 0 || bind(us, (struct sockaddr *)&u, sizeof u) || getsockname(us, (struct sockaddr *)&u, &ul)) { perror("udp"); return 1; }
	const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char buf[256];
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
		int s = accept(ls, NULL, NULL);
		if (s < 0) { perror("accept"); return 1; }
		if (write(c, req, sizeof req - 1) < 0 || read(s, buf, sizeof buf) < 0 || write(s, "HTTP/1.1 204\r\n\r\n", 16) < 0) { perror("io"); return 1; }
		close(s);
		close(c);
		int d = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (d < 0 || connect(d, (struct sockaddr *)&u, sizeof u) || write(d, "ping", 4) < 0) { perror("udp send"); return 1; }
		close(d);
		if (read(us, buf, sizeof buf) < 0) { perror("udp recv"); return 1; }
	}
	return 0;
}
