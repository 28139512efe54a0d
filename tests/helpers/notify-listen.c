/* Test helper: plays the service manager's side of sd_notify. Binds a datagram socket at PATH,
 * prints every message received (newlines inside a message shown as '|'), one per line, until
 * it has seen a message containing STOP_TEXT or TIMEOUT seconds passed. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PATH STOP_TEXT TIMEOUT\n", argv[0]);
		return 2;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	strcpy(sa.sun_path, argv[1]);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	time_t deadline = time(NULL) + strtol(argv[3], NULL, 10);
	char buf[4096];
	while (time(NULL) < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		buf[n] = '\0';
		for (char *c = buf; *c; c++)
			if (*c == '\n')
				*c = '|';
		printf("%s\n", buf);
		fflush(stdout);
		if (strstr(buf, argv[2]))
			break;
	}
	unlink(argv[1]);
	return 0;
}
