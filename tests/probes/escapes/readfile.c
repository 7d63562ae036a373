/* Prints the file named by argv[1] and the ids it ran with: a stand-in
 * for any program a container leaves set-user-id in its upper directory,
 * run by another local user to read the container owner's files. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	printf("RUID %d EUID %d\n", (int)getuid(), (int)geteuid());
	if (argc < 2)
		return 2;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	return 0;
}
