/* Terminal injection from inside a container (bubblewrap's CVE-2017-5226):
 * opens a pty pair from /dev/ptmx, makes the slave the controlling
 * terminal of a new session (setsid + TIOCSCTTY: the one case where the
 * kernel lets an unprivileged process push input with TIOCSTI), then tries
 * TIOCSTI with a plain request and with high bits set (the kernel reads the
 * request as an unsigned int, so both are TIOCSTI: Flatpak's
 * CVE-2019-10063), and TIOCLINUX. Prints "NAME ERRNO" per attempt (0 is
 * success) and "QUEUED N", the bytes that reached the terminal's input.
 * A setup step that fails prints "SETUP step errno" and exits 2. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void setup_failed(const char *step)
{
	printf("SETUP %s %d\n", step, errno);
	exit(2);
}

/* ioctl through the raw system call, so the full 64-bit request reaches
 * the kernel (and seccomp) as given. */
static long raw_ioctl(int fd, unsigned long request, void *arg)
{
	return syscall(SYS_ioctl, fd, request, arg);
}

static void attempt(const char *name, int fd, unsigned long request, void *arg)
{
	errno = 0;
	long r = raw_ioctl(fd, request, arg);
	printf("%s %d\n", name, r < 0 ? errno : 0);
}

static int probe(void)
{
	/* A forked child is never a process group leader: setsid works. */
	if (setsid() < 0)
		setup_failed("setsid");
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (master < 0)
		setup_failed("open-ptmx");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		setup_failed("unlockpt");
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (slave < 0)
		setup_failed("open-slave");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		setup_failed("TIOCSCTTY");
	/* A newline ends a line, so a canonical-mode terminal counts it as
	 * input that is ready (TIOCINQ). */
	char nl = '\n';
	attempt("TIOCSTI", slave, TIOCSTI, &nl);
	attempt("TIOCSTI_HIGH", slave, 0xffffffff00000000UL | TIOCSTI, &nl);
	attempt("TIOCSTI_HIGH1", slave, (1UL << 32) | TIOCSTI, &nl);
	/* TIOCLINUX subcode 2 would set a console's selection; on a pty the
	 * tty layer has no such request (ENOTTY) unless a filter refuses it. */
	char sub = 2;
	attempt("TIOCLINUX", slave, TIOCLINUX, &sub);
	attempt("TIOCLINUX_HIGH", slave, 0xffffffff00000000UL | TIOCLINUX, &sub);
	int queued = -1;
	if (ioctl(slave, TIOCINQ, &queued) < 0)
		setup_failed("TIOCINQ");
	printf("QUEUED %d\n", queued);
	return 0;
}

int main(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		setup_failed("fork");
	if (pid == 0) {
		int rc = probe();
		fflush(stdout);
		_exit(rc);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		setup_failed("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}
