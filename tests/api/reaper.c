/* A stand-in for Testcontainers' Ryuk reaper: it says "Started!", takes one
 * connection on port 8080 carrying "label=KEY=VALUE", answers ACK, and once
 * that connection closes removes every container with that label through
 * the Docker API socket bound in at /var/run/docker.sock. Static, so it
 * runs in a busybox image. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char answer[1 << 20];

/* One request on a new connection to the socket; the status, with the
 * whole answer in `answer`. */
static int request(const char *method, const char *path)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, "/var/run/docker.sock");
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("reaper: connecting to /var/run/docker.sock");
		exit(2);
	}
	char head[4096];
	int n = snprintf(head, sizeof head, "%s %s HTTP/1.0\r\nHost: docker\r\n\r\n", method, path);
	if (write(s, head, n) != n) {
		perror("reaper: writing");
		exit(2);
	}
	size_t got = 0;
	ssize_t r;
	while (got < sizeof answer - 1 && (r = read(s, answer + got, sizeof answer - 1 - got)) > 0)
		got += r;
	answer[got] = 0;
	close(s);
	int status = 0;
	sscanf(answer, "HTTP/1.%*d %d", &status);
	return status;
}

static void urlencode(const char *in, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *in; in++) {
		unsigned char c = *in;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-_.~", c)) {
			*out++ = c;
		} else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	*out = 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	int srv = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
	if (bind(srv, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(srv, 4) < 0) {
		perror("reaper: listening on 8080");
		return 2;
	}
	printf("reaper Started!\n");
	int c = accept(srv, NULL, NULL);
	if (c < 0) {
		perror("reaper: accept");
		return 2;
	}
	char line[1024];
	size_t n = 0;
	while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
		ssize_t r = read(c, line + n, sizeof line - 1 - n);
		if (r <= 0)
			break;
		n += r;
	}
	line[n] = 0;
	line[strcspn(line, "\r\n")] = 0;
	if (strncmp(line, "label=", 6) != 0) {
		fprintf(stderr, "reaper: expected label=..., got %s\n", line);
		return 2;
	}
	printf("reaper watching %s\n", line + 6);
	if (write(c, "ACK\n", 4) != 4)
		perror("reaper: ack");
	char tmp[256];
	while (read(c, tmp, sizeof tmp) > 0)
		;
	close(c);
	printf("reaper: the session closed\n");
	sleep(1);

	char filters[1200], enc[4000], path[4200];
	snprintf(filters, sizeof filters, "{\"label\":[\"%s\"]}", line + 6);
	urlencode(filters, enc);
	snprintf(path, sizeof path, "/containers/json?all=1&filters=%s", enc);
	int st = request("GET", path);
	if (st != 200) {
		fprintf(stderr, "reaper: listing answered %d: %s\n", st, answer);
		return 3;
	}
	char *list = strdup(answer);
	char *body = strstr(list, "\r\n\r\n");
	int reaped = 0;
	for (char *p = body; p && (p = strstr(p, "\"Id\":"));) {
		p += 5;
		while (*p == ' ' || *p == '"')
			p++;
		char id[65];
		snprintf(id, sizeof id, "%.64s", p);
		snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
		st = request("DELETE", path);
		printf("reaped %.12s (%d)\n", id, st);
		if (st == 204)
			reaped++;
	}
	printf("reaper done: %d removed\n", reaped);
	return 0;
}
